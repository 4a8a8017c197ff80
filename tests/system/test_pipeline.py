"""The whole pipeline on a very small slice (tiny model, a few updates): every artefact,
a re-run that does no work, and a run killed mid-stage that finishes when started again.

Each run reads an experiment file (:func:`helpers.pipeline.experiment_file`) that takes
:data:`~helpers.pipeline.RAW`'s lines of the committed Tatoeba slice (tests/data/); the profile
and small settings come from environment variables (:data:`~helpers.pipeline.ENV`), which
override the file."""
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sacrebleu
import torch
import yaml

from fairseq_bt_plugin.text_processing import same_sentencepiece_model

from helpers import SRC, TATOEBA, TGT, read_lines, write_lines
from helpers.pipeline import EXPORT, RAW, TEST_SET, experiment_file, finish, lines, pipeline


def text_lines(path: Path):
    return path.read_text(encoding="utf-8").splitlines()


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
        hyp = text_lines(work / "eval" / TEST_SET / f"{s['system']}.hyp")
        ref = text_lines(work / "raw" / f"test_{TEST_SET}.{s['target_lang']}")
        assert s["target_lang"] == (SRC if s["system"].startswith("reverse") else TGT)
        assert len(hyp) == 37
        assert s["bleu"] == round(sacrebleu.corpus_bleu(hyp, [ref]).score, 2)
        assert s["chrf"] == round(sacrebleu.corpus_chrf(hyp, [ref]).score, 2)
        assert s["chrfpp"] == round(sacrebleu.corpus_chrf(hyp, [ref], word_order=2).score, 2)
        assert "nw:2" in s["chrfpp_signature"]
    assert set(report["validation"]) == models
    assert all(len(v) >= 1 for v in report["validation"].values())
    # the tiny profile's cap (6 updates) stops every model before its patience (2 validations
    # without a lower loss) can: each is said to be not converged where it is compared
    assert {m: e["stopped_by"] for m, e in report["models"].items()} == dict.fromkeys(
        models, "max_update")
    assert report["models"]["bt_ft"]["updates"] == 14 and report["not_converged"]
    assert "**not converged**: " in (work / "report.md").read_text()
    assert (work / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (work / "report.md").read_text()
    assert "| baseline |" in md and "| bt |" in md
    # the best system (highest BLEU on the test set, reverse models aside) exported
    forward = {k: v for k, v in systems.items() if not k.startswith("reverse")}
    best = max(forward, key=lambda k: (forward[k]["bleu"], k))
    exported = json.loads((work / "export" / best / "model.json").read_text())
    assert exported["name"] == best and exported["checkpoint"] == systems[best]["checkpoint"]
    # its card, made before the report, holds what the report says of the system
    assert [s["bleu"] for s in exported["run"]["scores"]] == [systems[best]["bleu"]]
    assert exported["run"]["training"] == report["models"][best]
    assert exported["run"]["experiment"] == report["experiment"]["text"]
    assert [e["system"] for e in report["exports"]] == [best]
    assert f"**Exported**: `{best}` in `{work}/export/{best}`" in md


def test_rerun_does_no_work(finished_run):
    """Nothing is redone (timings.jsonl included); the report keeps the first run's times."""
    work, _ = finished_run
    stamps = {p: p.stat().st_mtime_ns for p in work.rglob("*") if p.is_file()
              and not p.name.startswith("report") and p.name != ".digests.json"}
    timings = json.loads((work / "report.json").read_text())["timings"]
    out = finish(pipeline(work, rounds=2, extra_env=EXPORT))
    for stage in ("train reverse", "train baseline", "train bt", "train bt_ft",
                  f"back-translate mono_{TGT}", f"evaluate bt on {TEST_SET}", "train reverse_r2",
                  f"back-translate mono_{SRC}_r2", "train bt_r2", "train bt_r2_ft", "export"):
        assert f"== {stage}: done already" in out
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert json.loads((work / "report.json").read_text())["timings"] == timings


def test_a_moved_work_is_finished_and_a_changed_model_is_refused(finished_run, tmp_path):
    """A WORK moved elsewhere is still finished: its models and corpora record WORK's paths
    relative to it; where a run trains is not a model's setting. A finished model asked for
    with other settings (more +BT updates) stops the run with a line naming the model and the
    difference, before anything changes; with its DONE deleted as the line says, the model
    trains on from its checkpoint_last.pt."""
    work = tmp_path / "moved"
    shutil.copytree(finished_run[0], work, symlinks=True)
    out = finish(pipeline(work, rounds=2))
    for stage in ("train reverse", "train bt", "train bt_ft", f"back-translate mono_{TGT}",
                  "train bt_r2", f"back-translate mono_{SRC}_r2"):
        assert f"== {stage}: done already" in out
    made_from = json.loads((work / "bt" / f"mono_{TGT}" / "DONE").read_text())["inputs"]
    assert "WORK/models/reverse/checkpoint_best.pt" in made_from
    stamps = {p: p.stat().st_mtime_ns for p in (work / "models").rglob("*") if p.is_file()}
    # where a run trains is not a setting of its models
    out = finish(pipeline(work, rounds=2, extra_env={
        "TRAIN_ARGS": "common.cpu=true dataset.num_workers=0 common.log_interval=1"}))
    assert "== train bt_r2_ft: done already" in out
    p = pipeline(work, rounds=2, args=["bt.updates=3"])  # tiny: 6 updates a model
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 2, out[-2000:]
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(
        f"error: {work}/models/bt is not what this run asks for: it was made with "
        "'optimization.max_update=12', now 'optimization.max_update=18'. Delete"), out[-2000:]
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    (work / "models" / "bt" / "DONE").unlink()
    p = pipeline(work, rounds=2, args=["bt.updates=3"])
    out, _ = p.communicate(timeout=600)
    assert p.returncode == 2 and "== train bt (" in out, out[-2000:]  # bt_ft: its turn next
    assert "optimization.max_update=18" in json.loads(
        (work / "models" / "bt" / "DONE").read_text())["settings"]
    log = (work / "models" / "bt" / "hydra_train.log").read_text()
    assert f"Loaded checkpoint {work}/models/bt/checkpoint_last.pt (epoch" in log
    assert '"train_num_updates": "18"' in log
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    # the fine-tuned model was made from the bt model's last checkpoint, made again since
    assert len(errors) == 1 and errors[0].startswith(
        f"error: {work}/models/bt_ft is not what this run asks for: "), out[-2000:]
    assert "WORK/models/bt/checkpoint_last.pt, which it was made from, changed since" in \
        errors[0], out[-2000:]


def refused(work: Path, extra_env=None, args=()):
    """A run of ``work`` that must stop before any work: its one error line (nothing in WORK
    changed, the report included)."""
    before = {p: p.stat().st_mtime_ns for p in work.rglob("*") if p.is_file()
              and p.name != ".digests.json"}
    p = pipeline(work, rounds=2, extra_env=extra_env, args=args)
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 2, out[-2000:]
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, out[-2000:]
    assert not re.search(r"== (train|back-translate|filter|evaluate) \S+ .*\(", out), out[-2000:]
    assert {p: p.stat().st_mtime_ns for p in before} == before
    return errors[0]


@pytest.mark.parametrize("env,args,what,said", [
    # every setting that decides the data: the raw data is not what this run asks for
    ({"BITEXT": "100", "SPM_VOCAB": "200", "EVAL_BEAM": "1"}, ["cleaning.no_dedup=true"], "raw",
     "it was made with data: bitext.max_pairs 300, now 100, cleaning.no_dedup false, now true"),
    ({"SPM_VOCAB": "200"}, [], "prep", "it was made with 'spm_vocab=300', now 'spm_vocab=200'"),
    ({"EVAL_BEAM": "1"}, [], f"eval/{TEST_SET}/baseline",
     "it was made with 'beam=2', now 'beam=1'"),
    ({"BT_BEAM": "3"}, [], f"bt/mono_{TGT}", "it was made with 'beam=2', now 'beam=3'"),
])
def test_a_rerun_with_other_settings_is_refused(finished_run, tmp_path, env, args, what, said):
    """A run in a finished WORK with other settings never reuses (and reports) outputs made
    with the old ones: the first stage whose output differs stops the run, naming it, what
    differs and how to make it again."""
    work = tmp_path / "w"
    shutil.copytree(finished_run[0], work, symlinks=True)
    error = refused(work, env, args)
    assert error.startswith(f"error: {work}/{what} is not what this run asks for: {said}"), \
        error
    assert "Delete " in error


def test_a_model_made_again_makes_what_came_from_it_stale(finished_run, tmp_path):
    """Deleting the reverse model and running again trains it anew: the synthetic corpus made
    from the old one is not reused (nor the models trained on it), the run stops naming it."""
    work = tmp_path / "w"
    shutil.copytree(finished_run[0], work, symlinks=True)
    shutil.rmtree(work / "models" / "reverse")
    p = pipeline(work, rounds=2)
    out, _ = p.communicate(timeout=600)
    assert p.returncode == 2, out[-2000:]
    assert "== train reverse (" in out and "== train baseline: done already" in out
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: {work}/bt/mono_{TGT} is not what this run asks for: "
        "WORK/models/reverse/checkpoint_best.pt, which it was made from, changed since (made "
        f"again or replaced). Delete {work}/bt/mono_{TGT} to back-translate again, or give "
        "these settings their own corpus name (bt.corpus / BT_CORPUS)."], out[-2000:]
    # made again as the line says: the reverse model is the same as before to the bit (the same
    # seed, data and arithmetic), so is the corpus, and what was trained on it is reused; only
    # the reverse model's own score came from checkpoint bytes that changed (what else it holds)
    shutil.rmtree(work / "bt" / f"mono_{TGT}")
    p = pipeline(work, rounds=2)
    out, _ = p.communicate(timeout=600)
    assert p.returncode == 2 and f"== back-translate {work}/raw/mono.{TGT} with reverse" in out
    assert "== train bt: done already" in out and "== train bt_ft: done already" in out
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(
        f"error: {work}/eval/{TEST_SET}/reverse is not what this run asks for: "
        "WORK/models/reverse/checkpoint_best.pt, which it was made from, changed since"), \
        out[-2000:]
    # a model replaced by another: its corpus made again differs, and the +BT model trained on
    # the old one is stale in turn
    shutil.copy(work / "models" / "reverse_r2" / "checkpoint_best.pt",
                work / "models" / "reverse" / "checkpoint_best.pt")
    shutil.rmtree(work / "bt" / f"mono_{TGT}")
    p = pipeline(work, rounds=2)
    out, _ = p.communicate(timeout=600)
    assert p.returncode == 2 and f"== back-translate {work}/raw/mono.{TGT} with reverse" in out
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(
        f"error: {work}/models/bt is not what this run asks for: WORK/bt/mono_{TGT}/bin, "
        "which it was made from, changed since"), out[-2000:]


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory):
    """A run killed inside the baseline's training, then started again: (WORK, the files
    the killed run left, the second run's output)."""
    work = tmp_path_factory.mktemp("resumed")
    p = pipeline(work, extra_env={"BASELINE_PARALLEL": "1"}, start_new_session=True)
    deadline = time.time() + 600
    while not (work / "models" / "baseline").exists() and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(2)  # inside the baseline training
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    left = {x.relative_to(work) for x in work.rglob("*")}
    return work, left, finish(pipeline(work))  # a CPU profile's default: one model at a time


