"""fairseq-bt-report on a hand-made run directory (no training): every system on every test
set with sacrebleu's scores and paired bootstrap p-values, the cleaning and back-translation
counts, the experiment file's hash and the command, in report.md and report.json."""
import hashlib
import json
from pathlib import Path

import pytest
import sacrebleu

from fairseq_bt_plugin.report import main

from helpers import SRC, TATOEBA, TGT, read_lines, write_lines

SETS = {"first": 40, "second": 25}


CHRF_PP = sacrebleu.metrics.CHRF(word_order=2)


def evaluation(work: Path, test_set: str, system: str, src: str, tgt: str, hyps):
    """What fairseq-bt-evaluate leaves: eval/SET/SYSTEM.{hyp,json}."""
    ref = work / "raw" / f"test_{test_set}.{tgt}"
    refs = ref.read_text(encoding="utf-8").splitlines()
    out = work / "eval" / test_set
    out.mkdir(parents=True, exist_ok=True)
    write_lines(out / f"{system}.hyp", hyps)
    bleu, chrf = sacrebleu.metrics.BLEU(), sacrebleu.metrics.CHRF()
    (out / f"{system}.json").write_text(json.dumps({
        "system": system, "checkpoint": f"/models/{system}/checkpoint_best.pt",
        "source_lang": src, "target_lang": tgt, "input": str(ref.with_suffix(f".{src}")),
        "reference": str(ref), "sentences": len(hyps),
        "bleu": round(bleu.corpus_score(hyps, [refs]).score, 2),
        "chrf": round(chrf.corpus_score(hyps, [refs]).score, 2),
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
        # chrF++, as fairseq-bt-evaluate writes it (none in a score written before it did)
        **({} if system == "reverse" else {
            "chrfpp": round(CHRF_PP.corpus_score(hyps, [refs]).score, 2),
            "chrfpp_signature": str(CHRF_PP.get_signature())})}))


def worse(lines, every: int):
    """Every ``every``-th line's last word dropped."""
    return [" ".join(x.split()[:-1]) if i % every == 0 else x for i, x in enumerate(lines)]


@pytest.fixture
def work(tmp_path):
    (tmp_path / "raw").mkdir()
    skip = 0
    for test_set, n in SETS.items():
        for lang in (SRC, TGT):
            write_lines(tmp_path / "raw" / f"test_{test_set}.{lang}",
                        read_lines(TATOEBA / f"test.{lang}", n, skip))
        skip += n
        refs = {lang: (tmp_path / "raw" / f"test_{test_set}.{lang}").read_text(
            encoding="utf-8").splitlines() for lang in (SRC, TGT)}
        evaluation(tmp_path, test_set, "baseline", SRC, TGT, worse(refs[TGT], 2))
        evaluation(tmp_path, test_set, "bt", SRC, TGT, worse(refs[TGT], 5))
        evaluation(tmp_path, test_set, "reverse", TGT, SRC, worse(refs[SRC], 3))
    (tmp_path / "raw" / "clean.json").write_text(json.dumps({
        f"mono.{TGT}": {"lines_in": 120, "lines_out": 101,
                        "dropped": {"empty": 4, "contaminated": {"first": 3}, "langid": 12}}}))
    bt = tmp_path / "bt" / f"mono_{TGT}"
    bt.mkdir(parents=True)
    (bt / "bt.summary.json").write_text(json.dumps({
        "input_lines": 101, "skipped_input": {"input_too_long": 1}, "translated": 100,
        "hypotheses": 100, "filtered": {"length_ratio": 7, "duplicate": 2}, "output_pairs": 91,
        "model": "/models/reverse/checkpoint_best.pt", "merged_from": ["s0", "s1"]}))
    return tmp_path


