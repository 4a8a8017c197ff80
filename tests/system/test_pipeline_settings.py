"""The experiment file's schema owns every setting's default (pipeline.sh reads them from
it); the stage scripts require theirs. (BT_TAG= (empty) through the whole pipeline:
tests/system/test_pipeline.py, beside BASELINE_PARALLEL=1.)"""
import os
import re
import subprocess

import pytest

from helpers import ROOT, TYPOED_SETTINGS
from helpers.pipeline import pipeline

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


def variables_read_by(paths):
    """Upper-case names that the files read or set as variables: ``$NAME``, ``${NAME``,
    ``NAME=``, or a quoted ``'NAME'`` (an environment mapping's key)."""
    name = "([A-Z][A-Z0-9_]*)"
    pattern = re.compile(rf"\$\{{?{name}|\b{name}=(?!=)|[\"']{name}[\"']")
    return {next(g for g in m.groups() if g) for path in paths
            for m in pattern.finditer(path.read_text(encoding="utf-8"))}


def test_the_variables_of_scripts_and_tests_pass_the_settings_check():
    """A variable that starts like a setting but is none is an error (loader.check_environment);
    those the scripts, tests and benchmarks read are settings, the driver's own (printed by the
    settings step), or listed in NOT_SETTINGS."""
    from fairseq_bt_plugin.experiment import cli, loader

    paths = [ROOT / "Makefile"] + [p for folder in ("scripts", "tests", "benchmarks", ".ci")
                                   for p in (ROOT / folder).rglob("*")
                                   if p.is_file() and p.suffix in (".sh", ".py", "")]
    names = {n for n in variables_read_by(paths) if n.startswith(loader.SETTING_PREFIXES)}
    drivers = set(cli.shell_settings(loader.load(
        str(ROOT / "configs" / "experiments" / "example.yaml")), ""))
    assert "BT_SHARED_DATA" in names and "PROGRESS_PLAIN" in names  # the scan finds them
    names -= set(TYPOED_SETTINGS)  # the misspellings these tests try
    assert names - set(loader.ENV) - set(loader.NOT_SETTINGS) - drivers == set()
    loader.check_environment({n: "1" for n in names - drivers}, "e.yaml")


def test_a_variable_like_a_setting_stops_before_any_work(tmp_path):
    var, close = next(iter(TYPOED_SETTINGS.items()))
    p = pipeline(tmp_path, extra_env={var: "3"})
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 2 and len(out.strip().splitlines()) == 1, out
    assert f"environment variable {var}=3 is not a setting" in out and f"{close}?" in out
    assert not list(tmp_path.iterdir())  # nothing written


def test_a_typo_in_an_override_stops_before_any_work(tmp_path):
    """fairseq's ++ adds an unknown key without a word: the settings step composes every
    override list against the schema first (tests/unit/test_preflight.py: each case)."""
    p = pipeline(tmp_path, extra_env={"BT_TRAIN_ARGS": "++task.bt_noise_word_dropot=0.1"})
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 2 and len(out.strip().splitlines()) == 1, out
    assert out.startswith("fairseq-bt-experiment: error: ") and out.strip().endswith(
        "unknown key 'task.bt_noise_word_dropot' (did you mean 'task.bt_noise_word_dropout'?)")
    assert "(environment variable BT_TRAIN_ARGS)" in out
    assert not list(tmp_path.iterdir())  # nothing written
