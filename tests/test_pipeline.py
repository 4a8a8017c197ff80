"""The whole pipeline on a very small slice (tiny model, a few updates): every artefact,
a re-run that does no work, and a run killed mid-stage that finishes when started again.

Each run reads an experiment file (:func:`experiment_file`) that takes :data:`RAW`'s lines of
the committed Tatoeba slice (tests/data/); the profile and small settings come from
environment variables (:data:`ENV`), which override the file."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sacrebleu
import yaml

from conftest import ROOT, SRC, TATOEBA, TGT, read_lines

TEST_SET = "tatoeba"
#: raw/ split -> (slice file, lines, first line) per language: mono texts are other lines of
#: the training slice than the bitext, and not translations of each other
RAW = {"train": {SRC: ("train", 300, 0), TGT: ("train", 300, 0)},
       "valid": {SRC: ("valid", 40, 0), TGT: ("valid", 40, 0)},
       f"test_{TEST_SET}": {SRC: ("test", 37, 0), TGT: ("test", 37, 0)},
       "mono": {SRC: ("train", 101, 800), TGT: ("train", 101, 600)}}
ENV = dict(PROFILE="tiny", SPM_VOCAB="300", EVAL_BEAM="2", BT_ARGS="--max-len-a 1.2 --max-len-b 5")


def experiment_file(path: Path, **keys) -> Path:
    """An experiment file (at ``path``) whose data are :data:`RAW`'s lines, plus ``keys``."""
    def parallel(split):
        name, n, skip = RAW[split][SRC]
        return {"source": [str(TATOEBA / f"{name}.{SRC}")],
                "target": [str(TATOEBA / f"{name}.{TGT}")], "max_pairs": n, "skip": skip}

    def mono(lang):
        name, n, skip = RAW["mono"][lang]
        return {"files": [str(TATOEBA / f"{name}.{lang}")], "max_lines": n, "skip": skip}

    exp = {"name": "tiny", "source_lang": SRC, "target_lang": TGT, "bitext": parallel("train"),
           "valid": parallel("valid"), "tests": {TEST_SET: parallel(f"test_{TEST_SET}")},
           "mono": mono(TGT), "mono_source": mono(SRC), **keys}
    path.write_text(yaml.safe_dump(exp, sort_keys=False), encoding="utf-8")
    return path