def test_killed_run_finishes_when_started_again(resumed_run):
    work, left, out = resumed_run
    assert Path("models/baseline") in left and Path("models/baseline/DONE") not in left
    assert Path("report.json") not in left
    assert out.index("== train reverse") < out.index("== train baseline")
    assert json.loads((work / "report.json").read_text())["systems"]


def test_a_variant_trains_only_itself(resumed_run):
    """BT_NAME: one more +BT system beside the finished ones (those of the resumed run), here
    on the corpus without its worst quarter by the reverse model's own scores (BT_FILTER=
    reverse:0.25; the demo's filter is reverse:0.1): no model scores it again."""
    work = resumed_run[0]
    models = {p: p.stat().st_mtime_ns for p in (work / "models").rglob("*") if p.is_file()}
    out = finish(pipeline(work, extra_env={
        "BT_NAME": "bt_f03", "BT_TRAIN_ARGS": "++task.bt_synthetic_fraction=0.3",
        "BT_FILTER": "reverse:0.25"}))
    assert f"== train bt_f03 ({SRC}->{TGT}" in out
    assert f"== back-translate mono_{TGT}: done already" in out
    assert {p: p.stat().st_mtime_ns for p in models} == models  # nothing else retrained
    log = (work / "models" / "bt_f03" / "hydra_train.log").read_text()
    assert "'bt_synthetic_fraction': 0.3," in log and '"train_nsentences_synth"' in log
    generated = work / "bt" / f"mono_{TGT}"
    filtered = work / "bt" / f"mono_{TGT}_reverse_0.25"
    summary = json.loads((filtered / "bt.summary.json").read_text())
    # the score: minus the average log-probability the generator wrote (3rd column)
    scores = sorted(-float(row.split("\t")[2])
                    for row in (generated / "bt.scores").read_text().splitlines())
    n = len(scores)
    assert (summary["method"], summary["input_pairs"], summary["forward_model"]) == (
        "reverse", n, None)
    assert summary["output_pairs"] == n - math.floor(0.25 * n) == lines(filtered / f"bt.{TGT}")
    assert summary["highest_kept_score"] == pytest.approx(
        scores[summary["output_pairs"] - 1], abs=1e-5)
    assert f"'bt_data': '{filtered}/bin'" in log  # (its epochs resample them: share 0.3)
    systems = {s["system"] for s in json.loads((work / "report.json").read_text())["systems"]}
    assert {"bt", "bt_f03", "bt_f03_ft", "baseline"} <= systems


