"""scripts/continue.sh: a finished model of a pipeline run trains on from its last checkpoint
with a higher cap, and only what was made from it is made again (its scores, the report);
every other output stays as it was, byte for byte."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from fairseq_bt_plugin.provenance import dependents

from helpers import ROOT, SRC, TGT
from helpers.pipeline import TEST_SET, finish, pipeline


def continue_run(work: Path, *args):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run(["bash", str(ROOT / "scripts" / "continue.sh"), str(work), *args],
                          env=env, cwd=work.parent, capture_output=True, text=True, timeout=900)


def test_what_was_made_from_a_model(finished_run):
    """The outputs made from a model, found through their stamps: the reverse model's corpus,
    the models trained on it and everything after; the baseline's scores alone."""
    work, _ = finished_run
    found = {os.path.relpath(p, work) for p in dependents(str(work / "models" / "reverse"),
                                                           str(work))}
    assert {f"bt/mono_{TGT}/DONE", "models/bt/DONE", "models/bt_ft/DONE",
            f"eval/{TEST_SET}/reverse.done", f"eval/{TEST_SET}/bt_ft.done"} <= found
    assert "models/baseline/DONE" not in found and "models/reverse/DONE" not in found
    assert {os.path.relpath(p, work) for p in dependents(
        str(work / "models" / "baseline"), str(work))} == {f"eval/{TEST_SET}/baseline.done"}


def test_a_model_goes_on_with_a_higher_cap(finished_run, tmp_path):
    work = tmp_path / "w"
    shutil.copytree(finished_run[0], work, symlinks=True)
    for bad, said in ((["baseline", "model.dropout=0.3"], "give optimization.max_update=N"),
                      (["baseline", "optimization.max_update=6"], "trained 6 updates already"),
                      (["nothing", "optimization.max_update=9"], "not a finished model")):
        p = continue_run(work, *bad)
        assert p.returncode == 2 and said in p.stderr and len(p.stderr.splitlines()) == 1, \
            p.stderr
    kept = {p: p.read_bytes() for p in work.rglob("*") if p.is_file() and not (
        p.name.startswith(("report", "timings", ".digests", "experiment"))
        or "baseline" in p.parts or p.name.startswith("baseline.")) and "experiments" not in
        p.parts and "tensorboard" not in p.parts and "export" not in p.parts}
    p = continue_run(work, "baseline", "optimization.max_update=9")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert f"continue: removing {work}/eval/{TEST_SET}/baseline.* (made from baseline)" in \
        p.stdout
    assert p.stdout.count("continue: removing") == 1
    assert "== train bt: done already" in p.stdout
    log = (work / "models" / "baseline" / "hydra_train.log").read_text()
    assert f"Loaded checkpoint {work}/models/baseline/checkpoint_last.pt" in log
    report = json.loads((work / "report.json").read_text())
    assert report["models"]["baseline"]["updates"] == 9
    assert report["models"]["bt"]["updates"] == 12  # not trained again
    scored = {s["system"] for s in report["systems"]}
    assert "baseline" in scored and (work / "eval" / TEST_SET / "baseline.json").exists()
    assert {p: p.read_bytes() for p in kept} == kept  # everything else as it was
    assert "== export best" in p.stdout  # chosen again from the new scores
    assert [e["system"] for e in report["exports"]] == [
        max((s for s in report["systems"] if not s["system"].startswith("reverse")),
            key=lambda s: (s["bleu"], s["system"]))["system"]]
    # the pipeline run again finds the model finished as continued
    out = finish(pipeline(work, rounds=2))
    assert "== train baseline: done already" in out
    assert (work / "models" / "baseline" / "continued.txt").read_text() == \
        "optimization.max_update=9\n"
