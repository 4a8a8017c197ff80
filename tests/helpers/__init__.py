"""What the tests share besides pytest's fixtures (those are in tests/conftest.py and call
the builders here): the repository's paths, the committed Tatoeba fr-en slice
(tests/data/tatoeba/), text files, fairseq's preprocessing, tasks and tiny training.

Test modules import from this package and its modules, never from each other:
:mod:`helpers.generate` (decoding with the tiny reverse model), :mod:`helpers.pipeline` (the
tiny pipeline run), :mod:`helpers.tool_runner` (console tools in child processes),
:mod:`helpers.trace` (training traced by ``tests/bt_trace``), :mod:`helpers.transfer`
(VAE, denoising and transfer training)."""
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
SHARED_DATA = Path(os.environ.get("BT_SHARED_DATA", ROOT.parent / "shared" / "data"))
TATOEBA = TESTS / "data" / "tatoeba"  # made by tests/data/make_tatoeba_slice.py
SRC, TGT = "fr", "en"
#: misspelt pipeline variables -> the setting each means (the tests of the settings check)
TYPOED_SETTINGS = {"BT_UPDATE": "BT_UPDATES", "EVAL_BEEM": "EVAL_BEAM",
                   "REVERSE_CHECKPIONT": "REVERSE_CHECKPOINT"}
PLUGIN_DIR = str(ROOT / "fairseq_bt_plugin")
N_TRAIN, N_SYN, N_VALID, N_TEST = 500, 300, 64, 50

#: the tiers, one folder of tests/ each and the marker of its tests (``pytest -m unit``):
#: ``unit`` needs no training (tiny data at most), ``integration`` trains or decodes with tiny
#: models, ``system`` runs whole commands end to end (the pipeline, distributed training, kill
#: and resume). Every test file lives in one of them; ``slow`` is a marker of its own.
TIERS = ("unit", "integration", "system")


def read_lines(path: Path, n: int, skip: int = 0):
    lines = path.read_text(encoding="utf-8").splitlines()
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
               tgtdict=None, src=SRC, tgt=TGT):
    cmd = [sys.executable, "-m", "fairseq_cli.preprocess", "--source-lang", src,
           "--target-lang", tgt, "--destdir", str(destdir), "--workers", "1"]
    for flag, value in (("--trainpref", trainpref), ("--validpref", validpref),
                        ("--testpref", testpref), ("--srcdict", srcdict), ("--tgtdict", tgtdict)):
        if value:
            cmd += [flag, str(value)]
    if not srcdict:
        cmd.append("--joined-dictionary")
    run(cmd)


def make_corpus(d: Path) -> SimpleNamespace:
    """In folder ``d``: 500 bitext pairs, 300 "synthetic" pairs (other Tatoeba lines), valid
    64, test 50, a joint sentencepiece model, and the fairseq-binarized data; synthetic
    weights file (the ``corpus`` fixture)."""
    from fairseq_bt_plugin.text_processing import TextProcessor, train_sentencepiece

    raw, tok = d / "raw", d / "tok"
    raw.mkdir(), tok.mkdir()
    splits = {"train": ("train", N_TRAIN, 0), "syn": ("train", N_SYN, N_TRAIN),
              "valid": ("valid", N_VALID, 0), "test": ("test", N_TEST, 0)}
    for name, (sliced, n, skip) in splits.items():
        for lang in (SRC, TGT):
            write_lines(raw / f"{name}.{lang}", read_lines(TATOEBA / f"{sliced}.{lang}", n, skip))
    spm = train_sentencepiece([str(raw / f"train.{SRC}"), str(raw / f"train.{TGT}")],
                              str(d / "spm"), 400)
    procs = {lang: TextProcessor(spm, lang) for lang in (SRC, TGT)}
    for name in splits:
        for lang in (SRC, TGT):
            lines = (raw / f"{name}.{lang}").read_text(encoding="utf-8").splitlines()
            write_lines(tok / f"{name}.{lang}", [procs[lang].encode(x) for x in lines])
    preprocess(d / "bin", tok / "train", tok / "valid", tok / "test")
    preprocess(d / "syn", tok / "syn", srcdict=d / "bin" / f"dict.{SRC}.txt",
               tgtdict=d / "bin" / f"dict.{TGT}.txt")
    weights = [0.25 + 0.25 * (i % 4) for i in range(N_SYN)]
    write_lines(d / "syn" / "train.weights", [f"{w:.2f}" for w in weights])
    return SimpleNamespace(root=d, raw=raw, tok=tok, bin=d / "bin", syn=d / "syn", spm=spm,
                           weights=weights, src=SRC, tgt=TGT)


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


def train_tiny(data, save_dir: Path, extra=(), updates: int = 30, src=SRC, tgt=TGT):
    """Train a bt_transformer_tiny model for a few updates with fairseq-train; returns the
    path of checkpoint_last.pt."""
    cmd = [sys.executable, "-m", "fairseq_cli.train", str(data), "--user-dir", PLUGIN_DIR,
           "-s", src, "-t", tgt, "--save-dir", str(save_dir), "--max-update", str(updates),
           "--no-epoch-checkpoints", "--save-interval-updates", str(updates),
           "--disable-validation"] + TINY_MODEL + list(extra)
    run(cmd)
    return save_dir / "checkpoint_last.pt"
