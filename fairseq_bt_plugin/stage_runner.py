"""``fairseq-bt-stage [options] -- COMMAND...``: run one pipeline stage, show how far it is,
and record its wall time.

With ``--log FILE`` the command's output (stdout and stderr) goes to FILE and one status line
is shown instead: on a terminal (stderr) it is rewritten in place every second, otherwise a
plain line is printed every ``--interval`` seconds (CI, ``nohup``, log files). For a fairseq
training (``log_format: json``) the line gives updates done / planned (``max_update`` from
the configuration fairseq logs at start), elapsed time, estimated time left and the last
validation loss; for any other command the elapsed time. A final line always says how the
stage ended; on failure the last lines of FILE follow. Without ``--log`` the command writes to
the terminal itself (``fairseq-bt-backtranslate`` draws its own progress bar).

Each run that ends (``status`` done, failed, or stopped: by SIGTERM, SIGINT or SIGHUP, which
go on to the command) appends one JSON line to ``--timings``
(``{"stage", "name", "status", "start", "end", "seconds"}``) with a single ``O_APPEND`` write,
so stages running side by side never interleave; :mod:`fairseq_bt_plugin.report` turns them
into the report's timing table. The exit status is the command's.

The stage scripts run this file by its path (``python .../fairseq_bt_plugin/stage_runner.py``),
not as ``fairseq-bt-stage``: by its path it needs the standard library only, and so starts in
a tenth of a second, where the console script imports the package (and with it fairseq), 2 to
3 seconds on every stage.
"""
import argparse
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

if not __package__:  # run by path: this package's modules without its __init__ (fairseq)
    import types

    _here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0]) == _here:
        sys.path.pop(0)  # not the package's modules as top-level names
    _package = types.ModuleType("fairseq_bt_plugin")
    _package.__path__ = [_here]
    sys.modules.setdefault("fairseq_bt_plugin", _package)
    __package__ = "fairseq_bt_plugin"

from .errors import check, run_reporting_user_errors  # noqa: E402  (both: standard library only)
from .progress_line import TRANSLATED  # noqa: E402

PROG = "fairseq-bt-stage"
FAILURE_LINES = 5  # log lines shown when the command fails
_JSON_LINE = re.compile(r"\]\[(train_inner|valid)\]\[INFO\] - (\{.*\})\s*$")
_MAX_UPDATE = re.compile(r"'max_update': (\d+)")


REQUIRED = None  # the default of a flag that must be given


@dataclass
class ProgressConfig:
    """The wrapper's flags (``--stage`` etc.), parsed by :func:`parse_options`."""
    stage: str = field(default=REQUIRED,
                       metadata={"help": "stage name shown and recorded (train, evaluate, ...)"})
    name: str = field(default="", metadata={"help": "model or corpus the stage works on"})
    timings: str = field(default=REQUIRED,
                         metadata={"help": "JSON-lines file the stage's wall time is appended to"})
    log: str = field(default="", metadata={
        "help": "write the command's output to this file and show a status line instead "
                "(empty: the command writes to the terminal itself)"})
    interval: float = field(default=REQUIRED, metadata={
        "help": "seconds between plain status lines when stderr is not a terminal"})
    plain: bool = field(default=False, metadata={
        "help": "plain status lines even on a terminal (a stage running beside another)"})
    done: str = field(default="", metadata={
        "help": "the stage's finished-output file: when it exists before the command runs "
                "(a command that skips finished work itself), no time is recorded"})


