"""How a model's training ended, as the report reads it from fairseq's own log: a model whose
validation loss stops falling is stopped by patience before its cap (the profiles' default),
one still improving at the cap is stopped by max_update."""
import sys
from pathlib import Path

from helpers import ROOT, SRC, TGT, run

from fairseq_bt_plugin.report import training_end, validation_curve

HYDRA_TRAIN = str(Path(sys.executable).parent / "fairseq-bt-hydra-train")


def train(corpus, save_dir: Path, *overrides):
    """The tiny profile (validation every 3 updates, patience 2) on the corpus's bitext."""
    run([HYDRA_TRAIN, "--config-dir", str(ROOT / "configs"), "--config-name", "tiny",
         f"task.data={corpus.bin}", f"task.source_lang={SRC}", f"task.target_lang={TGT}",
         f"checkpoint.save_dir={save_dir}", *overrides])
    log = str(save_dir / "hydra_train.log")
    return training_end(log, validation_curve(log))


def test_patience_stops_before_the_cap_and_the_cap_stops_a_learning_model(corpus, tmp_path):
    # lr 0: the weights never change, so no validation after the first has a lower loss, and
    # two of them (the tiny profile's patience) stop the model at update 9 of its cap of 30
    flat = train(corpus, tmp_path / "flat", "optimization.lr=[0.0]",
                 "optimization.max_update=30")
    assert flat == {"updates": 9, "best_update": 3, "best_loss": flat["best_loss"],
                    "stopped_by": "patience"}
    assert (tmp_path / "flat" / "checkpoint_best.pt").exists()
    # a learning model: every validation lower, stopped at its cap (6) while still improving
    learning = train(corpus, tmp_path / "learning", "optimization.lr=[0.005]")
    assert learning["stopped_by"] == "max_update"
    assert learning["updates"] == learning["best_update"] == 6
