"""Experiment files with several source languages (``pairs``): the settings the pipeline gets,
the raw data per pair, and one-line errors naming the file and the key."""
import os
from pathlib import Path

import pytest
import yaml

from fairseq_bt_plugin.errors import BTUserError
from fairseq_bt_plugin.experiment import loader
from fairseq_bt_plugin.experiment.cli import shell_settings
from fairseq_bt_plugin.experiment.raw import materialise

from helpers import SRC, TATOEBA, TGT, read_lines, write_lines

OTHER = "de"


def pair(lang: str, n: int):
    return {"bitext": {"source": f"train.{lang}", "target": f"train.{TGT}", "max_pairs": n},
            "valid": {"source": f"valid.{lang}", "target": f"valid.{TGT}"},
            "tests": {"t": {"source": f"test.{lang}", "target": f"test.{TGT}"}}}


@pytest.fixture
def folder(tmp_path):
    for split, n in (("train", 30), ("valid", 10), ("test", 10)):
        for lang in (SRC, TGT):
            write_lines(tmp_path / f"{split}.{lang}", read_lines(TATOEBA / f"{split}.{lang}", n))
        # a second source language: the same French lines stand in for it
        write_lines(tmp_path / f"{split}.{OTHER}", read_lines(TATOEBA / f"{split}.{SRC}", n))
    write_lines(tmp_path / f"mono.{TGT}", read_lines(TATOEBA / f"train.{TGT}", 12, 600))
    return tmp_path


def write(folder: Path, **keys) -> Path:
    exp = {"name": "m", "target_lang": TGT, "pairs": {SRC: pair(SRC, 30), OTHER: pair(OTHER, 20)},
           "mono": {"files": [f"mono.{TGT}"]}, **keys}
    path = folder / "m.yaml"
    path.write_text(yaml.safe_dump(exp, sort_keys=False), encoding="utf-8")
    return path


def test_settings_and_raw_data_per_pair(folder):
    path = write(folder, bt={"upsample_primary": 2, "weights": "sequence"})
    exp = loader.load(str(path), [f"pairs.{OTHER}.bitext.max_pairs=5"], {"TEST": "4"})
    settings = shell_settings(exp, "")
    assert settings["PAIRS"] == f"{SRC}-{TGT} {OTHER}-{TGT}"
    assert settings["SRC_LANGS"] == f"{SRC} {OTHER}" and settings["TEST_SETS"] == "t"
    # the multilingual task's names of the +BT keys
    assert settings["MULTI_BT_OVERRIDES"] == "++task.bt_upsample_primary=2 ++task.bt_weighted=true"
    assert settings["BT_OVERRIDES"] == "++task.upsample_primary=2 ++task.bt_weighted=true"
    summary = materialise(exp, str(path), str(folder / "raw"))
    for lang, n in ((SRC, 30), (OTHER, 5)):
        d = folder / "raw" / f"{lang}-{TGT}"
        assert len((d / f"train.{lang}").read_text().splitlines()) == n
        assert len((d / f"test_t.{TGT}").read_text().splitlines()) == 4  # TEST: every pair's
        assert (d / f"mono.{TGT}").read_text() == (folder / f"mono.{TGT}").read_text()
        assert summary[f"{lang}-{TGT}"]["train"]["kept"] == n
    # the one-pair settings are empty of pairs: pipeline.sh runs them itself
    one = {"name": "o", "source_lang": SRC, "target_lang": TGT, **pair(SRC, 30),
           "mono": {"files": [f"mono.{TGT}"]}}
    (folder / "o.yaml").write_text(yaml.safe_dump(one), encoding="utf-8")
    assert shell_settings(loader.load(str(folder / "o.yaml")), "")["PAIRS"] == ""


@pytest.mark.parametrize("keys,message", [
    ({"source_lang": SRC}, "source_lang: an experiment with pairs names its source languages"),
    ({"bitext": {"source": f"train.{SRC}", "target": f"train.{TGT}"}},
     "bitext: with pairs, give it per pair (pairs.SRC.bitext)"),
    ({"pairs": {SRC: pair(SRC, 30), "xx": pair(OTHER, 20)}},
     "pairs.xx: unknown language code 'xx'"),
    ({"pairs": {SRC: pair(SRC, 30), TGT: pair(OTHER, 20)}},
     f"pairs.{TGT}: the target language '{TGT}' is not a source language"),
    ({"pairs": {SRC: {**pair(SRC, 30), "tests": {}}}}, f"pairs.{SRC}.tests: give at least one"),
    ({"pairs": {SRC: {**pair(SRC, 30), "bitxt": {}}}}, "bitxt"),
    ({"systems": {"rounds": 2}}, "systems.rounds: an experiment with pairs has no"),
    ({"bt": {"init": "baseline"}}, "bt.init: an experiment with pairs has no"),
    ({"bt": {"mode": "copy"}}, "bt.mode copy: an experiment with pairs has no"),
    ({"bt": {"copies": True}}, "bt.copies: an experiment with pairs has no"),
    ({"multilingual": {"updates": 0}}, "multilingual.updates must be > 0, got 0"),
])
def test_errors_name_the_file_and_key(folder, keys, message):
    path = write(folder, **keys)
    with pytest.raises(BTUserError) as e:
        loader.load(str(path))
    assert str(e.value).startswith(f"{path}: ") and message in str(e.value), str(e.value)
    assert len(str(e.value).splitlines()) == 1


def test_a_file_of_a_pair_with_other_line_counts(folder):
    (folder / f"test.{OTHER}").write_text("one line\n", encoding="utf-8")
    path = write(folder)
    exp = loader.load(str(path))
    with pytest.raises(BTUserError, match=f"{path}: pairs.{OTHER}.tests.t: the source side has "
                       f"1 lines \\({folder / f'test.{OTHER}'}\\)"):
        materialise(exp, str(path), str(folder / "raw"))
    assert not (folder / "raw").exists()