def first_loss(log: Path) -> float:
    """The training loss of update 1 in a fairseq hydra_train.log (log_interval 1)."""
    for line in log.read_text().splitlines():
        if "[train_inner]" in line:
            stats = json.loads(line.split(" - ", 1)[1])
            assert stats["num_updates"] == "1", line
            return float(stats["loss"])
    raise AssertionError(f"{log}: no training loss logged")


def test_bt_init_baseline_starts_from_the_baseline(finished_run, tmp_path):
    """BT_INIT=baseline (key bt.init): the +BT model starts from the baseline's weights
    (fairseq's checkpoint.finetune_from_model: a new optimizer and schedule), which its DONE
    records; on its first batch (bt's first batch: the same seed, data and corpus) its loss is
    below that of bt, which started from random weights."""
    work = tmp_path / "work"
    shutil.copytree(finished_run[0], work, symlinks=True)
    out = finish(pipeline(work, extra_env={"BT_NAME": "bt_warm", "BT_INIT": "baseline",
                                           "BT_FINETUNE": "0"}))
    assert f"== train bt_warm ({SRC}->{TGT}" in out and "== train baseline: done already" in out
    models = work / "models"
    log = models / "bt_warm" / "hydra_train.log"
    assert f"loading pretrained model from {models}/baseline/checkpoint_best.pt" in log.read_text()
    made = json.loads((models / "bt_warm" / "DONE").read_text())
    assert "checkpoint.finetune_from_model=WORK/models/baseline/checkpoint_best.pt" in \
        made["settings"] and "WORK/models/baseline/checkpoint_best.pt" in made["inputs"]
    assert first_loss(log) < first_loss(models / "bt" / "hydra_train.log")
    systems = {s["system"] for s in json.loads((work / "report.json").read_text())["systems"]}
    assert {"bt", "bt_warm", "baseline"} <= systems


