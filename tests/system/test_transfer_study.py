"""scripts/studies/transfer.sh end to end on the committed Tatoeba slice (tiny models, a few
updates each): every child scored in the report, each initialised child starting from its
parent, each child going on from its early model, and a re-run that does no work.

The slice has French and English only: the child is fr->en on the slice's first lines, the
bilingual parent fr->en on other lines, and the multilingual parent's second pair "es" is
French text of yet other lines under another name (a second pair as far as the study goes)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from helpers import ROOT, SRC, TATOEBA, TGT, read_lines

SCRIPT = ROOT / "scripts" / "studies" / "transfer.sh"
CHILDREN = ("child_scratch", "child_from_parent", "child_from_multi", "child_from_ae")
EARLY = 3
#: each child converged and after EARLY updates
SYSTEMS = set(CHILDREN) | {f"{c}_at_{EARLY}" for c in CHILDREN}
PARENTS = {"child_from_parent": "parent", "child_from_multi": "multi", "child_from_ae": "ae"}
#: FREEZE=EARLY: the loaded parameters stay the parent's until the early model is saved
ENV = dict(PARENT_UPDATES="4", AE_UPDATES="4", CHILD_EARLY=str(EARLY), FREEZE=str(EARLY),
           AE_ARCH="bt_transformer_vae_tiny", PROGRESS_INTERVAL="60")
#: split -> (slice file, lines, first line)
CHILD = {"train": ("train", 200, 0), "valid": ("valid", 40, 0), "test": ("test", 20, 0),
         "mono": ("train", 100, 600), "mono_source": ("train", 100, 800)}
PAIRS = {"fr": {"train": 300, "skip": 200, "valid_skip": 40},
         "es": {"train": 100, "skip": 500, "valid_skip": 70}}


def parallel(name, n, skip):
    return {"source": [str(TATOEBA / f"{name}.{SRC}")], "target": [str(TATOEBA / f"{name}.{TGT}")],
            "max_pairs": n, "skip": skip}


def mono(lang, name, n, skip):
    return {"files": [str(TATOEBA / f"{name}.{lang}")], "max_lines": n, "skip": skip}


def experiment_files(folder: Path):
    """The study's file (the child's data, the tiny profile) and the parents' file."""
    study = {"name": "tiny_transfer", "source_lang": SRC, "target_lang": TGT,
             "bitext": parallel(*CHILD["train"]), "valid": parallel(*CHILD["valid"]),
             "tests": {"tatoeba": parallel(*CHILD["test"])}, "mono": mono(TGT, *CHILD["mono"]),
             "mono_source": mono(SRC, *CHILD["mono_source"]), "spm_vocab": 300,
             "profile": "tiny", "eval_beam": 2, "bt": {"tag": ""}}
    pairs = {lang: {"bitext": parallel("train", p["train"], p["skip"]),
                    "valid": parallel("valid", 30, p["valid_skip"]),
                    "tests": {"tatoeba": parallel("test", 1, 0)}} for lang, p in PAIRS.items()}
    parents = {"name": "tiny_parents", "target_lang": TGT, "pairs": pairs,
               "mono": mono(TGT, "valid", 1, 0)}
    paths = folder / "study.yaml", folder / "parents.yaml"
    for path, exp in zip(paths, (study, parents)):
        path.write_text(yaml.safe_dump(exp, sort_keys=False), encoding="utf-8")
    return paths


def study(work: Path, code: int = 0, **settings):
    """The driver's output (stdout and stderr) on the experiment files beside ``work``."""
    env = {**os.environ, **ENV, **settings, "WORK": str(work),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    files = experiment_files(work.parent)
    p = subprocess.run(["bash", str(SCRIPT), *map(str, files)], env=env, capture_output=True,
                       text=True, timeout=900)
    assert p.returncode == code, (p.stdout + p.stderr)[-3000:]
    return p.stdout + p.stderr


def state(path: Path):
    from fairseq import checkpoint_utils

    import fairseq_bt_plugin  # noqa: F401  (it makes fairseq's checkpoint loading work)

    return checkpoint_utils.load_checkpoint_to_cpu(str(path))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    work = tmp_path_factory.mktemp("transfer") / "w"
    return work, study(work)


def test_the_data_come_from_the_experiment_files(finished):
    work, _ = finished
    raw = work / "raw"
    for split, key in (("train", "train"), ("valid", "valid"), ("test_tatoeba", "test")):
        name, n, skip = CHILD[key]
        for lang in (SRC, TGT):
            assert (raw / f"{split}.{lang}").read_text().splitlines() == \
                read_lines(TATOEBA / f"{name}.{lang}", n, skip)
    for lang, p in PAIRS.items():
        assert (work / "pretrain" / "raw" / f"{lang}-{TGT}" / f"train.{lang}").read_text(
            ).splitlines() == read_lines(TATOEBA / f"train.{SRC}", p["train"], p["skip"])
    prep = json.loads((work / "pretrain" / "prep" / "prepare.json").read_text())
    assert prep["spm_model"] == str(work / "prep" / "spm.model")  # one sentencepiece model
    assert (work / "prep" / "mono" / f"dict.{SRC}.txt").exists()  # the autoencoder's data


def test_every_child_is_scored(finished):
    work, out = finished
    report = json.loads((work / "report.json").read_text())
    assert {s["system"] for s in report["systems"]} == SYSTEMS
    assert all(s["beam"] == 2 and s["bleu"] >= 0 for s in report["systems"])
    assert set(report["validation"]) == SYSTEMS
    assert report["command"] == f"bash scripts/studies/transfer.sh {work}/experiment.yaml " \
        f"{work.parent / 'parents.yaml'}"
    assert sum("vocabulary coverage source" in x for x in out.splitlines()) == 3


def test_the_children_start_from_their_parents(finished):
    """Frozen for the early model's updates, a parameter every model has is its parent's (a
    multilingual parent's, the autoencoder's) in the early model, and scratch's is not."""
    work, _ = finished
    key = "encoder.layers.0.fc1.weight"
    scratch = state(work / "models" / f"child_scratch_at_{EARLY}" / "checkpoint_last.pt")
    for child, parent in PARENTS.items():
        early = state(work / "models" / f"{child}_at_{EARLY}" / "checkpoint_last.pt")
        loaded = state(work / "pretrain" / "models" / parent / "checkpoint_last.pt")
        assert torch.equal(early["model"][key], loaded["model"][key]), child
        assert not torch.equal(early["model"][key], scratch["model"][key]), child


def test_each_child_goes_on_from_its_early_model(finished):
    work, _ = finished
    for child in CHILDREN:
        early = work / "models" / f"{child}_at_{EARLY}" / "checkpoint_last.pt"
        log = (work / "models" / child / "hydra_train.log").read_text()
        assert f"Loaded checkpoint {early} (epoch" in log
        assert f"@ {EARLY} updates)" in log
        last = state(work / "models" / child / "checkpoint_last.pt")
        assert last["optimizer_history"][-1]["num_updates"] == 6  # the tiny profile's


def test_a_rerun_does_no_work(finished):
    work, _ = finished
    out = study(work)
    assert "done already" in out and "== train child_scratch: done already" in out
    assert not [x for x in out.splitlines() if x.startswith(("== train ", "== evaluate "))
                and "done already" not in x]


def test_a_parent_language_not_in_the_parents_file_is_an_error(finished):
    work, _ = finished
    out = study(work, code=2, PARENT_LANG="de")
    assert "error: " in out and "no pair de (PARENT_LANG: one of es fr)" in out
