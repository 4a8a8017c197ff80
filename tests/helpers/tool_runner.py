"""Run the plugin's console tools in real child processes, cheaply, and check how they fail.

Each run is its own process, forked from a multiprocessing "forkserver" that has imported
fairseq and the plugin once: a case costs its own work, not the 4 s of imports of a fresh
interpreter. The child calls the tool's console entry point as the installed script does,
with ``sys.argv`` set, stdout/stderr sent to files, one torch thread and (optionally) a file
size limit (``RLIMIT_FSIZE``: writes past it fail with EFBIG, as on a full disk).

:func:`run_case` is one row of the tables of ``test_bad_input.py`` and ``test_disk_faults.py``.
"""
import multiprocessing
import os
import resource
import threading
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from helpers import SRC, TGT

#: console script -> entry point, read from the installed package (setup.py is the one list)
ENTRY_POINTS = {e.name: e for e in entry_points(group="console_scripts")
                if e.value.startswith("fairseq_bt_plugin.")}
# Common arguments of each tool in the tables; the case adds the rest. ``{in}``: the inputs,
# ``{out}``: the output folder, ``{model}``/``{bin}``/``{spm}``: the tiny TGT->SRC model, its
# binarized data and its sentencepiece model (conftest).
PREPARE = ["--source-lang", SRC, "--target-lang", TGT, "--spm-vocab-size", "200",
           "--destdir", "{out}", "--trainpref"]
GENERATE = ["--path", "{model}", "--data", "{bin}", "--spm-model", "{spm}", "-s", TGT,
            "-t", SRC, "--output-dir", "{out}", "--cpu", "--cpu-threads", "1", "--mode",
            "greedy", "--max-len-a", "1.2", "--max-len-b", "5", "--input"]
CONVERT = ["-s", TGT, "-t", SRC, "--output-dir", "{out}", "--log"]
EVALUATE = ["--path", "{model}", "--data-dir", "{bin}", "--spm-model", "{spm}",
            "--source-lang", TGT, "--target-lang", SRC, "--output-prefix", "{out}/sys",
            "--cpu", "--beam", "1", "--reference", "{in}/ref.{src}", "--input"]
TRAIN = ["--arch", "bt_transformer_tiny", "--optimizer", "adam", "--lr", "0.001",
         "--max-tokens", "2000", "--cpu", "--no-progress-bar", "--max-update", "2",
         "--disable-validation", "--save-dir", "{out}", "--seed", "1"]
BT = TRAIN + ["--task", "bt_translation", "-s", SRC, "-t", TGT]
DN = TRAIN + ["--task", "bt_denoising"]
INIT = ["--task", "translation", "-s", SRC, "-t", TGT, "--arch", "bt_transformer_tiny",
        "--init-parent-dicts", "{bin}", "--output", "{out}/child.pt", "--init-from"]

#: earlier output each tool finds in its output folder: a failed run must leave it as it is
BT_OUT = [f"bt.{SRC}", f"bt.{TGT}", "bt.summary.json"]
SEEDS = {"prepare": [f"bin/dict.{SRC}.txt"], "backtranslate": BT_OUT, "convert": BT_OUT,
         "evaluate": ["sys.hyp", "sys.json"], "init-checkpoint": ["child.pt"], "train": []}
FAIRSEQ = 1  # exit status of a failure fairseq owns (traceback)

PRELOAD = ["fairseq_bt_plugin", "fairseq_cli.train", "fairseq_bt_plugin.prepare",
           "fairseq_bt_plugin.evaluate", "fairseq_bt_plugin.transfer.init_checkpoint",
           "fairseq_bt_plugin.generate.cli", "fairseq_bt_plugin.generate.convert",
           "fairseq_bt_plugin.generate.decoder", "sacremoses", "sentencepiece", "sacrebleu"]


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def last_line(self) -> str:
        lines = [x for x in self.stderr.splitlines() if x.strip()]
        return lines[-1] if lines else ""


