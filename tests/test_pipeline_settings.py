"""The experiment file's schema owns every setting's default (pipeline.sh reads them from
it); the stage scripts require theirs. BT_TAG= (empty) turns tagging off through the whole
pipeline."""
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT, TGT
from test_pipeline import finish, pipeline

STAGES = sorted((ROOT / "scripts" / "stages").glob("*.sh"))


@pytest.mark.parametrize("stage", STAGES, ids=lambda p: p.name)
def test_a_stage_restates_no_default(stage):
    """No ``${VAR:-default}`` (nor ``${VAR-default}``) in a stage: a second default would drift
    from the driver's."""
    assert not re.findall(r"\$\{\w+:?-", stage.read_text())


@pytest.mark.parametrize("stage, args", [("train.sh", ["m", "de", "en"]),
                                         ("backtranslate.sh", ["m", "en", "de", "out"]),
                                         ("evaluate.sh", ["m", "de", "en"]),
                                         ("filter.sh", ["in", "out", "r", "f"])])
def test_a_stage_requires_its_settings(stage, args, tmp_path):
    env = {"PATH": os.environ["PATH"], "WORK": str(tmp_path)}
    p = subprocess.run(["bash", str(ROOT / "scripts" / "stages" / stage), *args], env=env,
                       capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode != 0 and re.search(r"\w+: set \w+", p.stderr), p.stderr
    assert not list(tmp_path.iterdir())  # nothing started


def test_empty_bt_tag_trains_untagged_bt(tmp_path):
    finish(pipeline(tmp_path, extra_env={"BT_TAG": "", "BT_FINETUNE": "0"}))
    assert json.loads((tmp_path / "prep" / "prepare.json").read_text())["tag"] == ""
    for d in (tmp_path / "prep" / "bin").glob("dict.*.txt"):
        assert "<BT>" not in d.read_text()
    # a model that has not finished training (another variant's run, a killed one) is not
    # scored: its eval would stand for the finished model's
    ghost = tmp_path / "models" / "ghost"
    ghost.mkdir()
    shutil.copy(tmp_path / "models" / "baseline" / "checkpoint_best.pt", ghost)
    out = finish(pipeline(tmp_path, extra_env={"BT_TAG": "", "BT_FINETUNE": "0"}))
    assert "== evaluate ghost: not finished training, skipped" in out
    assert not list((tmp_path / "eval").glob("*/ghost.json"))
    assert json.loads((tmp_path / "report.json").read_text())  # the report still written
    # the finished corpus records its settings; other generator settings under the same
    # corpus name stop the run (one line, before any training), not a silent reuse
    corpus = tmp_path / "bt" / f"mono_{TGT}"
    assert "beam=" in (corpus / "settings").read_text()
    p = pipeline(tmp_path, extra_env={"BT_TAG": "", "BT_FINETUNE": "0", "BT_NAME": "bt2",
                                      "BT_ARGS": "--max-len-b 50"})
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 2
    err = [line for line in out.splitlines() if line.startswith("error: ")]
    assert err and f"{corpus} was made with" in err[0] and "BT_CORPUS" in err[0], out[-2000:]
    assert not (tmp_path / "models" / "bt2").exists()
    log = (tmp_path / "models" / "bt" / "hydra_train.log").read_text()
    assert "'bt_tag': ''," in log and "'bt_data': '" in log
    systems = {s["system"] for s in json.loads((tmp_path / "report.json").read_text())["systems"]}
    assert systems == {"reverse", "baseline", "bt"}


def test_an_unknown_profile_stops_before_any_work(tmp_path):
    p = pipeline(tmp_path, extra_env={"PROFILE": "no_such_profile"})
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 2 and "no_such_profile" in out and "configs/" in out, out
    assert len(out.strip().splitlines()) == 1 and "profile: " in out, out  # key and file named
    assert not list(tmp_path.iterdir())  # nothing written