def parse_options(argv: List[str]) -> ProgressConfig:
    """``argv`` as :class:`ProgressConfig`: a flag per field, ``--help`` with each field's help
    (argparse alone: fairseq's parser generator would import fairseq)."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for f in dataclasses.fields(ProgressConfig):
        flag, help_text = "--" + f.name.replace("_", "-"), f.metadata["help"]
        if f.type is bool:
            parser.add_argument(flag, action="store_true", help=help_text)
        else:
            parser.add_argument(flag, type=f.type, default=f.default, help=help_text,
                                required=f.default is REQUIRED)
    return ProgressConfig(**vars(parser.parse_args(argv)))


def clock(seconds: float) -> str:
    """``1:02:03`` / ``2:03``."""
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class TrainingLog:
    """What a stage's log says so far. Training (fairseq's JSON log lines): updates done and
    planned, the update rate of this run (a resumed run starts at its checkpoint's count), the
    last validation loss. Evaluation (``fairseq-bt-evaluate --log-interval``): sentences
    translated of all, sentences/s."""

    def __init__(self):
        self.max_update: Optional[int] = None
        self.updates: Optional[int] = None
        self.valid_loss: Optional[str] = None
        self.first: Optional[Tuple[float, int]] = None  # (time, updates) of this run's first line
        self.last_time = 0.0
        self.sentences: Optional[Tuple[int, int, float]] = None  # done, total, per second

    def feed(self, line: str, now: float) -> None:
        translated = TRANSLATED.parse(line)  # fairseq-bt-evaluate --log-interval
        if translated:
            self.sentences = (translated["done"], translated["total"], translated["rate"])
            return
        if self.max_update is None and "'optimization': {" in line:
            m = _MAX_UPDATE.search(line)
            if m and int(m.group(1)) > 0:
                self.max_update = int(m.group(1))
        m = _JSON_LINE.search(line)
        if not m:
            return
        try:
            stats = json.loads(m.group(2))
        except ValueError:
            return
        if m.group(1) == "valid" and "valid_loss" in stats:
            self.valid_loss = str(stats["valid_loss"])
        elif "num_updates" in stats:
            self.updates = int(stats["num_updates"])
            self.last_time = now
            if self.first is None:
                self.first = (now, self.updates)

    def seconds_left(self) -> Optional[float]:
        if self.sentences is not None:
            done, total, rate = self.sentences
            return max(total - done, 0) / rate if rate > 0 else None
        if self.first is None or self.max_update is None or self.updates is None:
            return None
        t0, u0 = self.first
        if self.updates <= u0 or self.last_time <= t0:
            return None
        rate = (self.updates - u0) / (self.last_time - t0)
        return max(self.max_update - self.updates, 0) / rate

    def describe(self) -> List[str]:
        if self.sentences is not None:
            done, total, _ = self.sentences
            return [f"sentence {done}/{total} ({100 * done // max(total, 1)}%)"]
        if self.updates is None:
            return []
        done = f"update {self.updates}"
        if self.max_update:
            done += f"/{self.max_update} ({100 * self.updates // self.max_update}%)"
        return [done]

    def tail(self) -> List[str]:
        if self.sentences is not None:
            return [f"{self.sentences[2]:.1f} sentences/s"]
        return [f"valid loss {self.valid_loss}"] if self.valid_loss is not None else []


class StatusLine:
    """One line rewritten in place (``live``), else a plain line every ``interval`` seconds.
    On a terminal every line first clears the current one: the plain lines of a stage running
    in the background do not mix with the live line of the stage in the foreground."""

    def __init__(self, label: str, interval: float, tty: bool, live: bool):
        self.label, self.interval, self.live = label, interval, tty and live
        self.clear = "\r\033[K" if tty else ""
        self.start = self.last_plain = time.time()
        self.training = TrainingLog()

    def text(self) -> str:
        t = self.training
        parts = t.describe() + [f"{clock(time.time() - self.start)} elapsed"]
        left = t.seconds_left()
        if left is not None:
            parts[-1] += f", ~{clock(left)} left"
        return f"  {self.label}: " + " | ".join(parts + t.tail())

    def show(self) -> None:
        if self.live:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            sys.stderr.write(self.clear + self.text()[:width])
            sys.stderr.flush()
        elif time.time() - self.last_plain >= self.interval:
            self.last_plain = time.time()
            print(self.clear + self.text(), file=sys.stderr, flush=True)

    def finish(self, status: str) -> None:
        t = self.training
        parts = [f"{status} in {clock(time.time() - self.start)}"]
        if t.updates is not None:
            parts.append(f"{t.updates}" + (f"/{t.max_update}" if t.max_update else "")
                         + " updates")
        print(self.clear + f"  {self.label}: " + " | ".join(parts + t.tail()), file=sys.stderr,
              flush=True)


#: the signal that stopped the stage (``launch`` passed it on to the command), if any
stopped_by: List[int] = []


def launch(cmd: List[str], **popen) -> subprocess.Popen:
    """Start ``cmd``; SIGTERM, SIGINT and SIGHUP sent to this process go on to it (a stopped
    pipeline stops its stage, none is left running on its own) and are noted in
    :data:`stopped_by`."""
    proc = subprocess.Popen(cmd, **popen)

    def stop(signum: int, _frame) -> None:
        stopped_by.append(signum)
        proc.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    return proc


def exit_status(rc: int) -> int:
    """A shell's exit status for a ``Popen.returncode`` (killed by signal N: 128 + N)."""
    return 128 - rc if rc < 0 else rc


def follow(cmd: List[str], log: str, line: StatusLine) -> int:
    """Run ``cmd`` with its output in ``log``, feeding each line to the status line."""
    with open(log, "w", encoding="utf-8") as out:
        proc = launch(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                     errors="replace", bufsize=1)

        def read() -> None:
            for text in proc.stdout:
                out.write(text)
                out.flush()
                line.training.feed(text, time.time())

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        while reader.is_alive():
            line.show()
            reader.join(timeout=1.0)
        return exit_status(proc.wait())


def last_lines(path: str, n: int) -> List[str]:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read().splitlines()[-n:]


def record(path: str, entry: dict) -> None:
    """Append one JSON line with a single write (O_APPEND: whole lines, whatever runs beside)."""
    data = (json.dumps(entry) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def stamp(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t))


def run_stage(cfg: ProgressConfig, cmd: List[str]) -> int:
    label = f"{cfg.stage} {cfg.name}".strip()
    check(cfg.interval > 0, f"--interval {cfg.interval}: must be positive")
    finished_before = bool(cfg.done) and os.path.exists(cfg.done)
    start = time.time()
    if cfg.log:
        os.makedirs(os.path.dirname(os.path.abspath(cfg.log)), exist_ok=True)
        line = StatusLine(label, cfg.interval, sys.stderr.isatty(), not cfg.plain)
        rc = follow(cmd, cfg.log, line)
        line.finish("done" if rc == 0 else f"failed (exit {rc})")
        if rc != 0:
            print(f"  last lines of {cfg.log}:", file=sys.stderr)
            for text in last_lines(cfg.log, FAILURE_LINES):
                print(f"    {text}", file=sys.stderr)
    else:
        rc = exit_status(launch(cmd).wait())
    end = time.time()
    if not finished_before:
        status = "done" if rc == 0 else "stopped" if stopped_by else "failed"
        record(cfg.timings, {"stage": cfg.stage, "name": cfg.name,
                             "status": status, "start": stamp(start),
                             "end": stamp(end), "seconds": round(end - start, 1)})
    return rc


def main(argv: Optional[List[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    options, cmd = argv[:split], argv[split + 1:]
    rc = 2

    def run() -> None:
        nonlocal rc
        cfg = parse_options(options)
        check(bool(cmd), "no command to run (give it after --)")
        rc = run_stage(cfg, cmd)

    run_reporting_user_errors(run, PROG)
    sys.exit(rc)


if __name__ == "__main__":
    main()