def test_every_system_on_every_test_set(work, capsys):
    experiment = work / "experiment.yaml"
    experiment.write_text("name: test\n")
    main(["--work-dir", str(work), "--title", "A title", "--experiment-file", str(experiment),
          "--command", "BT_SHARDS=2 bash scripts/pipeline.sh"])
    report = json.loads((work / "report.json").read_text())
    md = (work / "report.md").read_text()
    assert capsys.readouterr().out.startswith(md)
    assert report["title"] == "A title" and md.startswith("# A title\n")
    assert report["test_sets"] == ["first", "second"]
    scores = {(s["test_set"], s["system"]): s for s in report["systems"]}
    assert set(scores) == {(t, s) for t in SETS for s in ("baseline", "bt", "reverse")}
    for test_set, n in SETS.items():
        section = md.split(f"## Test set `{test_set}` ({n} sentences)")[1].split("\n## ")[0]
        refs = (work / "raw" / f"test_{test_set}.{TGT}").read_text().splitlines()
        hyps = {s: (work / "eval" / test_set / f"{s}.hyp").read_text().splitlines()
                for s in ("baseline", "bt")}
        # the p-values of sacrebleu's paired bootstrap, baseline first
        from sacrebleu.significance import PairedTest

        _, expected = PairedTest(list(hyps.items()), {"b": sacrebleu.metrics.BLEU(),
                                                      "c": sacrebleu.metrics.CHRF()},
                                 [refs], test_type="bs", n_samples=1000)()
        bt = scores[test_set, "bt"]
        assert (bt["baseline"], bt["p_bleu"], bt["p_chrf"]) == (
            "baseline", expected["BLEU"][1].p_value, expected["chrF2"][1].p_value)
        for system, direction in (("baseline", f"{SRC}->{TGT}"), ("bt", f"{SRC}->{TGT}"),
                                  ("reverse", f"{TGT}->{SRC}")):
            s = scores[test_set, system]
            chrfpp = "" if system == "reverse" else f"{s['chrfpp']:.2f}"
            row = f"| {system} | {direction} | {s['bleu']:.2f} | {s['chrf']:.2f} | {chrfpp} |"
            assert row in section
        assert f"| {bt['p_bleu']:.4f} | {bt['p_chrf']:.4f} | baseline |" in section
        for system in ("baseline", "reverse"):  # the baseline of each direction
            assert scores[test_set, system]["p_bleu"] is None
            assert scores[test_set, system]["baseline"] is None
    assert report["bootstrap"] == "bs:1000|seed:12345"
    # the data counts
    assert report["cleaning"][f"mono.{TGT}"]["dropped"]["langid"] == 12
    assert f"| mono.{TGT} / dropped / contaminated / first | 3 |" in md
    assert f"| mono.{TGT} / lines_out | 101 |" in md
    assert report["back_translation"][f"mono_{TGT}"]["shards"] == 2
    assert (f"| mono_{TGT} | 101 | input_too_long 1 | 100 | length_ratio 7, duplicate 2 | 91 "
            "| 2 |") in md
    # what reproduces the run
    sha = hashlib.sha256(b"name: test\n").hexdigest()
    assert report["experiment"] == {"path": str(experiment), "sha256": sha,
                                    "text": "name: test\n"}
    assert f"`{experiment}` (SHA-256 `{sha}`" in md
    assert report["command"] == "BT_SHARDS=2 bash scripts/pipeline.sh"
    assert "```bash\nBT_SHARDS=2 bash scripts/pipeline.sh\n```" in md
    assert len(report["code"]["commit"]) == 40
    assert (work / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_cleaning_or_experiment_file(work):
    (work / "raw" / "clean.json").unlink()
    main(["--work-dir", str(work)])
    report = json.loads((work / "report.json").read_text())
    assert report["cleaning"] is None and report["experiment"] is None
    md = (work / "report.md").read_text()
    assert "Cleaning: none recorded (no `raw/clean.json`)." in md
    assert "experiment file" not in md


def test_references_compared_by_content(work, capsys):
    """A result scored against another copy of the same references (a run directory copied
    to a new WORK and continued there) is compared; other references are a named error."""
    copy = work / "elsewhere" / f"test_first.{TGT}"
    copy.parent.mkdir()
    path = work / "eval" / "first" / "bt.json"
    result = json.loads(path.read_text())
    copy.write_text((work / "raw" / f"test_first.{TGT}").read_text(encoding="utf-8"),
                    encoding="utf-8")
    path.write_text(json.dumps({**result, "reference": str(copy)}))
    main(["--work-dir", str(work)])
    report = json.loads((work / "report.json").read_text())
    bt = next(s for s in report["systems"] if (s["test_set"], s["system"]) == ("first", "bt"))
    assert bt["baseline"] == "baseline" and bt["p_bleu"] is not None
    (work / "report.md").unlink()
    copy.write_text("another line\n" * SETS["first"], encoding="utf-8")
    with pytest.raises(SystemExit) as e:
        main(["--work-dir", str(work)])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"fairseq-bt-report: error: {work}/eval/first/") and (
        "not the same references" in err), err
    assert not (work / "report.md").exists()


