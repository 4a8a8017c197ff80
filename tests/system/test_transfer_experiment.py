"""scripts/transfer_experiment.sh end to end on a very small setting (tiny models, 3 updates
each): the project's own tools make every artefact, and a re-run does no work."""
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT, SHARED_DATA

#: the experiment's child is Multi30K de-en: an optional extra (README, "Tests and CI")
pytestmark = pytest.mark.shared_data("multi30k")
SCRIPT = ROOT / "scripts" / "transfer_experiment.sh"
CHILDREN = ("child_scratch", "child_from_parent", "child_from_multi", "child_from_ae")
#: each child converged (its best checkpoint) and after CHILD_EARLY updates
SYSTEMS = set(CHILDREN) | {f"{c}_at_2" for c in CHILDREN}
ENV = dict(CHILD_PAIRS="200", PARENT_PAIRS="200", MULTI_CS_PAIRS="150", MONO="100", VALID="20",
           TEST="23", SPM_VOCAB="300", ARCH="bt_transformer_tiny",
           AE_ARCH="bt_transformer_vae_tiny", MODEL_ARGS="", MAX_UPDATE="4", CHILD_EARLY="2",
           VALID_INTERVAL="2", WARMUP="1", MAX_TOKENS="1024", BEAM="1")


def experiment(work: Path, code: int = 0, **settings):
    """The script's stdout (its stderr too when ``code`` is not 0); ``settings``: more VARs."""
    env = {**os.environ, **ENV, **settings, "WORK": str(work), "DATA": str(SHARED_DATA),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    p = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True,
                       timeout=900)
    assert p.returncode == code, (p.stdout + p.stderr)[-3000:]
    return p.stdout + (p.stderr if code else "")


def lines(path: Path) -> list:
    return path.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    for need in ("multi30k", "tatoeba/fra-eng"):
        if not (SHARED_DATA / need).exists():
            pytest.skip(f"no {need} in {SHARED_DATA}")
    work = tmp_path_factory.mktemp("transfer")
    return work, experiment(work)


def test_every_artefact(finished):
    work, out = finished
    raw = work / "raw"
    assert len(lines(raw / "parent_train.fr")) == len(lines(raw / "parent_train.en")) == 200
    parent_fr = lines(raw / "parent_train.fr")  # spread over the length-sorted Tatoeba file
    assert len(parent_fr[-1]) > 2 * len(parent_fr[0])
    child = json.loads((work / "prep" / "child" / "prepare.json").read_text())
    assert child["pairs"]["test"] == 23 and child["mono"] == {"de": 100, "en": 100}
    parent = json.loads((work / "prep" / "parent" / "prepare.json").read_text())
    assert parent["spm_model"] == str(work / "prep" / "child" / "spm.model")
    multi = json.loads((work / "prep" / "multi" / "prepare.json").read_text())
    assert multi["spm_model"] == parent["spm_model"]
    assert sorted(multi["lang_pairs"]) == ["cs-en", "fr-en"]
    with gzip.open(SHARED_DATA / "multi30k" / "task1" / "train.en.gz", "rt") as f:
        task1 = [x.rstrip("\n") for _, x in zip(range(350), f)]
    assert lines(raw / "train.en") == task1[:200]  # the child's, then the parent's cs-en lines
    assert lines(raw / "multi" / "cs-en" / "train.en") == task1[200:]
    inits = {x.strip() for x in out.splitlines() if "init from" in x}  # printed per phase
    assert len(inits) == 3 and "vocabulary coverage source" in out
    report = json.loads((work / "report.json").read_text())
    from fairseq import checkpoint_utils

    import fairseq_bt_plugin  # noqa: F401  (it makes fairseq's checkpoint loading work)

    for child in CHILDREN:  # validated every VALID_INTERVAL updates only (not per epoch too)
        assert [p["update"] for p in report["validation"][child]] == [2, 4]
        early = checkpoint_utils.load_checkpoint_to_cpu(
            str(work / "models" / child / "checkpoint_early.pt"))
        assert early["optimizer_history"][-1]["num_updates"] == 2
        assert (work / "models" / child / "checkpoint_best.pt").exists()
    assert "| child_from_multi | 2 | 4 |" in (work / "report.md").read_text()
    assert {s["system"] for s in report["systems"]} == SYSTEMS
    for s in report["systems"]:
        assert s["sentences"] == 23 and s["beam"] == 1 and "nrefs:1" in s["bleu_signature"]
        assert len(lines(work / "eval" / "flickr2016" / f"{s['system']}.hyp")) == 23
    assert "| child_from_ae |" in (work / "report.md").read_text()


def test_rerun_does_no_work(finished):
    work, _ = finished
    stamps = {p: p.stat().st_mtime_ns for p in work.rglob("*")
              if p.is_file() and not p.name.startswith("report")}
    out = experiment(work)
    assert out.count(": done") == 7  # two parents, the autoencoder, four children
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_other_settings_stop_at_the_finished_model(finished):
    """A finished model asked for with other settings (here the children's patience) stops the
    script naming it and what differs, before any work: never the old model reused silently."""
    work, _ = finished
    stamps = {p: p.stat().st_mtime_ns for p in (work / "models").rglob("*") if p.is_file()}
    out = experiment(work, code=2, CHILD_PATIENCE="7")
    error = out.strip().splitlines()[-1]
    assert error.startswith(f"error: {work}/models/child_scratch/DONE: finished with '"), error
    was, now = error.split("finished with ")[1].split(", not ", 1)
    assert "--patience 5" in was and "--patience 7" in now and "parent_fr_en: done" in out
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
