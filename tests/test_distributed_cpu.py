"""fairseq's own distributed trainer on CPU under torchrun (gloo), with the plugin loaded."""
import re
import subprocess
import sys
from pathlib import Path

from conftest import TINY_MODEL

BIN = Path(sys.executable).parent


def train(corpus, save: Path, nproc: int, *extra):
    cmd = [str(BIN / "torchrun"), "--nproc_per_node", str(nproc), "--master_port", "29533",
           str(BIN / "fairseq-bt-train")] if nproc > 1 else [str(BIN / "fairseq-bt-train")]
    cmd += [str(corpus.bin), "-s", "de", "-t", "en", "--task", "bt_translation",
            "--bt-data", str(corpus.syn), "--max-epoch", "1", "--disable-validation",
            "--save-dir", str(save), "--log-interval", "1"] + TINY_MODEL + list(extra)
    cmd[cmd.index("--max-tokens") + 1] = "1000"
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def epoch_stats(log: str):
    m = re.findall(r"train[^\n]*epoch 001 \|[^\n]*? bsz ([\d.]+) \| num_updates (\d+)", log)
    assert m, log[-2000:]
    return float(m[-1][0]), int(m[-1][1])


def test_two_cpu_processes_train_one_model_on_disjoint_halves(corpus, tmp_path):
    one = train(corpus, tmp_path / "one", 1)
    assert one.returncode == 0, one.stderr[-2000:]
    two = train(corpus, tmp_path / "two", 2)
    log = two.stdout + two.stderr
    assert two.returncode == 0, log[-3000:]
    assert "training on 2 devices" in log
    assert "distributed init (rank 1): env://" in log
    bsz1, updates1 = epoch_stats(one.stdout + one.stderr)
    bsz2, updates2 = epoch_stats(log)
    # each rank reads its own share of the same epoch: about half the updates, each one
    # aggregating a batch from both ranks (800 pairs an epoch either way)
    assert abs(updates2 - updates1 / 2) <= 1
    assert abs(bsz1 * updates1 - bsz2 * updates2) / (bsz1 * updates1) < 0.02
    assert (tmp_path / "two" / "checkpoint_last.pt").exists()


def test_world_size_disagreeing_with_launch_is_refused(corpus, tmp_path):
    p = train(corpus, tmp_path / "bad", 2, "--distributed-world-size", "3")
    assert p.returncode != 0
    assert "torchrun started 2 processes (WORLD_SIZE=2) but --distributed-world-size is 3" in p.stderr
