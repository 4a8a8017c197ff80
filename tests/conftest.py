"""Shared fixtures: a tiny real corpus (the committed Tatoeba fr-en slice in tests/data/),
binarized with fairseq; and the test tiers, one per test file (:data:`TIERS`)."""
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("BT_SHARED_DATA", ROOT.parent / "shared" / "data"))
TATOEBA = ROOT / "tests" / "data" / "tatoeba"  # made by tests/data/make_tatoeba_slice.py
SRC, TGT = "fr", "en"
#: misspelt pipeline variables -> the setting each means (the tests of the settings check)
TYPOED_SETTINGS = {"BT_UPDATE": "BT_UPDATES", "EVAL_BEEM": "EVAL_BEAM",
                   "REVERSE_CHECKPIONT": "REVERSE_CHECKPOINT"}
PLUGIN_DIR = str(ROOT / "fairseq_bt_plugin")
N_TRAIN, N_SYN, N_VALID, N_TEST = 500, 300, 64, 50

#: test file -> tier (``pytest -m unit``): ``unit`` needs no training (tiny data at most),
#: ``integration`` trains or decodes with tiny models, ``system`` runs whole commands end to
#: end (the pipeline, distributed training, kill and resume). Every test file is listed.
TIERS = {
    "test_kl_schedules.py": "unit", "test_noising.py": "unit", "test_vae_losses.py": "unit",
    "test_registration.py": "unit", "test_tagging.py": "unit", "test_bt_mix_dataset.py": "unit",
    "test_bt_translation_errors.py": "unit", "test_weighted_loss.py": "unit",
    "test_vae_model.py": "unit", "test_tatoeba_slice.py": "unit", "test_clean.py": "unit",
    "test_report.py": "unit", "test_no_process_talk.py": "unit",
    "test_readme_commands.py": "integration",
    "test_pipeline_settings.py": "system", "test_configs.py": "integration",
    "test_prepare_pairs.py": "integration", "test_transfer_experiment.py": "system",
    "test_generate_weights.py": "integration", "test_line_breaks.py": "integration",
    "test_freezing.py": "system", "test_evaluate.py": "integration",
    "test_progress.py": "system",
    "test_bad_input.py": "integration", "test_bt_translation_e2e.py": "integration",
    "test_compat.py": "integration", "test_disk_faults.py": "integration",
    "test_generate_binarize.py": "integration", "test_generate_convert.py": "integration",
    "test_generate_ct2.py": "integration", "test_generate_inputs.py": "integration",
    "test_generate_lines.py": "integration", "test_generate_modes.py": "integration",
    "test_generate_workers.py": "integration",
    "test_transfer.py": "integration", "test_vae_denoising.py": "integration",
    "test_generate_resume.py": "system", "test_resume_training.py": "system",
    "test_distributed_cpu.py": "system", "test_pipeline.py": "system",
    "test_gpu.py": "integration",
    "test_ensemble.py": "integration", "test_average.py": "integration",
    "test_filter.py": "integration", "test_pipeline_recipe.py": "system",
    "test_bt_multilingual.py": "integration", "test_bench_generate.py": "slow",
    "test_experiment.py": "unit", "test_experiment_pipeline.py": "system",
    "test_experiment_multi.py": "unit", "test_pipeline_multi.py": "slow",
    "test_suite_groups.py": "unit", "test_preflight.py": "unit", "test_provenance.py": "unit",
    "test_progress_line.py": "unit", "test_import_graph.py": "unit",
}


#: the longest groups of tests, started first when ``make test`` runs them side by side
#: (pytest-xdist ``--dist loadgroup``): the users of ``finished_run``, then whole files
HEAVY = ["finished_run", "test_pipeline.py", "test_transfer_experiment.py",
         "test_experiment_pipeline.py", "test_freezing.py", "test_bad_input.py",
         "test_distributed_cpu.py"]


def xdist_group(item) -> str:
    """The tests that share one costly fixture run in one process: those of ``finished_run``
    (a whole pipeline run), else each file's (its module fixtures)."""
    return "finished_run" if "finished_run" in item.fixturenames else item.path.name


@pytest.hookimpl(tryfirst=True)  # the groups before pytest-xdist reads them
def pytest_collection_modifyitems(config, items):
    """Mark every test with its file's tier; skip the optional extra ``shared_data(FOLDER)``
    (tests that need ``$BT_SHARED_DATA/FOLDER``, e.g. Multi30K) where that folder is absent;
    group the tests for pytest-xdist, the longest groups first."""
    missing = set()
    order = {group: i for i, group in enumerate(HEAVY)}  # a stable sort: each file's own order
    items.sort(key=lambda item: order.get(xdist_group(item), len(HEAVY)))
    for item in items:
        item.add_marker(pytest.mark.xdist_group(xdist_group(item)))
        name = item.path.name
        if name not in TIERS:
            missing.add(name)
            continue
        item.add_marker(TIERS[name])
        extra = item.get_closest_marker("shared_data")
        if extra and not (SHARED_DATA / extra.args[0]).is_dir():
            item.add_marker(pytest.mark.skip(
                reason=f"optional extra shared_data: {SHARED_DATA / extra.args[0]} not found"))
    if missing:
        raise pytest.UsageError(f"tests/conftest.py: TIERS lists no tier for {sorted(missing)}")


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


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """500 bitext pairs, 300 "synthetic" pairs (other Tatoeba lines), valid 64, test 50,
    a joint sentencepiece model, and the fairseq-binarized data; synthetic weights file."""
    from fairseq_bt_plugin.text_processing import TextProcessor, train_sentencepiece

    d = tmp_path_factory.mktemp("corpus")
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


@pytest.fixture(scope="session")
def reverse_model(corpus, tmp_path_factory):
    """A tiny TGT->SRC model (stock translation task) trained 30 updates on the bitext.

    At TINY_MODEL's lr 0.001 it would still emit little but "▁" alone (the most frequent
    piece of the 400-piece vocabulary on this French), which the generator drops as empty
    output (15 of 16 lines); at 0.005 its (poor) translations are words."""
    return train_tiny(corpus.bin, tmp_path_factory.mktemp("reverse"), ["--lr", "0.005"],
                      src=TGT, tgt=SRC)


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """One finished tiny pipeline run, read (never changed) by the test files that need one:
    tests/test_pipeline.py's experiment and settings, two rounds of iterative BT, the defaults
    otherwise; (WORK, its output)."""
    from test_pipeline import finish, pipeline

    work = tmp_path_factory.mktemp("pipeline")
    return work, finish(pipeline(work, rounds=2))