def pipeline(work: Path, rounds: int = 1, extra_env=None, args=(), **popen):
    """``scripts/pipeline.sh EXPERIMENT args`` into ``work`` (the experiment file beside it,
    :func:`experiment_file` unless one is there)."""
    exp = work.with_name(f"{work.name}.yaml")
    if not exp.exists():
        experiment_file(exp)
    env = {**os.environ, **ENV, "WORK": str(work), "ROUNDS": str(rounds), **(extra_env or {}),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.Popen(["bash", str(ROOT / "scripts" / "pipeline.sh"), str(exp), *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            **popen)


def finish(p):
    out, _ = p.communicate(timeout=900)
    assert p.returncode == 0, out[-3000:]
    return out


def lines(path: Path) -> int:
    with open(path, encoding="utf-8") as f:
        return sum(1 for _ in f)


def text_lines(path: Path):
    return path.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("pipeline")
    return work, finish(pipeline(work, rounds=2))  # two rounds of iterative BT, the defaults


def test_every_artefact(finished_run):
    work, out = finished_run
    assert f"({TGT}->{SRC}, beam, ctranslate2)" in out
    # the data stage took the experiment file's lines; fairseq-bt-clean then cleaned train and
    # mono in place (counted in raw/clean.json) and left valid and test as they were
    clean = json.loads((work / "raw" / "clean.json").read_text(encoding="utf-8"))
    for split, langs in RAW.items():
        for lang, (name, n, skip) in langs.items():
            raw = text_lines(work / "raw" / f"{split}.{lang}")
            if split in ("train", "mono"):
                counts = clean["corpora"]["train" if split == "train" else f"mono.{lang}"]
                assert counts["lines_in"] == n and len(raw) == counts["lines_out"], counts
            else:
                assert raw == read_lines(TATOEBA / f"{name}.{lang}", n, skip)
    for corpus, mono, syn in ((f"mono_{TGT}", TGT, SRC), (f"mono_{SRC}_r2", SRC, TGT),
                              (f"mono_{TGT}_r2", TGT, SRC)):
        bt = work / "bt" / corpus
        s = json.loads((bt / "bt.summary.json").read_text())
        kept = lines(bt / f"bt.{syn}")
        # measured: 44, 73 and 44 kept of 101; the others length_ratio (an untrained model's
        # output, capped at 1.2 x + 5 tokens, against short Tatoeba sentences)
        assert kept == lines(bt / f"bt.{mono}") == lines(bt / "bt.weights") > 30
        assert lines(bt / "bin" / "train.weights") == kept
        # every input line accounted for: translated or skipped (by reason); one hypothesis
        # each (beam, nbest 1), kept or filtered (by reason)
        assert s["input_lines"] == 101 == s["translated"] + sum(s["skipped_input"].values())
        assert s["hypotheses"] == s["translated"]
        assert s["output_pairs"] == kept == s["hypotheses"] - sum(s["filtered"].values())
        originals = text_lines(bt / f"bt.{mono}")  # the kept pairs' inputs, in input order
        assert originals == [x for x in text_lines(work / "raw" / f"mono.{mono}")
                             if x in set(originals)]
    ft_log = (work / "models" / "bt_ft" / "hydra_train.log").read_text()
    assert f"Loaded checkpoint {work}/models/bt/checkpoint_last.pt (epoch" in ft_log
    updates = [json.loads(line[line.index("{"):])["train_num_updates"]
               for line in ft_log.splitlines() if "[train][" in line and "train_num_updates" in line]
    assert updates[-1] == "14"  # tiny: 6 updates per model, bt 2 x 6, fine-tuning 0.334 x 6
    report = json.loads((work / "report.json").read_text())
    systems = {s["system"]: s for s in report["systems"]}
    models = {"reverse", "baseline", "bt", "bt_ft", "reverse_r2", "bt_r2", "bt_r2_ft"}
    assert set(systems) == models
    for s in systems.values():  # the report's scores are sacrebleu's on the saved output
        assert s["sentences"] == 37 and "nrefs:1" in s["bleu_signature"]
        hyp = text_lines(work / "eval" / f"{s['system']}.hyp")
        lang = SRC if s['system'].startswith('reverse') else TGT
        ref = text_lines(work / "raw" / f"test_{TEST_SET}.{lang}")
        assert len(hyp) == 37
        assert s["bleu"] == round(sacrebleu.corpus_bleu(hyp, [ref]).score, 2)
        assert s["chrf"] == round(sacrebleu.corpus_chrf(hyp, [ref]).score, 2)
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
                  f"back-translate mono_{TGT}", "evaluate bt", "train reverse_r2",
                  f"back-translate mono_{SRC}_r2", "train bt_r2", "train bt_r2_ft"):
        assert f"== {stage}: done already" in out
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_a_variant_trains_only_itself(finished_run):
    """BT_NAME: one more +BT system beside the finished ones (after the re-run test)."""
    work, _ = finished_run
    models = {p: p.stat().st_mtime_ns for p in (work / "models").rglob("*") if p.is_file()}
    out = finish(pipeline(work, extra_env={
        "BT_NAME": "bt_f03", "BT_TRAIN_ARGS": "++task.bt_synthetic_fraction=0.3"}))
    assert f"== train bt_f03 ({SRC}->{TGT}" in out
    assert f"== back-translate mono_{TGT}: done already" in out
    assert {p: p.stat().st_mtime_ns for p in models} == models  # nothing else retrained
    log = (work / "models" / "bt_f03" / "hydra_train.log").read_text()
    assert "'bt_synthetic_fraction': 0.3," in log and '"train_nsentences_synth"' in log
    systems = {s["system"] for s in json.loads((work / "report.json").read_text())["systems"]}
    assert {"bt", "bt_f03", "bt_f03_ft", "baseline"} <= systems


def test_killed_run_finishes_when_started_again(tmp_path):
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
    reverse model does, and the run ends with every system scored; fairseq BT backend (the
    other tests: the default, CTranslate2)."""
    out = finish(pipeline(tmp_path, extra_env={"BASELINE_PARALLEL": "1", "BT_FINETUNE": "0",
                                               "BT_BACKEND": "fairseq"}))
    assert f"== train baseline ({SRC}->{TGT}" in out and f"== train reverse ({TGT}->{SRC}" in out
    assert f"({TGT}->{SRC}, beam, fairseq)" in out
    base_start, base_end = log_times(tmp_path / "models" / "baseline" / "hydra_train.log")
    rev_start, rev_end = log_times(tmp_path / "models" / "reverse" / "hydra_train.log")
    assert base_start < rev_end and rev_start < base_end  # the two trainings overlapped
    systems = {s["system"] for s in json.loads((tmp_path / "report.json").read_text())["systems"]}
    assert systems == {"reverse", "baseline", "bt"}
    # a WORK that holds its raw/ subset needs no corpus (copied to a GPU host, say)
    rerun = finish(pipeline(tmp_path, args=[f"bitext.source={tmp_path / 'no_such_file'}"]))
    assert "== train baseline: done already" in rerun