@pytest.mark.parametrize("case", ["old_evaluation", "no_experiment_file", "bad_clean_json"])
def test_errors_are_one_line(case, work, capsys):
    argv = ["--work-dir", str(work)]
    if case == "old_evaluation":
        path = work / "eval" / "first" / "bt.json"
        old = json.loads(path.read_text())
        del old["reference"]
        path.write_text(json.dumps(old))
        expected = f"{path}: written by an older fairseq-bt-evaluate"
    elif case == "no_experiment_file":
        argv += ["--experiment-file", str(work / "nowhere.yaml")]
        expected = f"{work}/nowhere.yaml: experiment file not found"
    else:
        (work / "raw" / "clean.json").write_text("{")
        expected = f"{work}/raw/clean.json: not JSON"
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and err.startswith(f"fairseq-bt-report: error: {expected}"), err
    assert len(err.splitlines()) == 1
    assert not (work / "report.md").exists() and not (work / "report.json").exists()


def test_validation_curves_from_both_log_formats(work, capsys):
    """Validation lines of fairseq-hydra-train's log (the pipeline's models) and of
    fairseq-train --log-format json (a model trained outside the stages): each model's curve in
    report.json, and in report.md its length, last update and best loss with its update. A
    model whose training ended with its last validation its best (child) is named as still
    improving in report.json, report.md and a warning on stderr; one past its best (baseline)
    is not, nor one still training (running: not finished)."""
    hydra = work / "models" / "baseline" / "hydra_train.log"
    running = work / "models" / "running" / "hydra_train.log"
    plain = work / "models" / "child" / "train.log"
    for p in (hydra, running, plain):
        p.parent.mkdir(parents=True)
    losses = {"baseline": [(100, 7.5), (200, 6.25), (300, 6.5)], "child": [(125, 9.0), (250, 8.0)],
              "running": [(50, 9.0), (100, 8.5)]}
    for path, name in ((hydra, "baseline"), (running, "running")):
        path.write_text("".join(
            f"[2026-11-26 10:00:0{i}][valid][INFO] - " + json.dumps(
                {"epoch": 1, "valid_loss": str(x), "valid_num_updates": str(u)}) + "\n"
            + f"[2026-11-26 10:00:0{i}][train_inner][INFO] - " + json.dumps({"loss": "1"}) + "\n"
            for i, (u, x) in enumerate(losses[name])))
    plain.write_text("2026-11-26 10:00:00 | INFO | fairseq_cli.train | model bt_transformer\n" + "".join(
        "2026-11-26 10:00:01 | INFO | valid | " + json.dumps(
            {"epoch": 1, "valid_loss": str(x), "valid_num_updates": str(u)}) + "\n"
        for u, x in losses["child"]) + "2026-11-26 10:00:02 | INFO | fairseq_cli.train | "
        "Stopping training due to num_updates: 250 >= max_update: 250\n")
    main(["--work-dir", str(work)])
    report = json.loads((work / "report.json").read_text())
    assert report["validation"] == {name: [{"update": u, "loss": x} for u, x in points]
                                    for name, points in losses.items()}
    md = (work / "report.md").read_text()
    assert "| baseline | 3 | 300 | 6.250 | 200 | not finished |" in md
    assert "| child | 2 | 250 | 8.000 | 250 | max_update |" in md
    assert "| running | 2 | 100 | 8.500 | 100 | not finished |" in md
    assert report["still_improving"] == ["child"]
    assert "**Warning**: child: best validation loss at the last validation" in md
    err = capsys.readouterr().err
    assert "warning: child: best validation loss at the last validation" in err
    assert "baseline" not in err


def hydra_log(work, name, points, last_line):
    """A fairseq-hydra-train log of model NAME: its validations, then how it stopped."""
    path = work / "models" / name / "hydra_train.log"
    path.parent.mkdir(parents=True)
    path.write_text("".join(
        "[2026-11-26 10:00:00][valid][INFO] - " + json.dumps(
            {"epoch": 1, "valid_loss": str(x), "valid_num_updates": str(u)}) + "\n"
        for u, x in points) + f"[2026-11-26 10:00:01][fairseq_cli.train][INFO] - {last_line}\n"
        "[2026-11-26 10:00:02][fairseq_cli.train][INFO] - done training in 9.0 seconds\n")