def test_copied_text_control(finished_run, tmp_path):
    """BT_MODE=copy (key bt.mode): the control back-translation must beat (Currey et al. 2017).
    No reverse model is trained or read; the synthetic corpus is every cleaned monolingual
    sentence as its own source, both sides the same ids, encoded as the pipeline encodes its
    target; the copy model trains on it tagged, and the report scores it beside bt."""
    from fairseq.data import Dictionary, data_utils

    from fairseq_bt_plugin.text_processing import TextProcessor

    work = tmp_path / "work"
    shutil.copytree(finished_run[0], work, symlinks=True)
    out = finish(pipeline(work, extra_env={"BT_NAME": "copy", "BT_MODE": "copy",
                                           "BT_FINETUNE": "0"}))
    assert "== train reverse" not in out and "== copy " in out
    corpus = work / "bt" / f"mono_{TGT}_copy"
    mono = (work / "raw" / f"mono.{TGT}").read_text(encoding="utf-8").splitlines()
    assert (corpus / f"bt.{SRC}").read_text(encoding="utf-8").splitlines() == mono
    assert (corpus / f"bt.{TGT}").read_text(encoding="utf-8").splitlines() == mono
    base = corpus / "bin" / f"train.{SRC}-{TGT}"
    src, tgt = (data_utils.load_indexed_dataset(f"{base}.{lang}", None, "mmap")
                for lang in (SRC, TGT))
    d = Dictionary.load(str(work / "prep" / "bin" / f"dict.{TGT}.txt"))
    tp = TextProcessor(str(work / "prep" / "spm.model"), TGT)
    assert len(src) == len(tgt) == len(mono)
    for i, line in enumerate(mono):
        ids = d.encode_line(tp.encode(line), add_if_not_exist=False).tolist()
        assert src[i].tolist() == tgt[i].tolist() == ids, (i, line)
    made = json.loads((work / "models" / "copy" / "DONE").read_text())
    assert f"++task.bt_data=WORK/bt/mono_{TGT}_copy/bin" in made["settings"]
    assert "++task.bt_tag='<BT>'" in made["settings"]
    systems = {s["system"] for s in json.loads((work / "report.json").read_text())["systems"]}
    assert {"bt", "copy", "baseline"} <= systems
    # BT_COPIES=1 (bt.copies): back-translations and copies together, task.bt_data lists both
    # corpora (the copies made once: the control's corpus); the model's record names both as
    # what it was made from, and the report shows them
    both = f"'{work}/bt/mono_{TGT}/bin,{corpus}/bin'"
    out = finish(pipeline(work, extra_env={"BT_NAME": "both", "BT_FINETUNE": "0",
                                           "BT_COPIES": "1"}))
    assert f"== back-translate mono_{TGT}_copy: done already" in out
    assert f"== train both ({SRC}->{TGT}" in out
    log = (work / "models" / "both" / "hydra_train.log").read_text()
    assert f"'bt_data': {both}" in log
    made = json.loads((work / "models" / "both" / "DONE").read_text())
    assert {f"WORK/bt/mono_{TGT}/bin", f"WORK/bt/mono_{TGT}_copy/bin"} <= set(made["inputs"])
    row = next(x for x in (work / "report.md").read_text().splitlines()
               if x.startswith("| models/both |"))
    assert f"`bt/mono_{TGT}_copy/bin`" in row and f"`bt/mono_{TGT}/bin`" in row


def log_times(log: Path):
    """First and last timestamps of a fairseq hydra_train.log ('[2026-11-23 00:44:36,607]...')."""
    stamps = [line[1:24] for line in log.read_text().splitlines() if line.startswith("[20")]
    return stamps[0], stamps[-1]


