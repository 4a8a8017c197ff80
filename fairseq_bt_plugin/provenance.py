"""What a pipeline stage's output was made from, and whether a re-run may reuse it.

A stage that finishes writes its stamp (the ``DONE`` file of a model or corpus folder, JSON):
its settings (``KEY=VALUE``: a model's hydra overrides, a corpus's generator flags, an
evaluation's beam, ...) and the SHA-256 of every input it read (corpus files, sentencepiece
model, dictionaries, upstream checkpoints; paths under WORK are recorded relative to it, so a
WORK moved elsewhere stays finished). Before it does anything, a re-run checks the stamp:

- no stamp: the stage has not finished; it runs (exit 1);
- the same settings, every recorded input unchanged and every input given recorded: the
  output is reused (exit 0);
- anything else: one line naming what differs and how to make the output again (exit 2).
  A retrained or replaced model is an input whose contents changed, so everything made from
  it is stale until made again. (An input outside WORK that is gone is not checked: a WORK
  copied to another machine without the corpus files it was made from.)

    python provenance.py check STAMP --work WORK [--setting K=V]... [--input PATH]... [--redo HOW]
    python provenance.py record STAMP --work WORK [--setting K=V]... [--input PATH]... [--note K=V]...
    python provenance.py dependents OUTPUT --work WORK   (the stamps of what was made from it)

File digests are cached in ``WORK/.digests.json`` by path, size and modification time, so a
re-run reads only files that changed. Run by its path it needs the standard library only.
"""
import argparse
import json
import os
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

if not __package__:  # run by path: this package's modules without its __init__ (fairseq)
    import types

    _here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0]) == _here:
        sys.path.pop(0)
    _package = types.ModuleType("fairseq_bt_plugin")
    _package.__path__ = [_here]
    sys.modules.setdefault("fairseq_bt_plugin", _package)
    __package__ = "fairseq_bt_plugin"

from .atomic import atomic_open  # noqa: E402  (all three: standard library only)
from .errors import run_reporting_user_errors  # noqa: E402
from .fingerprint import content_digest  # noqa: E402

PROG = "provenance"
CACHE = ".digests.json"
FORMAT = 1


def setting_key(setting: str) -> str:
    """``++task.bt_data=X`` -> ``task.bt_data`` (hydra's ``+``/``++`` prefixes aside)."""
    return setting.split("=", 1)[0].lstrip("+")


def relative(path: str, work: str) -> str:
    """``path`` as recorded: relative to WORK when under it (``WORK/...``), else absolute."""
    p, w = os.path.abspath(path), os.path.abspath(work)
    return "WORK/" + os.path.relpath(p, w) if p.startswith(w + os.sep) else p


def absolute(recorded: str, work: str) -> str:
    return os.path.join(work, recorded[5:]) if recorded.startswith("WORK/") else recorded


class Digests:
    """Content digests of files and folders, cached in ``WORK/.digests.json``."""

    def __init__(self, work: str):
        self.path = os.path.join(work, CACHE)
        self.cache: Dict[str, Dict] = {}
        try:
            with open(self.path, encoding="utf-8") as f:
                self.cache = json.load(f)
        except (OSError, ValueError):
            pass
        self.known = len(self.cache)

    def __call__(self, path: str) -> Optional[str]:
        """The digest of ``path``; None when it does not exist."""
        return content_digest(path, self.cache) if os.path.exists(path) else None

    def save(self) -> None:
        if len(self.cache) == self.known and os.path.exists(self.path):
            return
        try:  # side by side runs: keep what another run added since (a lost entry costs a read)
            with open(self.path, encoding="utf-8") as f:
                self.cache = {**json.load(f), **self.cache}
        except (OSError, ValueError):
            pass
        try:
            with atomic_open(self.path) as f:
                json.dump(self.cache, f)
        except OSError:
            pass  # a cache only


def read_stamp(path: str) -> Optional[Dict]:
    """The stamp at ``path``; ``{}`` for a mark without a record (an empty file, or one made
    before stamps recorded their inputs); None when there is none."""
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        stamp = json.loads(text)
    except ValueError:
        return {}
    return stamp if isinstance(stamp, dict) and stamp.get("format") == FORMAT else {}


def _leaves(value, path: str = "") -> Dict[str, object]:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(_leaves(v, f"{path}.{k}" if path else str(k)))
        return out
    return {path: value}


def setting_change(was: str, now: str) -> str:
    """How setting ``was`` became ``now``; a JSON value (the data stage's experiment keys)
    by the keys that differ."""
    key = setting_key(was)
    try:
        old, new = (json.loads(x.split("=", 1)[1]) for x in (was, now))
    except ValueError:
        old = new = None
    if isinstance(old, dict) and isinstance(new, dict):
        a, b = _leaves(old), _leaves(new)
        keys = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        return f"it was made with {key}: " + ", ".join(
            f"{k} {json.dumps(a.get(k))}, now {json.dumps(b.get(k))}" for k in keys[:3])
    return f"it was made with '{was}', now '{now}'"


