"""Which system the pipeline exports and where the report finds it, on hand-made run
directories (no training): the best BLEU on the first test set, reverse models aside; in a
multilingual run per pair (WORK/eval/SET/PAIR/), named as its model folder (the pair's
bilingual ``PAIR/NAME`` or a multilingual ``NAME``); exports in WORK/export/NAME and
WORK/export/PAIR/NAME."""
import json
from pathlib import Path

import pytest

from fairseq_bt_plugin.errors import BTUserError
from fairseq_bt_plugin.export import best_system
from fairseq_bt_plugin.report import export_section, exports


def scored(folder: Path, **bleu):
    folder.mkdir(parents=True, exist_ok=True)
    for name, score in bleu.items():
        (folder / f"{name}.json").write_text(json.dumps({"bleu": score}), encoding="utf-8")


def test_the_best_bilingual_system_reverse_models_aside(tmp_path):
    scored(tmp_path / "eval" / "flickr", baseline=20.1, bt=22.0, bt_ft=24.5, reverse=30.0)
    assert best_system(str(tmp_path), "flickr") == "bt_ft"
    scored(tmp_path / "eval" / "flickr", bt_ft=21.0)
    assert best_system(str(tmp_path), "flickr") == "bt"
    with pytest.raises(BTUserError, match="no scored system"):
        best_system(str(tmp_path), "other")


@pytest.mark.parametrize("bilingual, multilingual, want", [
    (25.0, 23.0, "de-en/bt"),  # the pair's own bilingual model
    (21.0, 23.0, "multi_bt"),  # the multilingual model, which serves every pair
])
def test_the_best_system_of_a_pair(tmp_path, bilingual, multilingual, want):
    for name in ("baseline", "bt", "reverse"):
        (tmp_path / "models" / "de-en" / name).mkdir(parents=True)
    for name in ("multi", "multi_bt", "multi_reverse"):
        (tmp_path / "models" / name).mkdir(parents=True)
    scored(tmp_path / "eval" / "tatoeba" / "de-en", baseline=20.0, bt=bilingual, multi=19.0,
           multi_bt=multilingual, reverse=40.0, multi_reverse=41.0)
    assert best_system(str(tmp_path), "tatoeba/de-en") == want


def test_the_report_finds_exports_of_both_layouts(tmp_path):
    for folder, name, langs in (("bt_ft", "bt_ft", ("de", "en")),
                                ("de-en/bt", "de-en/bt", ("de", "en")),
                                ("fr-en/multi_bt", "multi_bt", ("fr", "en"))):
        d = tmp_path / "export" / folder
        d.mkdir(parents=True)
        (d / "model.json").write_text(json.dumps({
            "name": name, "quantization": "int8", "checkpoint": f"/m/{name}/checkpoint_best.pt",
            "source_lang": langs[0], "target_lang": langs[1]}), encoding="utf-8")
    found = exports(str(tmp_path))
    assert sorted((e["system"], e["source_lang"]) for e in found) == [
        ("bt_ft", "de"), ("de-en/bt", "de"), ("multi_bt", "fr")]
    text = "\n".join(export_section({"exports": found}))
    assert f"`{tmp_path}/export/fr-en/multi_bt`" in text
    assert "--path /m/multi_bt/checkpoint_best.pt -s fr -t en --input FILE" in text