def test_baseline_parallel_overlaps_the_reverse_model(tmp_path):
    """BASELINE_PARALLEL=1 (the default for GPU profiles): the baseline trains while the
    reverse model does, and the run ends with every system scored; fairseq BT backend (the
    other tests: the default, CTranslate2). BT_TAG= (empty) turns tagging off through the
    whole pipeline (the other tests: the default tag)."""
    env = {"BASELINE_PARALLEL": "1", "BT_FINETUNE": "0", "BT_BACKEND": "fairseq", "BT_TAG": ""}
    corpus_copy = tmp_path.with_name(tmp_path.name + "_corpus")  # the user's own files
    shutil.copytree(TATOEBA, corpus_copy)
    exp = tmp_path.with_name(f"{tmp_path.name}.yaml")
    experiment_file(exp)
    exp.write_text(exp.read_text().replace(str(TATOEBA), str(corpus_copy)))
    out = finish(pipeline(tmp_path, extra_env=env))
    assert f"== train baseline ({SRC}->{TGT}" in out and f"== train reverse ({TGT}->{SRC}" in out
    assert f"({TGT}->{SRC}, beam, fairseq)" in out
    base_start, base_end = log_times(tmp_path / "models" / "baseline" / "hydra_train.log")
    rev_start, rev_end = log_times(tmp_path / "models" / "reverse" / "hydra_train.log")
    assert base_start < rev_end and rev_start < base_end  # the two trainings overlapped
    bt_start, _ = log_times(tmp_path / "models" / "bt" / "hydra_train.log")
    assert bt_start > base_end  # on CPU the +BT model trains alone, on every core
    systems = {s["system"] for s in json.loads((tmp_path / "report.json").read_text())["systems"]}
    assert systems == {"reverse", "baseline", "bt"}
    assert json.loads((tmp_path / "prep" / "prepare.json").read_text())["tag"] == ""
    for d in (tmp_path / "prep" / "bin").glob("dict.*.txt"):
        assert "<BT>" not in d.read_text()
    log = (tmp_path / "models" / "bt" / "hydra_train.log").read_text()
    assert "'bt_tag': ''," in log and "'bt_data': '" in log
    # a WORK that holds its raw/ needs no corpus (copied to a GPU host, say): the corpus files
    # it was made from are gone, the same experiment file runs on
    shutil.move(corpus_copy, corpus_copy.with_name("gone"))
    rerun = finish(pipeline(tmp_path, extra_env=env))
    assert "== train baseline: done already" in rerun
    # a model that has not finished training (another variant's run, a killed one) is not
    # scored: its eval would stand for the finished model's
    ghost = tmp_path / "models" / "ghost"
    ghost.mkdir()
    shutil.copy(tmp_path / "models" / "baseline" / "checkpoint_best.pt", ghost)
    out = finish(pipeline(tmp_path, extra_env=env))
    assert "== evaluate ghost: not finished training, skipped" in out
    assert not list((tmp_path / "eval").glob("*/ghost.json"))
    # the finished corpus records its settings; other generator settings under the same
    # corpus name stop the run (one line, before any training), not a silent reuse
    corpus = tmp_path / "bt" / f"mono_{TGT}"
    assert "backend=fairseq" in json.loads((corpus / "DONE").read_text())["settings"]
    p = pipeline(tmp_path, extra_env={**env, "BT_NAME": "bt2", "BT_ARGS": "--max-len-b 50"})
    out, _ = p.communicate(timeout=300)
    assert p.returncode != 0
    err = [line for line in out.splitlines() if line.startswith("error: ")]
    assert err and f"{corpus} is not what this run asks for: it was made with 'args=" in err[0] \
        and "BT_CORPUS" in err[0], out[-2000:]
    assert not (tmp_path / "models" / "bt2").exists()


def copy_work(src: Path, dst: Path, *parts: str) -> None:
    """Finished pieces of one run (``raw``, ``prep``, ``models/baseline``, ...) into another:
    the pipeline skips them there."""
    for part in parts:
        shutil.copytree(src / part, dst / part, symlinks=True)


def bt_files(work: Path):
    """Bytes of every output of the first round's synthetic corpus (text, weights, binarized)."""
    bt = work / "bt" / f"mono_{TGT}"
    names = [f"bt.{SRC}", f"bt.{TGT}", "bt.scores", "bt.weights"] + sorted(
        f"bin/{p.name}" for p in (bt / "bin").iterdir())
    return {name: (bt / name).read_bytes() for name in names}


