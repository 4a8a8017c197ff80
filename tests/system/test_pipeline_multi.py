"""The multilingual experiment end to end (an experiment file with ``pairs``, through
``scripts/pipeline.sh``): three pairs into the target language, made from the Tatoeba slice
as in test_bt_multilingual.py (the source language, its sentences with the words reversed,
"rv", and uppercased, "up", the low-resource pair), tiny profile. One run, shared by the
assertions: every system trained and evaluated per pair, every monolingual line
back-translated into every language, one vocabulary, the report's per-pair table.
Marked slow: each run (one model at a time, and side by side) starts some 30 fairseq
processes (about 4 minutes on 2 free cores)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import ROOT, SRC, TATOEBA, TGT, read_lines, write_lines

pytestmark = pytest.mark.slow

REV, UP = "rv", "up"
LANGS = {SRC: lambda s: s, REV: lambda s: " ".join(reversed(s.split())), UP: str.upper}
N_BITEXT = {SRC: 200, REV: 200, UP: 80}
N_MONO, N_TEST = 40, 25
PAIRS = [f"{lang}-{TGT}" for lang in LANGS]
# the UP pair's first test pair (target, source)
LEAKED = tuple(read_lines(TATOEBA / f"test.{lang}", 1, N_TEST)[0] for lang in (TGT, SRC))
FORWARD = ["baseline", "bt", "multi", "multi_bt"]
REVERSE = ["reverse", "multi_reverse"]


def experiment(folder: Path) -> Path:
    """The corpus files and the experiment file (in ``folder``): the UP pair's test set
    (test_up) is the next N_TEST test pairs, and its first pair is the first bitext pair of
    every pair (for the cross-pair contamination guard)."""
    corpus = folder / "corpus"
    corpus.mkdir(parents=True)
    sizes = {"train": (200, 0), "valid": (30, 0), "test": (N_TEST, 0),
             "test_up": (N_TEST, N_TEST)}
    for split, (n, skip) in sizes.items():
        name = split.split("_")[0]
        tgt = read_lines(TATOEBA / f"{name}.{TGT}", n, skip)
        src = read_lines(TATOEBA / f"{name}.{SRC}", n, skip)
        if split == "train":
            tgt[0], src[0] = LEAKED
        write_lines(corpus / f"{split}.{TGT}", tgt)
        for lang, f in LANGS.items():
            write_lines(corpus / f"{split}.{lang}", [f(x) for x in src])
    write_lines(corpus / f"mono.{TGT}", read_lines(TATOEBA / f"train.{TGT}", N_MONO, 600))
    pairs = {lang: {"bitext": {"source": f"train.{lang}", "target": f"train.{TGT}",
                               "max_pairs": N_BITEXT[lang]},
                    "valid": {"source": f"valid.{lang}", "target": f"valid.{TGT}"},
                    "tests": {"tatoeba": {"source": f"{test}.{lang}", "target": f"{test}.{TGT}"}}}
             for lang, test in ((lang, "test_up" if lang == UP else "test") for lang in LANGS)}
    exp = {"name": "multi_tiny", "target_lang": TGT, "allow_any_language": True, "work": "run",
           "data_dir": "corpus", "pairs": pairs, "mono": {"files": [f"mono.{TGT}"]},
           "profile": "tiny", "spm_vocab": 300, "eval_beam": 2,
           "bt": {"generate_args": "--max-len-a 1.2 --max-len-b 5 --chunk-size 30"}}
    path = folder / "multi.yaml"
    path.write_text(yaml.safe_dump(exp, sort_keys=False), encoding="utf-8")
    return path


def pipeline(exp: Path, cwd: Path, side_by_side: bool, **settings):
    env = {k: v for k, v in os.environ.items() if k not in ("WORK", "PROFILE", "SRC", "TGT")}
    env.update(settings, BASELINE_PARALLEL=str(int(side_by_side)))
    env["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    return subprocess.run(["bash", str(ROOT / "scripts" / "pipeline.sh"), str(exp)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module", params=[False, True], ids=["one_at_a_time", "side_by_side"])
def finished(request, tmp_path_factory):
    """The run with BASELINE_PARALLEL=0 (a CPU profile's default) and =1 (a GPU profile's: the
    pairs' bilingual chains and the multilingual ones side by side, then the evaluations)."""
    folder = tmp_path_factory.mktemp("multi")
    p = pipeline(experiment(folder), folder, request.param)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return folder / "run", p.stdout


def lines(path: Path):
    return path.read_text(encoding="utf-8").splitlines()


def test_every_system_evaluated_per_pair(finished):
    work, out = finished
    assert f"== data: multi_tiny (pairs {' '.join(PAIRS)}, " in out
    report = json.loads((work / "report.json").read_text())
    got = {(s["pair"], s["system"], s["source_lang"], s["target_lang"])
           for s in report["systems"]}
    want = {(f"{lang}-{TGT}", name, lang, TGT) for lang in LANGS for name in FORWARD} | {
        (f"{lang}-{TGT}", name, TGT, lang) for lang in LANGS for name in REVERSE}
    assert got == want
    for s in report["systems"]:  # each on its pair's test set, compared with the pair's bt
        assert s["sentences"] == N_TEST and s["test_set"] == "tatoeba"
        assert s["reference"].endswith(f"/raw/{s['pair']}/test_tatoeba.{s['target_lang']}")
        assert len(lines(Path(s["hyp_file"]))) == N_TEST
        forward = s["target_lang"] == TGT
        assert s["baseline"] == (None if s["system"] in ("bt", "reverse") else
                                 "bt" if forward else "reverse")
    md = (work / "report.md").read_text()
    table = md[md.index("| direction | baseline | bt | multi | multi_bt | multi_reverse"):]
    for lang in LANGS:  # a row per direction, a cell per system
        row = next(x for x in table.splitlines() if x.startswith(f"| {lang}->{TGT} |"))
        assert row.count(" / ") == len(FORWARD)
    stages = {(t["stage"], t["name"]) for t in report["timings"]["stages"]}
    for pair in PAIRS:
        assert {("train", f"{pair}/{m}") for m in ("reverse", "baseline", "bt")} <= stages
        assert {("evaluate", f"{pair}/{m} tatoeba") for m in FORWARD + REVERSE} <= stages
    assert {("train", m) for m in ("multi", "multi_reverse", "multi_bt")} <= stages


def test_one_vocabulary_and_every_monolingual_line_back_translated(finished):
    work, _ = finished
    dicts = {p.read_text() for p in (work / "prep" / "bin").glob("dict.*.txt")}
    assert len(dicts) == 1 and len(list((work / "prep" / "bin").glob("dict.*.txt"))) == 4
    mono = lines(work / "raw" / f"mono.{TGT}")
    for lang in LANGS:  # each pair cleaned its copy; the run keeps the lines all kept
        assert set(mono) <= set(lines(work / "raw" / f"{lang}-{TGT}" / f"mono.{TGT}"))
    assert len(mono) == N_MONO
    bt = work / "bt"
    corpora = {**{f"{lang}-{TGT}/mono_{TGT}": (bt / f"{lang}-{TGT}" / f"mono_{TGT}", lang)
                  for lang in LANGS},
               **{f"multi/mono_{TGT}/{lang}": (bt / "multi" / f"mono_{TGT}" / lang, lang)
                  for lang in LANGS}}
    for name, (d, lang) in corpora.items():
        s = json.loads((d / "bt.summary.json").read_text())
        assert s["input_lines"] == s["translated"] == N_MONO, name
        assert s["output_pairs"] == N_MONO - sum(s["filtered"].values()), name
        assert len(lines(d / f"bt.{lang}")) == len(lines(d / f"bt.{TGT}")) == s["output_pairs"]
    multi_bin = bt / "multi" / f"mono_{TGT}" / "bin"
    for lang in LANGS:  # one corpus for bt_multilingual: each language its pair's files
        kept = json.loads((bt / "multi" / f"mono_{TGT}" / lang / "bt.summary.json")
                          .read_text())["output_pairs"]
        assert len(lines(multi_bin / f"train.{lang}-{TGT}.weights")) == kept
        # the multilingual +BT model drew from each pair's synthetic corpus (the counts of
        # fairseq's temperature sampling across the pairs, not the corpus sizes)
        log = (work / "models" / "multi_bt" / "hydra_train.log").read_text()
        line = log[log.index(f"bt_multilingual train epoch 1 {lang}-{TGT}: "):].splitlines()[0]
        assert int(line.split(" + ")[1].split()[0]) > 0, line
    report = json.loads((work / "report.json").read_text())
    assert set(report["back_translation"]) == set(corpora)
    assert set(report["cleaning"]) == set(PAIRS)


def test_every_pairs_sets_guard_every_pairs_bitext(finished):
    """The UP pair's test pair in every pair's bitext: each pair's cleaning drops it (the
    other pairs' as a sentence of UP's test set, passed by pipeline_multi.sh)."""
    work, _ = finished
    for lang in LANGS:
        raw = work / "raw" / f"{lang}-{TGT}"
        assert LEAKED[0] not in lines(raw / f"train.{TGT}"), lang
        found = json.loads((raw / "clean.json").read_text())["corpora"]["train"]
        assert found["contaminated_by"].get(
            "test_tatoeba" if lang == UP else f"{UP}-{TGT}/test_tatoeba", 0) >= 1, lang


def test_chains_side_by_side_or_one_at_a_time(request, finished):
    """BASELINE_PARALLEL=1: the multilingual model trains while the first pair's reverse model
    does (their recorded spans overlap), and the pairs' evaluations overlap; =0: no two
    trainings overlap."""
    work, _ = finished
    spans = {(t["stage"], t["name"]): (t["start"], t["end"]) for t in
             json.loads((work / "report.json").read_text())["timings"]["stages"]}

    def overlap(a, b):
        return spans[a][0] < spans[b][1] and spans[b][0] < spans[a][1]

    side_by_side = request.node.callspec.id == "side_by_side"
    assert overlap(("train", "multi"), ("train", f"{PAIRS[0]}/reverse")) == side_by_side
    assert overlap(("evaluate", f"{PAIRS[0]}/multi tatoeba"),
                   ("evaluate", f"{PAIRS[1]}/multi tatoeba")) == side_by_side
    if not side_by_side:
        trainings = sorted(v for k, v in spans.items() if k[0] == "train")
        assert all(a[1] <= b[0] for a, b in zip(trainings, trainings[1:]))


def test_a_failed_chain_fails_the_run_after_the_others(tmp_path):
    """BASELINE_PARALLEL=1 with the multilingual models' data pointed nowhere: both
    multilingual chains fail, each named; the pairs' bilingual chains beside them still finish
    (DONE), the run exits non-zero before evaluating or reporting."""
    path = experiment(tmp_path)
    exp = yaml.safe_load(path.read_text(encoding="utf-8"))
    exp["multilingual"] = {"train_args": "task.data=/nonexistent/bin"}
    path.write_text(yaml.safe_dump(exp, sort_keys=False), encoding="utf-8")
    p = pipeline(path, tmp_path, side_by_side=True)
    assert p.returncode != 0
    assert "error: multilingual failed (side by side)" in p.stderr, p.stderr[-3000:]
    assert "error: multilingual_bt failed (side by side)" in p.stderr
    work = tmp_path / "run"
    for pair in PAIRS:
        assert (work / "models" / pair / "bt" / "DONE").exists(), pair
    assert not (work / "models" / "multi" / "DONE").exists()
    assert not (work / "eval").exists() and not (work / "report.md").exists()


@pytest.mark.timeout(1800)  # the finished run (its fixture) included
@pytest.mark.parametrize("finished", [False], indirect=True, ids=["one_at_a_time"])
def test_an_unfinished_model_is_scored_once_finished(finished, tmp_path):
    """A model without DONE (another variant's run still training it, or one killed) is
    neither evaluated nor reported, so no score of its unfinished checkpoint sticks; once it
    is finished (its DONE, as the run training it writes it), the next run scores it. On a
    copy of the finished run."""
    work, _ = finished
    folder = tmp_path / "copy"
    shutil.copytree(work.parent, folder, symlinks=True)
    models = folder / "run" / "models" / PAIRS[0]
    shutil.copytree(models / "bt", models / "bt_v")
    (models / "bt_v" / "DONE").unlink()
    scores = folder / "run" / "eval" / "tatoeba" / PAIRS[0]
    for finished_now in (False, True):
        p = pipeline(folder / "multi.yaml", folder, False)
        assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
        skipped = f"== evaluate {PAIRS[0]}/bt_v: not finished training, skipped"
        assert (skipped in p.stdout) != finished_now
        assert (scores / "bt_v.json").exists() == finished_now
        report = json.loads((folder / "run" / "report.json").read_text())
        assert ((PAIRS[0], "bt_v") in {(s["pair"], s["system"]) for s in report["systems"]}) \
            == finished_now
        shutil.copy(models / "bt" / "DONE", models / "bt_v" / "DONE")


def translated_by_export(folder: Path, test: Path):
    tool = Path(sys.executable).parent / "fairseq-bt-translate"
    p = subprocess.run([str(tool), "--model", str(folder), "--input", str(test)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return p.stdout.splitlines()


def check_export(work: Path, pair: str, lang: str, system: str):
    """WORK/export/PAIR/SYSTEM: the pair's system (the pair's own, or a multilingual one with
    its language tokens) translating the pair's test set."""
    folder = work / "export" / pair / system
    card = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    multilingual = system.startswith("multi")
    assert (card["source_lang"], card["target_lang"]) == (lang, TGT)
    assert card["name"] == (system if multilingual else f"{pair}/{system}")
    assert card["checkpoint"] == str(work / "models" / card["name"] / "checkpoint_best.pt")
    assert (card["source_prefix"], card["target_prefix"]) == (
        ([f"__{lang}__"], [f"__{TGT}__"]) if multilingual else ([], []))
    report = json.loads((work / "report.json").read_text())
    # the scores of the model: on the pair's test set, or a multilingual one's on every pair's
    assert sorted((s["pair"], s["bleu"]) for s in card["run"]["scores"]) == sorted(
        (s["pair"], s["bleu"]) for s in report["systems"]
        if s["system"] == system and (multilingual or s["pair"] == pair))
    assert {s["pair"] for s in card["run"]["scores"]} == (set(PAIRS) if multilingual else {pair})
    test = work / "raw" / pair / f"test_tatoeba.{lang}"
    assert len(translated_by_export(folder, test)) == N_TEST


def test_each_pairs_best_system_exported(finished):
    """Each pair's system of highest BLEU on its test set (reverse models aside), bilingual or
    multilingual, exported into WORK/export/PAIR/NAME; the report names every export."""
    work, out = finished
    report = json.loads((work / "report.json").read_text())
    for pair, lang in zip(PAIRS, LANGS):
        scores = {s["system"]: s["bleu"] for s in report["systems"]
                  if s["pair"] == pair and s["target_lang"] == TGT}
        best = max(scores, key=lambda k: (scores[k], k))
        assert [p.name for p in (work / "export" / pair).iterdir() if p.is_dir()] == [best]
        check_export(work, pair, lang, best)
    assert len(report["exports"]) == len(PAIRS)
    md = (work / "report.md").read_text()
    assert md.count("**Exported**") == len(PAIRS)


@pytest.mark.timeout(1800)  # the finished run (its fixture) included
@pytest.mark.parametrize("finished", [False], indirect=True, ids=["one_at_a_time"])
def test_a_named_multilingual_system_exported_for_every_pair(finished, tmp_path):
    """A rerun with EXPORT_SYSTEM=multi_bt (on a copy of the finished run): nothing trained
    again; every pair's export is now the multilingual model, with the pair's language tokens,
    and no export of the system chosen before stays."""
    work, _ = finished
    folder = tmp_path / "copy"
    shutil.copytree(work.parent, folder, symlinks=True)
    p = pipeline(folder / "multi.yaml", folder, False, EXPORT_SYSTEM="multi_bt")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert [x for x in p.stdout.splitlines()
            if x.startswith("== train") and not x.endswith("done already")] == []
    run = folder / "run"
    for pair, lang in zip(PAIRS, LANGS):
        assert [x.name for x in (run / "export" / pair).iterdir() if x.is_dir()] == ["multi_bt"]
        check_export(run, pair, lang, "multi_bt")
