"""The repository speaks of the product only: no tracked file (this one included) names a
stage, a work item or a sitting of the project's own history, or its working place.

Upstream references are written with their project's name (fairseq#N, pytest-xdist#N) and do
not match; the same number after the bare word for a work item does. The examples below are
built from their words, so that this file holds none of them as text."""
import re
import subprocess

from helpers import ROOT

# each word written with a character class, so that the pattern's own text never matches it
PATTERNS = [
    r"\bsto[p]s? \d+\b",
    r"\biss[u]es? #?\d+",
    r"\btod[a]y's\b",
    r"\b(this|earlier|previous|that|a|one) sess[i]on\b",
    r"\bsess[i]on of \d",
    r"\bworkpl[a]ce\b",
    r"\blent (GPU|image|machine)\b",
]
PATTERN = re.compile("|".join(PATTERNS), re.IGNORECASE)

# Not the project's words: corpus text (Tatoeba sentences may use any of these words)
EXCLUDE_PREFIXES = ("tests/data/",)


def tracked_text_files():
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    for name in out.stdout.decode().split("\0"):
        if not name or name.startswith(EXCLUDE_PREFIXES):
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


def said(*words) -> str:
    return " ".join(str(w) for w in words)


def test_patterns_catch_process_talk_and_spare_upstream_references():
    stage, item, sitting, place = "stop", "issue", "session", "work" + "place"
    assert find_process_talk(said("measured at", stage, 19)) == [said(stage, 19)]
    assert find_process_talk(f"({item} 14)") == [said(item, 14)]
    assert find_process_talk(f"{item} 15's goal") == [said(item, 15)]
    assert find_process_talk(f"(upstream {item}s #5036)") == [f"{item}s #5036"]
    assert find_process_talk("Today" + "'s defaults") == ["Today" + "'s"]
    assert find_process_talk(said("started by an earlier", sitting)) == [
        said("earlier", sitting)]
    assert find_process_talk(said("this", place + "'s CI kind")) == [place]
    assert find_process_talk(said(sitting, "of 2026-11-26")) == [said(sitting, "of 2")]
    for fine in ["fairseq#3644", "pytest-xdist#1386", "stock fairseq's -1, fairseq#3644)",
                 f'@pytest.fixture(scope="{sitting}")', said("built once per test", sitting),
                 said("the stage", stage + "s", "at the first error"),
                 said(stage + "s", "the run")]:
        assert find_process_talk(fine) == [], fine


def test_no_tracked_file_speaks_of_the_project_s_making():
    hits = []
    for name, text in tracked_text_files():
        for lineno, line in enumerate(text.splitlines(), 1):
            found = find_process_talk(line)
            if found:
                hits.append(f"{name}:{lineno}: {', '.join(found)}")
    assert not hits, "process talk in tracked files:\n" + "\n".join(hits)
