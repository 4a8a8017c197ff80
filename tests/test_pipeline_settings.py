"""The experiment file's schema owns every setting's default (pipeline.sh reads them from
it); the stage scripts require theirs. (BT_TAG= (empty) through the whole pipeline:
tests/test_pipeline.py, beside BASELINE_PARALLEL=1.)"""
import os
import re
import subprocess

import pytest

from conftest import ROOT
from test_pipeline import pipeline

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


def test_an_unknown_profile_stops_before_any_work(tmp_path):
    p = pipeline(tmp_path, extra_env={"PROFILE": "no_such_profile"})
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 2 and "no_such_profile" in out and "configs/" in out, out
    assert len(out.strip().splitlines()) == 1 and "profile: " in out, out  # key and file named
    assert not list(tmp_path.iterdir())  # nothing written