def test_reverse_model_reused_with_the_pipelines_vocabulary(finished_run, tmp_path):
    """REVERSE_*: no reverse model trained; the finished run's reverse model, named by its
    files, back-translates into exactly that run's synthetic corpus and is scored as
    ``reverse``."""
    done, _ = finished_run
    copy_work(done, tmp_path, "models/baseline")
    reverse = {"REVERSE_CHECKPOINT": str(done / "models" / "reverse" / "checkpoint_best.pt"),
               "REVERSE_DATA": str(done / "prep" / "bin"),
               "REVERSE_SPM": str(done / "prep" / "spm.model")}
    out = finish(pipeline(tmp_path, extra_env={**reverse, "BT_FINETUNE": "0"}))
    assert f"== reuse reverse ({TGT}->{SRC}): {reverse['REVERSE_CHECKPOINT']}" in out
    assert "== train reverse" not in out and f"== train bt ({SRC}->{TGT}" in out
    # prepare made the same sentencepiece model from the same raw/ (but for the training file
    # names in it): the reverse model's pieces are binarized
    spm = "prep/spm.model"
    assert (tmp_path / spm).read_bytes() != (done / spm).read_bytes()
    assert same_sentencepiece_model(str(tmp_path / spm), str(done / spm))
    assert bt_files(tmp_path) == bt_files(done)
    assert json.loads((tmp_path / "models" / "reverse" / "reused.json").read_text()) == {
        "checkpoint": reverse["REVERSE_CHECKPOINT"], "data": reverse["REVERSE_DATA"],
        "spm_model": reverse["REVERSE_SPM"]}
    report = json.loads((tmp_path / "report.json").read_text())
    scores = {s["system"]: s for s in report["systems"]}
    assert set(scores) == {"reverse", "baseline", "bt"}
    assert scores["reverse"]["bleu"] == json.loads(
        (done / "eval" / TEST_SET / "reverse.json").read_text())["bleu"]
    assert "`reverse` was not trained here" in (tmp_path / "report.md").read_text()
    # a re-run without the settings would silently use it: refused
    p = pipeline(tmp_path)
    rerun, _ = p.communicate(timeout=300)
    assert p.returncode == 2 and f"{tmp_path}/models/reverse reuses" in rerun, rerun


def test_reverse_model_reused_with_its_own_vocabulary(finished_run, corpus, reverse_model,
                                                      tmp_path):
    """A reverse model with another sentencepiece model and dictionaries (conftest's, trained
    on other lines with another vocabulary size): it decodes with its own, and its output is
    binarized as the pipeline's sentencepiece model and dictionaries encode the raw text."""
    done, _ = finished_run
    copy_work(done, tmp_path, "raw", "prep", "models/baseline")
    assert (corpus.bin / f"dict.{SRC}.txt").read_text() != (
        done / "prep" / "bin" / f"dict.{SRC}.txt").read_text()
    out = finish(pipeline(tmp_path, extra_env={
        "REVERSE_CHECKPOINT": str(reverse_model), "REVERSE_DATA": str(corpus.bin),
        "REVERSE_SPM": str(corpus.spm), "BT_FINETUNE": "0"}))
    assert "== train reverse" not in out
    assert_synthetic_corpus_in_the_pipelines_pieces(tmp_path)
    systems = {s["system"] for s in json.loads((tmp_path / "report.json").read_text())["systems"]}
    assert systems == {"reverse", "baseline", "bt"}


def assert_synthetic_corpus_in_the_pipelines_pieces(work: Path) -> None:
    """Every line of the first synthetic corpus back-translated from the 101 monolingual lines,
    both sides of its binarized corpus the pipeline's encoding of its raw text, and the +BT
    model trained on it."""
    from fairseq.data import Dictionary, data_utils

    from fairseq_bt_plugin.text_processing import TextProcessor

    bt = work / "bt" / f"mono_{TGT}"
    summary = json.loads((bt / "bt.summary.json").read_text())
    assert summary["input_lines"] == 101 and summary["output_pairs"] == lines(bt / f"bt.{SRC}")
    prep = work / "prep"
    for lang in (SRC, TGT):
        d = Dictionary.load(str(prep / "bin" / f"dict.{lang}.txt"))
        tp = TextProcessor(str(prep / "spm.model"), lang)
        data = data_utils.load_indexed_dataset(str(bt / "bin" / f"train.{SRC}-{TGT}.{lang}"),
                                               None, "mmap")
        text = text_lines(bt / f"bt.{lang}")
        assert len(data) == len(text) > 20
        assert [x.tolist() for x in data] == [
            d.encode_line(tp.encode(x), add_if_not_exist=False).tolist() for x in text]
    log = (work / "models" / "bt" / "hydra_train.log").read_text()
    assert f"'bt_data': '{bt}/bin'" in log


