"""Shared helpers for the fairseq-bt-generate tests (real decoding with the tiny reverse model)."""
import sys
from pathlib import Path
from typing import List

from conftest import SRC, TGT, write_lines

# Short outputs keep the untrained tiny model fast.
# One torch thread: the test machine's 2 cores are shared (7x faster than 2 contending threads).
FAST = ["--max-len-a", "1.2", "--max-len-b", "5", "--log-interval", "1000", "--cpu-threads", "1"]


def mono_lines(corpus, n: int, skip: int = 0) -> List[str]:
    """TGT (the reverse model's source) monolingual lines: the 'syn' slice, repeated."""
    lines = (corpus.raw / f"syn.{corpus.tgt}").read_text(encoding="utf-8").splitlines()
    return [lines[(skip + i) % len(lines)] for i in range(n)]


def make_input(corpus, path: Path, n: int, skip: int = 0) -> Path:
    write_lines(path, mono_lines(corpus, n, skip))
    return path


def generate_args(corpus, model, inputs, out, *extra) -> List[str]:
    files = inputs if isinstance(inputs, list) else [inputs]
    return ["--input", ",".join(str(p) for p in files), "--path", str(model), "--data",
            str(corpus.bin), "--spm-model", str(corpus.spm), "-s", corpus.tgt, "-t", corpus.src,
            "--output-dir", str(out), "--cpu"] + FAST + [str(x) for x in extra]


def generate_cmd(corpus, model, inputs, out, *extra) -> List[str]:
    return [sys.executable, "-m", "fairseq_bt_plugin.generate"] + generate_args(
        corpus, model, inputs, out, *extra)


def run_generate(corpus, model, inputs, out, *extra):
    """Run the generator in this process; returns the summary."""
    import torch

    from fairseq_bt_plugin.generate.cli import generate
    from fairseq_bt_plugin.generate.config import BTGenerateConfig, parse

    threads = torch.get_num_threads()
    try:
        return generate(parse(BTGenerateConfig, generate_args(corpus, model, inputs, out, *extra),
                              "fairseq-bt-generate", ""))
    finally:
        torch.set_num_threads(threads)


def outputs(out: Path, prefix: str = "bt"):
    """(synthetic SRC lines, original TGT lines, scores lines, weights lines) of a run."""
    read = lambda s: (out / f"{prefix}.{s}").read_text(encoding="utf-8").splitlines()  # noqa
    return read(SRC), read(TGT), read("scores"), read("weights")


__all__ = ["FAST", "mono_lines", "make_input", "generate_args", "generate_cmd",
           "run_generate", "outputs"]
