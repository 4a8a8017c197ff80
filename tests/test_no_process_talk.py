"""The repository speaks of the product only: no tracked file names a stage of the project's
own history ("stop 17", "issue 15", "this session", "today's defaults", ...).

Upstream references are written ``fairseq#3644`` or ``pytest-xdist#1386`` and do not match;
``issue #3644`` does (an upstream reference is written with its project's name)."""
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PATTERNS = [
    r"\bstops? \d+\b",             # "stop 17", "stops 12"
    r"\bissues? #?\d+",            # "issue 15", "issues 11/13", "issue #3644"
    r"\bissue \d+'s\b",
    r"\btoday's\b",
    r"\b(this|earlier|previous|that|a|one) session\b",
    r"\bsession of \d",
    r"\bworkplace\b",
    r"\blent (GPU|image|machine)\b",
]
PATTERN = re.compile("|".join(PATTERNS), re.IGNORECASE)

# Not the project's words: corpus text (Tatoeba sentences may say "today's" or "issue") and
# this file, which must name the patterns.
EXCLUDE_PREFIXES = ("tests/data/",)
EXCLUDE = {"tests/test_no_process_talk.py"}


def tracked_text_files():
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    for name in out.stdout.decode().split("\0"):
        if not name or name in EXCLUDE or name.startswith(EXCLUDE_PREFIXES):
            continue
        path = ROOT / name
        if not path.is_file():
            continue
        try:
            yield name, path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary (report.png, ...)


def find_process_talk(text):
    return [m.group(0) for m in PATTERN.finditer(text)]


def test_patterns_catch_process_talk_and_spare_upstream_references():
    assert find_process_talk("measured at stop 19") == ["stop 19"]
    assert find_process_talk("(issue 14)") == ["issue 14"]
    assert find_process_talk("issue 15's goal") == ["issue 15"]
    assert find_process_talk("Today's defaults") == ["Today's"]
    assert find_process_talk("started by an earlier session") == ["earlier session"]
    assert find_process_talk("this workplace's CI kind") == ["workplace"]
    assert find_process_talk("session of 2026-11-26") == ["session of 2"]
    assert find_process_talk("(upstream issues #5036)") == ["issues #5036"]
    for fine in ["fairseq#3644", "pytest-xdist#1386", "stock fairseq's -1, fairseq#3644)",
                 "@pytest.fixture(scope=\"session\")", "built once per test session",
                 "the stage stops at the first error", "stops the run"]:
        assert find_process_talk(fine) == [], fine


def test_no_tracked_file_speaks_of_the_project_s_making():
    hits = []
    for name, text in tracked_text_files():
        for lineno, line in enumerate(text.splitlines(), 1):
            found = find_process_talk(line)
            if found:
                hits.append(f"{name}:{lineno}: {', '.join(found)}")
    assert not hits, "process talk in tracked files:\n" + "\n".join(hits)