def test_reverse_model_from_a_ctranslate2_directory(finished_run, corpus, reverse_model,
                                                    tmp_path):
    """reverse_model.ct2_dir: a CTranslate2 model made elsewhere (conftest's tiny reverse model
    of another vocabulary, exported; its output's sentencepiece model a file of its own)
    back-translates and is scored through CTranslate2; no reverse model is trained."""
    done, _ = finished_run
    work = tmp_path / "work"
    work.mkdir()
    copy_work(done, work, "raw", "prep", "models/baseline")
    ct2, target_spm = tmp_path / "ct2", tmp_path / "target.spm"
    p = subprocess.run(["fairseq-bt-export", "--path", str(reverse_model), "--data",
                        str(corpus.bin), "--spm-model", str(corpus.spm), "-s", TGT, "-t", SRC,
                        "--output", str(ct2)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    shutil.copy(corpus.spm, target_spm)
    env = {"REVERSE_CT2_DIR": str(ct2), "REVERSE_SPM": str(corpus.spm),
           "REVERSE_TARGET_SPM": str(target_spm), "BT_FINETUNE": "0"}
    out = finish(pipeline(work, extra_env=env))
    assert f"== reuse reverse ({TGT}->{SRC}): {ct2}" in out and "== train reverse" not in out
    assert f"with reverse ({TGT}->{SRC}, beam, ctranslate2)" in out
    assert json.loads((work / "models" / "reverse" / "reused.json").read_text()) == {
        "ct2_dir": str(ct2), "spm_model": str(corpus.spm), "target_spm_model": str(target_spm)}
    assert_synthetic_corpus_in_the_pipelines_pieces(work)
    stamp = json.loads((work / "bt" / f"mono_{TGT}" / "DONE").read_text())
    assert "backend=ctranslate2" in stamp["settings"]
    summary = json.loads((work / "bt" / f"mono_{TGT}" / "bt.summary.json").read_text())
    assert summary["model"] == str(work / "models" / "reverse" / "ct2_model")
    assert summary["ct2_convert_seconds"] == 0
    scored = json.loads((work / "eval" / TEST_SET / "reverse.json").read_text())
    assert scored["checkpoint"] == summary["model"] and scored["sentences"] == 37
    systems = {s["system"] for s in json.loads((work / "report.json").read_text())["systems"]}
    assert systems == {"reverse", "baseline", "bt"}
    assert f"`reverse` was not trained here: CTranslate2 model `{ct2}`" in (
        work / "report.md").read_text()
    # the same settings again: nothing to do; another model in this WORK: refused
    again = finish(pipeline(work, extra_env=env))
    assert "== reuse reverse: done already" in again
    assert f"== back-translate mono_{TGT}: done already" in again
    p = pipeline(work, extra_env={**env, "REVERSE_TARGET_SPM": ""})
    rerun, _ = p.communicate(timeout=300)
    assert p.returncode == 2 and f"{work}/models/reverse reuses" in rerun, rerun


@pytest.mark.parametrize("case", ["direction", "vocabulary", "dictionaries", "incomplete"])
def test_a_reused_reverse_model_is_checked_before_any_work(case, finished_run, corpus, tmp_path):
    done, _ = finished_run
    env = {"REVERSE_CHECKPOINT": str(done / "models" / "reverse" / "checkpoint_best.pt"),
           "REVERSE_DATA": str(done / "prep" / "bin"),
           "REVERSE_SPM": str(done / "prep" / "spm.model")}
    expected = {
        "direction": f"the checkpoint translates {SRC}->{TGT}, but -s {TGT} -t {SRC}",
        "vocabulary": "sentencepiece model does not belong to the dictionary",
        "dictionaries": f"reverse_model.data: {tmp_path}/nowhere: not found",
        "incomplete": "reverse_model: give checkpoint, data and spm together"}[case]
    if case == "direction":
        env["REVERSE_CHECKPOINT"] = str(done / "models" / "baseline" / "checkpoint_best.pt")
    elif case == "vocabulary":
        env["REVERSE_SPM"] = str(corpus.spm)
    elif case == "dictionaries":
        env["REVERSE_DATA"] = str(tmp_path / "nowhere")
    else:
        del env["REVERSE_SPM"]
    p = pipeline(tmp_path, extra_env=env)
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 2 and expected in out, out
    assert len([x for x in out.splitlines() if "error" in x]) == 1, out
    assert {x.name for x in tmp_path.iterdir()} <= {"experiments"}  # nothing more


def test_sharded_back_translation_equals_one_generator(finished_run, tmp_path):
    """BT_SHARDS=2: two generators (one CPU thread each here) on alternate chunks, merged:
    byte for byte the corpus of the finished run's single generator (same seed, beam search);
    every input line counted once."""
    done, _ = finished_run
    copy_work(done, tmp_path, "raw", "prep", "models/reverse", "models/baseline", "models/bt",
              "models/bt_ft", "eval")
    out = finish(pipeline(tmp_path, extra_env={"BT_SHARDS": "2"}))
    gpus = torch.cuda.device_count()  # on a GPU machine: one GPU each, round robin
    for i in (0, 1):
        place = f"CUDA_VISIBLE_DEVICES={i % gpus}" if gpus else "OMP_NUM_THREADS=1"
        assert f"== shard {i} of mono_{TGT} (2 shards; {place})" in out
    assert bt_files(tmp_path) == bt_files(done)
    bt = tmp_path / "bt" / f"mono_{TGT}"
    shards = [json.loads((bt / "shards" / str(i) / "bt.summary.json").read_text())
              for i in (0, 1)]
    # chunks of 30 lines: shard 0 has chunks 0 and 2, shard 1 chunks 1 and 3 (11 lines)
    assert [s["input_lines"] for s in shards] == [60, 41]
    merged = json.loads((bt / "bt.summary.json").read_text())
    assert merged["input_lines"] == 101 and len(merged["merged_from"]) == 2
    assert merged["output_pairs"] == sum(s["output_pairs"] for s in shards) == lines(
        bt / f"bt.{SRC}")
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["back_translation"][f"mono_{TGT}"]["shards"] == 2
    timings = {(t["stage"], t["name"]) for t in report["timings"]["stages"]}
    assert {("back-translate", f"mono_{TGT} shard 0"), ("back-translate", f"mono_{TGT} shard 1"),
            ("back-translate", f"mono_{TGT} merge")} <= timings


def test_launcher_and_two_test_sets(finished_run, tmp_path):
    """LAUNCHER: every training, back-translation shard and evaluation goes through the
    prefix (here a wrapper that records its arguments and runs them); a second test set
    (``test_second``): every system scored on both, in report.json and report.md, with the
    p-value of sacrebleu's own paired bootstrap against the baseline."""
    done, _ = finished_run
    copy_work(done, tmp_path, "raw", "prep", "models/reverse", "models/baseline")
    for lang in (SRC, TGT):
        write_lines(tmp_path / "raw" / f"test_second.{lang}",
                    read_lines(TATOEBA / f"test.{lang}", 30, 50))
    calls = tmp_path / "launcher.log"
    wrapper = tmp_path / "launch"  # the first run of shard 1 fails: the stage resumes it
    wrapper.write_text(f"""#!/usr/bin/env bash
case "$*" in *"--shard-id 1 "*)
  [ -e {tmp_path}/once ] || {{ touch {tmp_path}/once; exit 3; }};;
esac
echo "$*" >> {calls}
shift  # --some-option
exec "$@"
""")
    wrapper.chmod(0o755)
    env = {"LAUNCHER": f"{wrapper} --some-option", "BT_SHARDS": "2", "BT_FINETUNE": "0"}
    p = pipeline(tmp_path, extra_env=env)
    failed, _ = p.communicate(timeout=600)
    assert p.returncode == 1 and "placed by LAUNCHER" in failed
    assert f"error: 1 of 2 back-translation shards of mono_{TGT} failed" in failed, failed
    out = finish(pipeline(tmp_path, extra_env=env))
    assert f"== shard 0 of mono_{TGT}: done already" in out and f"== shard 1 of mono_{TGT}" in out
    recorded = calls.read_text().splitlines()
    assert all(c.startswith("--some-option fairseq-bt-") for c in recorded), recorded
    commands = sorted(c.split()[1] + (" shard " + c.split("--shard-id ")[1].split()[0]
                                      if "--shard-id" in c else "") for c in recorded)
    # bt trained (reverse and baseline were done); 2 shards; 3 systems x 2 test sets
    assert commands == ["fairseq-bt-backtranslate shard 0", "fairseq-bt-backtranslate shard 1"] + [
        "fairseq-bt-evaluate"] * 6 + ["fairseq-bt-hydra-train"]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["test_sets"] == ["second", TEST_SET]
    scores = {(s["test_set"], s["system"]): s for s in report["systems"]}
    assert set(scores) == {(t, s) for t in ("second", TEST_SET)
                           for s in ("reverse", "baseline", "bt")}
    md = (tmp_path / "report.md").read_text()
    for test_set, sentences in (("second", 30), (TEST_SET, 37)):
        section = md.split(f"## Test set `{test_set}` ({sentences} sentences)")[1].split("##")[0]
        for system in ("reverse", "baseline", "bt"):
            s = scores[test_set, system]
            assert s["sentences"] == sentences
            assert f"| {system} | {s['source_lang']}->{s['target_lang']} | {s['bleu']:.2f} | " \
                   f"{s['chrf']:.2f} |" in section
        assert scores[test_set, "baseline"]["p_bleu"] is None
        assert scores[test_set, "reverse"]["p_bleu"] is None  # nothing else in its direction
        # sacrebleu's command line: the same test, the same p-values
        ref = tmp_path / "raw" / f"test_{test_set}.{TGT}"
        hyps = [tmp_path / "eval" / test_set / f"{n}.hyp" for n in ("baseline", "bt")]
        cli = subprocess.run([sys.executable, "-m", "sacrebleu", str(ref), "-i", *map(str, hyps),
                              "--paired-bs", "-m", "bleu", "chrf", "-f", "text", "--no-color"],
                             capture_output=True, text=True, check=True).stdout
        bt = scores[test_set, "bt"]
        shown = [f"{bt['p_bleu']:.4f}", f"{bt['p_chrf']:.4f}"]
        assert re.findall(r"\(p = ([\d.]+)\)", cli) == shown
        assert f"| {shown[0]} | {shown[1]} | baseline |" in section
    timings = {(t["stage"], t["name"]) for t in report["timings"]["stages"]}
    assert {("train", "bt"), ("evaluate", f"bt {TEST_SET}"), ("evaluate", "reverse second"),
            ("back-translate", f"mono_{TGT} shard 1")} <= timings
    # the command reproduces the run: the experiment file as the run applied it (env included)
    saved = tmp_path / "experiment.yaml"
    assert report["command"] == f"bash scripts/pipeline.sh {saved}"
    assert yaml.safe_load(saved.read_text())["bt"]["shards"] == 2
    assert report["title"] == f"tiny {SRC}->{TGT}: baseline vs back-translation (tiny)"
