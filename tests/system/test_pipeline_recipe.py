"""The pipeline's recipe options on the tiny profile: AVERAGE_LAST (checkpoint averaging) and
BT_FILTER (model-scored filtering of the synthetic corpus) in one run."""
import json
import math

import torch

from helpers import TGT
from helpers.pipeline import TEST_SET, finish, lines, pipeline


def test_averaging_and_dual_filtering(tmp_path):
    """AVERAGE_LAST=2: each model keeps 2 interval checkpoints and is evaluated (and the
    reverse model back-translates) with their average; BT_FILTER=dual:0.25: the +BT model
    trains on the synthetic corpus without its worst quarter by dual cross-entropy (reverse
    model and baseline, both averaged; the baseline, trained beside the others, is waited
    for). bt_ft's 2 fine-tuning updates save one state: it is evaluated with its
    checkpoint_best.pt."""
    finish(pipeline(tmp_path, extra_env={"AVERAGE_LAST": "2", "BT_FILTER": "dual:0.25",
                                         "BASELINE_PARALLEL": "1"}))
    models = tmp_path / "models"
    for name in ("reverse", "baseline", "bt"):
        # tiny: an interval checkpoint every 3 updates (none at an epoch's end), 6 updates
        # (bt: 12); the last 2 states averaged, checkpoint_last.pt one of them where newer
        assert len(list((models / name).glob("checkpoint_*_*.pt"))) <= 2, name
        avg = models / name / "checkpoint_avg.pt"
        assert len(torch.load(avg, weights_only=False)["bt_averaged_from"]) == 2, name
        result = json.loads((tmp_path / "eval" / TEST_SET / f"{name}.json").read_text())
        assert result["checkpoint"] == str(avg)
    assert "'keep_interval_updates': 2," in (models / "bt" / "hydra_train.log").read_text()
    generated = json.loads((tmp_path / "bt" / f"mono_{TGT}" / "bt.summary.json").read_text())
    assert generated["model"] == str(models / "reverse" / "checkpoint_avg.pt")
    filtered = tmp_path / "bt" / f"mono_{TGT}_dual_0.25"
    s = json.loads((filtered / "bt.summary.json").read_text())
    n = generated["output_pairs"]
    assert (s["method"], s["input_pairs"]) == ("dual", n)
    assert s["output_pairs"] == n - math.floor(0.25 * n) == lines(filtered / "bt.weights")
    assert s["forward_model"] == str(models / "baseline" / "checkpoint_avg.pt")
    assert s["reverse_model"] == str(models / "reverse" / "checkpoint_avg.pt")
    log = (models / "bt" / "hydra_train.log").read_text()
    assert f"'bt_data': '{filtered}/bin'" in log
    assert f"{s['output_pairs']} synthetic pairs" in log
    assert not (models / "bt_ft" / "checkpoint_avg.pt").exists()
    result = json.loads((tmp_path / "eval" / TEST_SET / "bt_ft.json").read_text())
    assert result["checkpoint"] == str(models / "bt_ft" / "checkpoint_best.pt")
    systems = {x["system"] for x in json.loads((tmp_path / "report.json").read_text())["systems"]}
    assert systems == {"reverse", "baseline", "bt", "bt_ft"}
