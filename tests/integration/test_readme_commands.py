"""Every command in README.md's fenced ``bash`` blocks still works: each names an existing
script, console entry point (setup.py), fairseq command or make target, and each ``--flag``
is one that tool accepts (its ``--help``; for fairseq's trainers, fairseq's own parser with the
command's task, architecture and criterion). A block preceded by ``<!-- not runnable -->`` is
skipped. ``--help`` is run once per tool."""
import functools
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from helpers import ROOT

FAIRSEQ_TRAINERS = {"fairseq-train", "fairseq-bt-train"}
HYDRA = {"fairseq-hydra-train", "fairseq-bt-hydra-train"}
HYDRA_FLAGS = {"--config-dir", "--config-name", "--config-path", "--cfg", "--package", "--info",
               "--help", "--hydra-help", "--multirun", "--run", "--resolve", "--version"}
FAIRSEQ_ARGS = {"fairseq-bt-init-checkpoint"}  # its own flags plus fairseq's
SKIP_MARK = "<!-- not runnable -->"


def bash_blocks(text):
    """The fenced bash blocks of a markdown text, without those marked not runnable."""
    blocks = []
    for m in re.finditer(r"```bash\n(.*?)```", text, flags=re.S):
        before = text[:m.start()].rstrip().splitlines()
        if before and before[-1].strip() == SKIP_MARK:
            continue
        blocks.append(m.group(1))
    return blocks


def commands(block):
    """Each simple command of a block as a word list: continuation lines joined, comments,
    leading VAR=value assignments and command separators removed."""
    text = block.replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        current = []
        for w in words + [";"]:
            if w in (";", "&&", "||", "|", "&"):
                while current and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", current[0]):
                    current.pop(0)
                if current:
                    out.append(current)
                current = []
            else:
                current.append(w)
    return out


def entry_points():
    setup = (ROOT / "setup.py").read_text(encoding="utf-8")
    return set(re.findall(r'"(fairseq-bt-[a-z-]+) = ', setup))


def make_targets():
    return set(re.findall(r"^([A-Za-z][\w-]*):", (ROOT / "Makefile").read_text(), flags=re.M))


def flags(words):
    return [w.split("=", 1)[0] for w in words if w.startswith("--") and len(w) > 2]


@functools.lru_cache(maxsize=None)
def help_flags(tool):
    p = subprocess.run([tool, "--help"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    return set(re.findall(r"--[A-Za-z0-9][\w-]*", p.stdout + p.stderr))


def unknown_trainer_flags(words):
    """fairseq's own parser, with the plugin loaded, on the command's arguments."""
    args = [w for w in words[1:] if not w.startswith("$(")]
    if "--user-dir" in args:  # the plugin is imported below
        i = args.index("--user-dir")
        del args[i:i + 2]
    code = ("import sys, fairseq_bt_plugin; from fairseq import options; "
            "p = options.get_training_parser(); "
            "a, rest = options.parse_args_and_arch(p, sys.argv[1:], parse_known=True); "
            "print(' '.join(r for r in rest if r.startswith('--')))")
    p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout.split()


def without_own_flags(words, tool):
    """The command without the flags (and their values) that fairseq's parser does not know
    and the tool's own --help lists (``--init-from X``, ``--output Y``)."""
    own = {"--" + f for f in ("init-from", "init-parts", "init-freeze-updates",
                              "init-parent-dicts", "output")} & help_flags(tool)
    out, skip = [], False
    for w in words:
        if skip:
            skip = False
        elif w.split("=", 1)[0] in own:
            skip = "=" not in w
        else:
            out.append(w)
    return out


def check(words, eps, targets):
    tool = words[0]
    if tool == "make":
        assert all(t in targets for t in words[1:]), words
    elif tool == "bash":
        assert (ROOT / words[1]).is_file(), words
    elif tool in FAIRSEQ_TRAINERS:
        assert not unknown_trainer_flags(words), words
    elif tool in HYDRA:
        assert set(flags(words)) <= HYDRA_FLAGS, words
    else:
        assert tool in eps, f"{tool}: no script, entry point or make target"
        missing = [f for f in flags(words) if f not in help_flags(tool)]
        if missing and tool in FAIRSEQ_ARGS:  # it also takes fairseq's task/model flags
            missing = unknown_trainer_flags(without_own_flags(words, tool))
        assert not missing, f"{' '.join(words)}: {missing} not in {tool} --help"


def test_commands_are_parsed_as_a_shell_would():
    block = ("WORK=runs/x BT_ARGS=\"--fp16 --beam 2\" make demo  # comment\n"
             "fairseq-bt-filter --bt-dir bt \\\n  --drop-worst 0.1 && fairseq-bt-average --last 2\n")
    assert commands(block) == [["make", "demo"],
                               ["fairseq-bt-filter", "--bt-dir", "bt", "--drop-worst", "0.1"],
                               ["fairseq-bt-average", "--last", "2"]]
    assert bash_blocks("a\n<!-- not runnable -->\n```bash\nx\n```\n```bash\ny\n```\n") == ["y\n"]


def test_readme_bash_blocks_name_real_commands_and_flags():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    eps, targets = entry_points(), make_targets()
    cmds = [c for block in bash_blocks(readme) for c in commands(block)]
    assert len(cmds) >= 10
    tools = {c[0] for c in cmds if c[0] in eps and c[0] not in FAIRSEQ_TRAINERS | HYDRA}
    with ThreadPoolExecutor(max_workers=2) as pool:  # each --help imports fairseq: 3-4 s
        list(pool.map(help_flags, sorted(tools)))
    for words in cmds:
        check(words, eps, targets)