def _child(tool: str, argv: List[str], out, err, fsize: Optional[int]) -> None:
    import sys

    import torch

    for fd, conn in ((1, out), (2, err)):  # pipes: a file size limit must not cut the output
        os.dup2(conn.fileno(), fd)
    torch.set_num_threads(1)
    os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")  # for its own children
    if fsize is not None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))  # SIGXFSZ: Python ignores
    sys.argv = [tool] + [str(a) for a in argv]
    sys.exit(ENTRY_POINTS[tool].load()())


def _drain(fd: int, buffer: bytearray) -> None:
    while True:
        data = os.read(fd, 1 << 16)
        if not data:
            return
        buffer.extend(data)


_context = None


def run_tool(tool: str, argv: List, logs: Path, fsize: Optional[int] = None,
             timeout: float = 300) -> Result:
    """Run ``tool argv`` in a child process; its output is also kept in ``logs``."""
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    pipes = [_context.Pipe(duplex=False) for _ in range(2)]  # (read, write): stdout, stderr
    buffers = [bytearray(), bytearray()]
    p = _context.Process(target=_child, args=(tool, [str(a) for a in argv], pipes[0][1],
                                               pipes[1][1], fsize))
    p.start()
    readers = []
    for (read, write), buffer in zip(pipes, buffers):
        write.close()
        readers.append(threading.Thread(target=_drain, args=(read.fileno(), buffer),
                                        daemon=True))
        readers[-1].start()
    p.join(timeout)
    if p.exitcode is None:
        p.kill()
        p.join()
        raise AssertionError(f"{tool} {argv}: still running after {timeout} s")
    for reader in readers:
        reader.join()
    out, err = (b.decode("utf-8", "replace") for b in buffers)
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "out.txt").write_text(out)
    (logs / "err.txt").write_text(err)
    return Result(p.exitcode, out, err)


def snapshot(root: Path) -> Dict[str, bytes]:
    """Every regular file under ``root`` (relative path -> content)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()} if root.exists() else {}


def params(cases, known_gaps: Dict[str, str]):
    """``pytest.param`` of each ``(id, tool, args, code, expected)`` case; a known gap
    (case id -> what happens instead) is a strict ``xfail``."""
    return [pytest.param(*case[1:], id=case[0], marks=[pytest.mark.xfail(
        strict=True, reason=known_gaps[case[0]])] if case[0] in known_gaps else [])
        for case in cases]


def run_case(tool: str, args: List[str], code: int, expected: str, values: Dict, logs: Path,
             fsize: Optional[int] = None) -> Result:
    """Run ``fairseq-bt-TOOL`` with ``args`` (``{name}`` filled from ``values``; ``{src}``,
    ``{tgt}``: the corpus languages) in an output folder ``values["out"]`` seeded with
    earlier output (:data:`SEEDS`), and check: the exit
    status; ``expected`` in the last line of stderr, which for our errors (exit 2) is the only
    line ``TOOL: error: ...`` (no traceback); and that a failed run left the folder as it was
    (the generator's resume state ``*.work/`` aside). A run that succeeds (``code`` 0) must
    print ``expected`` and write no ``\\r`` into text outputs (Windows line ends normalised)."""
    values = {"src": SRC, "tgt": TGT, **values}
    out = Path(values["out"])
    for name in SEEDS[tool]:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(f"earlier output: {name}\n")
    before = snapshot(out)
    r = run_tool(f"fairseq-bt-{tool}", [a.format(**values) for a in args], logs, fsize)
    expected = expected.format(**values)
    assert r.code == code, f"exit {r.code}\n{r.stderr[-3000:]}"
    if code == 0:
        assert expected in r.stdout + r.stderr, r.stderr[-2000:]
        for name, data in snapshot(out).items():
            if name.endswith((f".{SRC}", f".{TGT}")):
                assert b"\r" not in data, name
        return r
    assert expected in r.last_line, r.stderr[-3000:]
    if code == 2:
        assert r.last_line.startswith(f"fairseq-bt-{tool}: error: "), r.stderr[-3000:]
        assert "Traceback" not in r.stderr, r.stderr[-3000:]
    after = {k: v for k, v in snapshot(out).items() if ".work/" not in k}
    assert after == before, sorted(set(after) ^ set(before))
    return r
