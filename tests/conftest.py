"""Shared fixtures: a tiny real corpus (a slice of Multi30K de-en), binarized with fairseq."""
import gzip
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("BT_SHARED_DATA", ROOT.parent / "shared" / "data"))
MULTI30K = SHARED_DATA / "multi30k" / "task1"
PLUGIN_DIR = str(ROOT / "fairseq_bt_plugin")
N_TRAIN, N_SYN, N_VALID, N_TEST = 500, 300, 64, 50


def read_lines(path: Path, n: int, skip: int = 0):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    return lines[skip:skip + n]


def write_lines(path: Path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def run(cmd, **kwargs):
    """Run a command, failing the test with its output if it exits non-zero."""
    p = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if p.returncode != 0:
        raise AssertionError(f"{cmd} exited {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def preprocess(destdir: Path, trainpref=None, validpref=None, testpref=None, srcdict=None,
               tgtdict=None, src="de", tgt="en"):
    cmd = [sys.executable, "-m", "fairseq_cli.preprocess", "--source-lang", src,
           "--target-lang", tgt, "--destdir", str(destdir), "--workers", "1"]
    for flag, value in (("--trainpref", trainpref), ("--validpref", validpref),
                        ("--testpref", testpref), ("--srcdict", srcdict), ("--tgtdict", tgtdict)):
        if value:
            cmd += [flag, str(value)]
    if not srcdict:
        cmd.append("--joined-dictionary")
    run(cmd)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """500 bitext pairs, 300 "synthetic" pairs (other Multi30K lines), valid 64, test 50,
    a joint sentencepiece model, and the fairseq-binarized data; synthetic weights file."""
    if not MULTI30K.exists():
        pytest.skip(f"{MULTI30K} not found (set BT_SHARED_DATA)")
    from fairseq_bt_plugin.text_processing import TextProcessor, train_sentencepiece

    d = tmp_path_factory.mktemp("corpus")
    raw, tok = d / "raw", d / "tok"
    raw.mkdir(), tok.mkdir()
    splits = {"train": ("train", N_TRAIN, 0), "syn": ("train", N_SYN, N_TRAIN),
              "valid": ("val", N_VALID, 0), "test": ("test_2016_flickr", N_TEST, 0)}
    for name, (upstream, n, skip) in splits.items():
        for lang in ("de", "en"):
            write_lines(raw / f"{name}.{lang}", read_lines(MULTI30K / f"{upstream}.{lang}.gz", n, skip))
    spm = train_sentencepiece([str(raw / "train.de"), str(raw / "train.en")], str(d / "spm"), 400)
    procs = {lang: TextProcessor(spm, lang) for lang in ("de", "en")}
    for name in splits:
        for lang in ("de", "en"):
            lines = (raw / f"{name}.{lang}").read_text(encoding="utf-8").splitlines()
            write_lines(tok / f"{name}.{lang}", [procs[lang].encode(x) for x in lines])
    preprocess(d / "bin", tok / "train", tok / "valid", tok / "test")
    preprocess(d / "syn", tok / "syn", srcdict=d / "bin" / "dict.de.txt",
               tgtdict=d / "bin" / "dict.en.txt")
    weights = [0.25 + 0.25 * (i % 4) for i in range(N_SYN)]
    write_lines(d / "syn" / "train.weights", [f"{w:.2f}" for w in weights])
    return SimpleNamespace(root=d, raw=raw, tok=tok, bin=d / "bin", syn=d / "syn", spm=spm,
                           weights=weights, src="de", tgt="en")


def setup_task(args):
    """A real fairseq task (and its cfg) from command-line arguments, with the plugin loaded."""
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    args = list(args) + ([] if "--arch" in args else ["--arch", "bt_transformer_tiny"])
    parser = options.get_training_parser()
    parsed = options.parse_args_and_arch(parser, input_args=["--user-dir", PLUGIN_DIR] + args)
    cfg = convert_namespace_to_omegaconf(parsed)
    return tasks.setup_task(cfg.task), cfg


TINY_MODEL = ["--arch", "bt_transformer_tiny", "--optimizer", "adam", "--lr", "0.001",
              "--max-tokens", "2000", "--cpu", "--no-progress-bar", "--log-format", "simple",
              "--seed", "1"]


def train_tiny(data, save_dir: Path, extra=(), updates: int = 30, src="de", tgt="en"):
    """Train a bt_transformer_tiny model for a few updates with fairseq-train; returns the
    path of checkpoint_last.pt."""
    cmd = [sys.executable, "-m", "fairseq_cli.train", str(data), "--user-dir", PLUGIN_DIR,
           "-s", src, "-t", tgt, "--save-dir", str(save_dir), "--max-update", str(updates),
           "--no-epoch-checkpoints", "--save-interval-updates", str(updates),
           "--disable-validation"] + TINY_MODEL + list(extra)
    run(cmd)
    return save_dir / "checkpoint_last.pt"


@pytest.fixture(scope="session")
def reverse_model(corpus, tmp_path_factory):
    """A tiny en->de model (stock translation task) trained 30 updates on the bitext."""
    return train_tiny(corpus.bin, tmp_path_factory.mktemp("reverse"), src="en", tgt="de")