def differences(stamp: Dict, settings: Sequence[str], inputs: Sequence[str], work: str,
                digest: Digests) -> List[str]:
    """What differs between ``stamp`` and the settings and inputs given now (empty: the same)."""
    if not stamp:
        return ["it was made without a record of its settings and inputs"]
    was = {setting_key(s): s for s in stamp["settings"]}
    now = {setting_key(s): s for s in settings}
    out = []
    for key in sorted(set(was) | set(now)):
        if key not in now:
            out.append(f"it was made with '{was[key]}', not given now")
        elif key not in was:
            out.append(f"'{now[key]}' is new")
        elif was[key] != now[key]:
            out.append(setting_change(was[key], now[key]))
    recorded = stamp["inputs"]
    for name in [relative(p, work) for p in inputs]:
        if name not in recorded:
            out.append(f"it was not made from {name}")
    for name, sha in recorded.items():
        current = digest(absolute(name, work))
        if current is None and not name.startswith("WORK/"):
            continue  # a corpus outside WORK, e.g. not copied with WORK to another machine
        if current is None:
            out.append(f"{name}, which it was made from, is gone")
        elif current != sha:
            out.append(f"{name}, which it was made from, changed since (made again or replaced)")
    return out


def check(stamp_path: str, work: str, settings: Sequence[str], inputs: Sequence[str],
          redo: str) -> Tuple[int, str]:
    """``(0, "")``: finished as asked; ``(1, "")``: not finished; ``(2, message)``: finished
    from something else."""
    stamp = read_stamp(stamp_path)
    if stamp is None:
        return 1, ""
    digest = Digests(work)
    diff = differences(stamp, settings, inputs, work, digest)
    digest.save()
    if not diff:
        return 0, ""
    what = stamp_path[:-len(".done")] if stamp_path.endswith(".done") else \
        os.path.dirname(stamp_path) or "."
    shown = "; ".join(diff[:3]) + (f"; and {len(diff) - 3} more" if len(diff) > 3 else "")
    return 2, f"{what} is not what this run asks for: {shown}. {redo}".rstrip()


def record(stamp_path: str, work: str, settings: Sequence[str], inputs: Sequence[str],
           notes: Sequence[str] = ()) -> Dict:
    """Write the stamp of a finished output."""
    digest = Digests(work)
    stamp = {"format": FORMAT, "settings": list(settings), "inputs": {}, "notes": {},
             "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    for p in inputs:
        sha = digest(p)
        if sha is None:
            raise FileNotFoundError(f"{p}: input not found")
        stamp["inputs"][relative(p, work)] = sha
    for note in notes:
        key, _, value = note.partition("=")
        stamp["notes"][key] = value
    digest.save()
    with atomic_open(stamp_path) as f:
        json.dump(stamp, f, indent=1, ensure_ascii=False)
        f.write("\n")
    return stamp


def made_by(stamp_path: str, work: str) -> str:
    """What a stamp stands for, as inputs are recorded: a ``DONE``'s folder (``WORK/bt/X/``),
    or an evaluation's files (``WORK/eval/SET/X.`` for ``X.done``)."""
    if stamp_path.endswith(".done"):
        return relative(stamp_path[:-len("done")], work) + "."
    return relative(os.path.dirname(stamp_path), work) + "/"


def dependents(output: str, work: str) -> List[str]:
    """The stamps of every output of WORK made from ``output`` (a folder or file), directly
    or through other outputs, in the order found."""
    inputs = {os.path.join(d, f): list((read_stamp(os.path.join(d, f)) or {}).get("inputs", {}))
              for d, _, files in sorted(os.walk(work)) for f in sorted(files)
              if f == "DONE" or f.endswith(".done")}  # each stamp read once
    made = {relative(output, work).rstrip("/") + ("/" if os.path.isdir(output) else "")}
    found: List[str] = []
    grew = True
    while grew:
        grew = False
        for path, names in inputs.items():
            if path not in found and any(name.startswith(m) or name == m.rstrip("/")
                                         for name in names for m in made):
                found.append(path)
                made.add(made_by(path, work))
                grew = True
    return found


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["check", "record", "dependents"],
                        help="check: exit 0 finished as asked, 1 not finished, 2 finished from "
                        "something else (one line on stderr); record: write the stamp; "
                        "dependents: print the stamps of the outputs made from STAMP (here an "
                        "output: a model's folder), one per line")
    parser.add_argument("stamp", help="the stamp file (a model's or corpus's DONE)")
    parser.add_argument("--work", required=True, help="the run directory (WORK)")
    parser.add_argument("--setting", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting the output is made with (repeat)")
    parser.add_argument("--input", action="append", default=[], metavar="PATH",
                        help="a file or folder it is made from (repeat)")
    parser.add_argument("--redo", default="", help="check: how to make it again, said after "
                        "what differs")
    parser.add_argument("--note", action="append", default=[], metavar="KEY=VALUE",
                        help="record: kept in the stamp, not compared")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "dependents":
        print("\n".join(dependents(args.stamp, args.work)))
        return
    if args.command == "check":
        code, message = check(args.stamp, args.work, args.setting, args.input, args.redo)
        if message:
            print(f"error: {message}", file=sys.stderr)
        sys.exit(code)
    run_reporting_user_errors(
        lambda: record(args.stamp, args.work, args.setting, args.input, args.note), PROG)


if __name__ == "__main__":
    main()
