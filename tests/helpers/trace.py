"""Running real fairseq training with the ``tests/bt_trace`` user dir, for the distributed and
resume tests (test side only: fairseq does not import this module)."""
import os
import subprocess
import sys
from pathlib import Path
from typing import List

from fairseq_bt_plugin.compat import free_port

from helpers import SRC, TGT

BIN = Path(sys.executable).parent
TRACE_USER_DIR = str(Path(__file__).resolve().parents[1] / "bt_trace")
# tiny model, one thread per process (the test machine's 2 cores are shared), no data loader
# worker processes: what is tested here does not depend on them. --max-tokens 900: epochs of
# 22 updates on the Tatoeba slice, so test_resume_training finds a checkpoint (every 5) with 3
# more saves in the same epoch (at 1,000 epochs are 20 updates, aligned with the saves: none)
TRAIN = ["-s", SRC, "-t", TGT, "--arch", "bt_transformer_tiny", "--optimizer", "adam",
         "--lr", "0.001", "--max-tokens", "900", "--cpu", "--no-progress-bar", "--seed", "1",
         "--log-interval", "1", "--log-format", "simple", "--num-workers", "0",
         "--no-epoch-checkpoints"]
BT = ["--bt-synthetic-fraction", "0.3", "--bt-noise-word-dropout", "0.1",
      "--bt-noise-word-blank", "0.1", "--bt-noise-shuffle-distance", "3"]


def torchrun(nproc: int) -> List[str]:
    return [str(BIN / "torchrun"), "--nproc_per_node", str(nproc),
            "--master_port", str(free_port())]


def train_cmd(corpus, save: Path, *extra, launcher=(), command="fairseq-bt-train") -> List[str]:
    """``[launcher] command DATA ... --save-dir SAVE``: bt_translation data (bitext + the
    synthetic corpus) and the tiny model; ``extra`` adds or overrides options."""
    return list(launcher) + [str(BIN / command), str(corpus.bin), "--bt-data", str(corpus.syn),
                             "--save-dir", str(save)] + TRAIN + [str(x) for x in extra]


TRACED = ["--user-dir", TRACE_USER_DIR, "--task", "traced_bt_translation"]


def env(trace_dir: Path = None) -> dict:
    """The environment of a training run; the tracing task writes to ``trace_dir``."""
    e = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if trace_dir is not None:
        trace_dir.mkdir(parents=True, exist_ok=True)
        e["BT_TRACE_DIR"] = str(trace_dir)
    return e


def run(cmd, trace_dir: Path = None, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, capture_output=True, text=True, env=env(trace_dir), timeout=600)
    if check:
        assert p.returncode == 0, f"{cmd} exited {p.returncode}\n{(p.stdout + p.stderr)[-4000:]}"
    return p