def test_a_comparison_with_a_model_stopped_by_its_cap_is_flagged(work, capsys):
    """Each model's updates, best update and stop reason from its log (report.json's models
    and each system's training); a system compared with one stopped by the cap (here the
    baseline) is named as not converged in report.json, report.md and on stderr; a model
    stopped by patience is not."""
    hydra_log(work, "baseline", [(100, 7.0), (200, 6.5), (300, 6.25)],
              "Stopping training due to num_updates: 300 >= max_update: 300")
    hydra_log(work, "bt", [(100, 7.0), (200, 6.0), (300, 6.1), (400, 6.2)],
              "early stop since valid performance hasn't improved for last 2 runs")
    main(["--work-dir", str(work)])
    report = json.loads((work / "report.json").read_text())
    assert report["models"] == {
        "baseline": {"updates": 300, "best_update": 300, "best_loss": 6.25,
                     "stopped_by": "max_update"},
        "bt": {"updates": 400, "best_update": 200, "best_loss": 6.0, "stopped_by": "patience"}}
    systems = {(s["test_set"], s["system"]): s for s in report["systems"]}
    assert systems["first", "bt"]["converged"] is True
    assert systems["first", "baseline"]["converged"] is False
    assert systems["first", "reverse"]["training"] is None  # no log: e.g. a reused model
    assert report["not_converged"] == ["baseline"]
    md = (work / "report.md").read_text()
    assert "| bt | fr->en |" in md and "| baseline | patience at 400 (best 200) |" in md
    assert "| **cap** at 300 (best 300) |" in md
    assert md.count("**not converged**: baseline stopped at the cap") == len(SETS)
    assert "| bt | 4 | 400 | 6.000 | 200 | patience |" in md
    assert "warning: not converged: baseline stopped at the cap" in capsys.readouterr().err


def test_a_filtered_corpus_and_each_outputs_own_record(work):
    """A corpus written by fairseq-bt-filter is counted as its pairs in, dropped and kept
    (never ``None``); each output's own record (its DONE) is listed, not the last command's
    settings, and what each score was computed with."""
    from fairseq_bt_plugin.provenance import record

    filtered = work / "bt" / f"mono_{TGT}_reverse_0.1"
    (filtered / "bin").mkdir(parents=True)
    (filtered / "bin" / "train.weights").write_text("1.0\n")
    (filtered / "bt.summary.json").write_text(json.dumps({
        "command": "filter", "method": "reverse", "drop_worst": 0.1, "max_score": None,
        "input": "bt.summary.json", "forward_model": None, "reverse_model": "/m/reverse.pt",
        "input_pairs": 91, "output_pairs": 82, "dropped": 9, "unscored": 0}))
    (work / "models" / "bt").mkdir(parents=True)
    record(str(work / "models" / "bt" / "DONE"), str(work),
           ["profile=tiny", f"++task.bt_data=WORK/bt/mono_{TGT}_reverse_0.1/bin"],
           [str(filtered / "bin")])
    record(str(work / "bt" / f"mono_{TGT}" / "DONE"), str(work), ["mode=beam", "beam=2"], [])
    for test_set in SETS:
        record(str(work / "eval" / test_set / "bt.done"), str(work), ["beam=5"], [])
    main(["--work-dir", str(work)])
    md = (work / "report.md").read_text()
    assert "None" not in md
    assert (f"| mono_{TGT}_reverse_0.1 | 91 | 0 |  | filter (reverse, drop 0.1) 9 | 82 | 1 |"
            in md)
    assert "## How each output was made" in md
    assert (f"| models/bt | `profile=tiny`<br>`++task.bt_data=WORK/bt/mono_{TGT}_reverse_0.1/bin`"
            f" | `bt/mono_{TGT}_reverse_0.1/bin` |") in md
    assert f"| bt/mono_{TGT} | `mode=beam`<br>`beam=2` |  |" in md
    assert "Scores computed with: `beam=5` (no record for: baseline, reverse)." in md
    report = json.loads((work / "report.json").read_text())
    assert report["provenance"]["models/bt"]["settings"][0] == "profile=tiny"
    assert {s["system"]: s["scored_with"] for s in report["systems"]}["bt"] == ["beam=5"]
