"""The whole pipeline on a very small slice (tiny model, a few updates): every artefact,
a re-run that does no work, and a run killed mid-stage that finishes when started again."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, SHARED_DATA

ENV = dict(PROFILE="tiny", BITEXT="300", MONO="101", VALID="40", TEST="37", SPM_VOCAB="300",
           BT_ARGS="--max-len-a 1.2 --max-len-b 5", EVAL_BEAM="2",
           CORPUS=str(SHARED_DATA / "multi30k"))


def pipeline(work: Path, rounds: int = 1, extra_env=None, **popen):
    env = {**os.environ, **ENV, "WORK": str(work), "ROUNDS": str(rounds), **(extra_env or {}),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.Popen(["bash", str(ROOT / "scripts" / "pipeline.sh")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def finish(p):
    out, _ = p.communicate(timeout=900)
    assert p.returncode == 0, out[-3000:]
    return out


def lines(path: Path) -> int:
    with open(path, encoding="utf-8") as f:
        return sum(1 for _ in f)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    if not (SHARED_DATA / "multi30k").exists():
        pytest.skip("no Multi30K in ../shared/data")
    work = tmp_path_factory.mktemp("pipeline")
    return work, finish(pipeline(work, rounds=2))  # two rounds of iterative BT, the defaults


def test_every_artefact(finished_run):
    work, out = finished_run
    assert "(en->de, beam, fairseq)" in out
    for split, n in (("train", 300), ("valid", 40), ("test", 37), ("mono", 101)):
        assert lines(work / "raw" / f"{split}.de") == lines(work / "raw" / f"{split}.en") == n
    for corpus, mono, syn in (("mono_en", "en", "de"), ("mono_de_r2", "de", "en"),
                              ("mono_en_r2", "en", "de")):
        bt = work / "bt" / corpus
        summary = json.loads((bt / "bt.summary.json").read_text())
        kept = lines(bt / f"bt.{syn}")
        assert kept == lines(bt / f"bt.{mono}") == lines(bt / "bt.weights") > 50
        assert lines(bt / "bin" / "train.weights") == kept
        # every input line accounted for: translated or skipped; every hypothesis kept or
        # filtered (--nbest 1: one per translated line)
        assert summary["input_lines"] == 101
        assert summary["translated"] + sum(summary["skipped_input"].values()) == 101
        assert summary["hypotheses"] == summary["translated"]
        assert summary["output_pairs"] + sum(summary["filtered"].values()) == \
            summary["hypotheses"]
    ft_log = (work / "models" / "bt_ft" / "hydra_train.log").read_text()
    assert f"Loaded checkpoint {work}/models/bt/checkpoint_last.pt (epoch" in ft_log
    updates = [json.loads(line[line.index("{"):])["train_num_updates"]
               for line in ft_log.splitlines() if "[train][" in line and "train_num_updates" in line]
    assert updates[-1] == "14"  # tiny: 6 updates per model, bt 2 x 6, fine-tuning 0.334 x 6
    report = json.loads((work / "report.json").read_text())
    systems = {s["system"]: s for s in report["systems"]}
    models = {"reverse", "baseline", "bt", "bt_ft", "reverse_r2", "bt_r2", "bt_r2_ft"}
    assert set(systems) == models
    for s in systems.values():
        assert s["sentences"] == 37 and 0 <= s["bleu"] <= 100 and "nrefs:1" in s["bleu_signature"]
        assert lines(work / "eval" / f"{s['system']}.hyp") == 37
    assert set(report["validation"]) == models
    assert all(len(v) >= 1 for v in report["validation"].values())
    assert (work / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (work / "report.md").read_text()
    assert "| baseline |" in md and "| bt |" in md


def test_rerun_does_no_work(finished_run):
    work, _ = finished_run
    stamps = {p: p.stat().st_mtime_ns for p in work.rglob("*") if p.is_file()
              and not p.name.startswith("report")}
    out = finish(pipeline(work, rounds=2))
    for stage in ("train reverse", "train baseline", "train bt", "train bt_ft",
                  "back-translate mono_en", "evaluate bt", "train reverse_r2",
                  "back-translate mono_de_r2", "train bt_r2", "train bt_r2_ft"):
        assert f"== {stage}: done already" in out
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_a_variant_trains_only_itself(finished_run):
    """BT_NAME: one more +BT system beside the finished ones (after the re-run test)."""
    work, _ = finished_run
    models = {p: p.stat().st_mtime_ns for p in (work / "models").rglob("*") if p.is_file()}
    out = finish(pipeline(work, extra_env={
        "BT_NAME": "bt_f03", "BT_TRAIN_ARGS": "++task.bt_synthetic_fraction=0.3"}))
    assert "== train bt_f03 (de->en" in out and "== back-translate mono_en: done already" in out
    assert {p: p.stat().st_mtime_ns for p in models} == models  # nothing else retrained
    log = (work / "models" / "bt_f03" / "hydra_train.log").read_text()
    assert "'bt_synthetic_fraction': 0.3," in log and '"train_nsentences_synth"' in log
    systems = {s["system"] for s in json.loads((work / "report.json").read_text())["systems"]}
    assert {"bt", "bt_f03", "bt_f03_ft", "baseline"} <= systems


def test_killed_run_finishes_when_started_again(tmp_path):
    if not (SHARED_DATA / "multi30k").exists():
        pytest.skip("no Multi30K in ../shared/data")
    p = pipeline(tmp_path, extra_env={"BASELINE_PARALLEL": "1"}, start_new_session=True)
    deadline = time.time() + 600
    while not (tmp_path / "models" / "baseline").exists() and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(2)  # inside the baseline training
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    assert not (tmp_path / "models" / "baseline" / "DONE").exists()
    assert not (tmp_path / "report.json").exists()
    out = finish(pipeline(tmp_path))  # a CPU profile's default: one model at a time
    assert out.index("== train reverse") < out.index("== train baseline")
    assert json.loads((tmp_path / "report.json").read_text())["systems"]


def log_times(log: Path):
    """First and last timestamps of a fairseq hydra_train.log ('[2026-11-23 00:44:36,607]...')."""
    stamps = [line[1:24] for line in log.read_text().splitlines() if line.startswith("[20")]
    return stamps[0], stamps[-1]


def test_baseline_parallel_overlaps_the_reverse_model(tmp_path):
    """BASELINE_PARALLEL=1 (the default for GPU profiles): the baseline trains while the
    reverse model does, and the run ends with every system scored; CTranslate2 BT backend."""
    if not (SHARED_DATA / "multi30k").exists():
        pytest.skip("no Multi30K in ../shared/data")
    out = finish(pipeline(tmp_path, extra_env={"BASELINE_PARALLEL": "1", "BT_FINETUNE": "0",
                                               "BT_BACKEND": "ctranslate2"}))
    assert "== train baseline (de->en" in out and "== train reverse (en->de" in out
    assert "(en->de, beam, ctranslate2)" in out
    base_start, base_end = log_times(tmp_path / "models" / "baseline" / "hydra_train.log")
    rev_start, rev_end = log_times(tmp_path / "models" / "reverse" / "hydra_train.log")
    assert base_start < rev_end and rev_start < base_end  # the two trainings overlapped
    systems = {s["system"] for s in json.loads((tmp_path / "report.json").read_text())["systems"]}
    assert systems == {"reverse", "baseline", "bt"}
    # a WORK that holds its raw/ subset needs no corpus (copied to a GPU host, say)
    rerun = finish(pipeline(tmp_path, extra_env={"CORPUS": str(tmp_path / "no_such_corpus")}))
    assert "== train baseline: done already" in rerun
