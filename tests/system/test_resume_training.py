"""Training killed with SIGKILL mid-epoch and started again with the same command continues
exactly as the uninterrupted run, synthetic-data sampling and noising included.

What fairseq restores from checkpoint_last.pt: model, optimizer and lr-scheduler state, the
update count and the epoch iterator's position (epoch, batches done). It saves no random
state, but it needs none here: the trainer re-seeds torch before every update with
``seed + num_updates`` (dropout), batch order is drawn from ``(seed, epoch)``, and
``bt_translation`` draws each epoch's synthetic sample from ``(seed, epoch)`` and each pair's
noise from ``(seed, epoch, index)``. So the resumed run trains on the same batches, with the
same noise, from bit-identical parameters: per-update losses and final weights are equal.
"""
import json
import random
import shutil
import signal
import subprocess
import time

import pytest
from fairseq import checkpoint_utils
from fairseq.file_io import PathManager

from bt_trace import read_trace, state_checksum

from helpers.trace import BT, TRACED, env, run, train_cmd

SAVE_EVERY, MAX_UPDATE = 5, 45  # about 2 epochs of 22 updates, a checkpoint every 5
TIMING = {"wps", "ups", "wall", "train_wall", "gb_free"}


# upsampling mode: the data loader iterator fairseq would otherwise keep across epochs
UPSAMPLING_2_WORKERS = [x for x in BT if x not in ("--bt-synthetic-fraction", "0.3")] + [
    "--num-workers", "2"]


def command(corpus, save, mix):
    return train_cmd(corpus, save, *TRACED, *mix, "--bt-tag", "<BT>",
                     "--save-interval-updates", SAVE_EVERY, "--max-update", MAX_UPDATE,
                     "--disable-validation", "--log-format", "json")


def kill_points(trace):
    """Update counts after which a checkpoint is saved mid-epoch and the next 3 saves are in
    the same epoch (room for a late kill: it must not get past the epoch's end)."""
    epoch_of = {r["update"]: r["epoch"] for r in trace}  # "update": updates done before it
    return [n for n in range(SAVE_EVERY, MAX_UPDATE, SAVE_EVERY)
            if epoch_of[n - 1] == epoch_of.get(n) == epoch_of.get(n + 3 * SAVE_EVERY)]


def train_until_killed(cmd, trace_dir, log_path, kill_at: int) -> None:
    """Run ``cmd`` and SIGKILL it once its trace shows ``kill_at`` updates done."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env(trace_dir))
    trace = trace_dir / "rank0.jsonl"
    try:
        while proc.poll() is None:
            lines = trace.read_text().splitlines(keepends=True) if trace.exists() else []
            done = [x for x in lines if x.endswith("\n")]
            if done and json.loads(done[-1])["update"] >= kill_at:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
        assert proc.wait(timeout=600) == -signal.SIGKILL, log_path.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()


def train_inner_logs(log: str):
    """fairseq's per-update json log entries (timing fields left out), by update count."""
    out = {}
    for line in log.splitlines():
        if "| train_inner | {" in line:
            stats = json.loads(line[line.index("{"):])
            out[int(stats["num_updates"])] = {k: v for k, v in stats.items() if k not in TIMING}
    return out


@pytest.mark.parametrize("mix", [BT, UPSAMPLING_2_WORKERS], ids=["fraction", "upsampling-2-workers"])
def test_sigkill_mid_epoch_then_resume_equals_uninterrupted_run(corpus, tmp_path, mix):
    # A: uninterrupted
    a = run(command(corpus, tmp_path / "a", mix), tmp_path / "trace_a")
    trace_a = read_trace(tmp_path / "trace_a")
    assert [r["update"] for r in trace_a] == list(range(MAX_UPDATE))
    # B: killed at a random update after a mid-epoch checkpoint, then started again with
    # the same command
    candidates = kill_points(trace_a)
    assert candidates, [(r["update"], r["epoch"]) for r in trace_a]
    rng = random.Random(6)
    kill_at = rng.choice(candidates) + rng.randrange(SAVE_EVERY)
    cmd_b = command(corpus, tmp_path / "b", mix)
    train_until_killed(cmd_b, tmp_path / "trace_b1", tmp_path / "b1.log", kill_at)
    last = checkpoint_utils.load_checkpoint_to_cpu(str(tmp_path / "b" / "checkpoint_last.pt"))
    itr = last["extra_state"]["train_iterator"]
    restored = last["optimizer_history"][-1]["num_updates"]
    assert itr["iterations_in_epoch"] > 0 and restored % SAVE_EVERY == 0  # mid-epoch
    b = run(cmd_b, tmp_path / "trace_b2")
    assert (f"Loaded checkpoint {tmp_path / 'b' / 'checkpoint_last.pt'} "
            f"(epoch {itr['epoch']} @ {restored} updates)") in b.stdout + b.stderr

    # B before the kill and B after the resume both trained exactly as A did
    before, after = read_trace(tmp_path / "trace_b1"), read_trace(tmp_path / "trace_b2")
    assert len(before) >= kill_at and before == trace_a[:len(before)]
    assert after[0]["update"] == restored and after == trace_a[restored:]
    # fairseq's own per-update log lines agree, and so do the final parameters
    logs_a, logs_b = train_inner_logs(a.stdout + a.stderr), train_inner_logs(b.stdout + b.stderr)
    assert sorted(logs_b) == list(range(restored + 1, MAX_UPDATE + 1))
    assert all(logs_b[n] == logs_a[n] for n in logs_b)
    final = [checkpoint_utils.load_checkpoint_to_cpu(str(tmp_path / d / "checkpoint_last.pt"))
             for d in ("a", "b")]
    assert state_checksum(final[0]["model"]) == state_checksum(final[1]["model"])


def test_checkpoint_last_survives_a_kill_during_fairseq_copy(tmp_path, monkeypatch):
    """fairseq writes checkpoint_last.pt as a copy of the checkpoint it has just saved: a
    process dying half way through that copy must leave the previous checkpoint_last.pt whole
    (plugin fix in compat.py; stock fairseq truncates it)."""
    new, last = tmp_path / "checkpoint_1_10.pt", tmp_path / "checkpoint_last.pt"
    new.write_bytes(b"new checkpoint " * 1000)
    last.write_bytes(b"previous checkpoint")
    real_copy = shutil.copyfileobj

    def dies_half_way(src, dst, *args, **kwargs):
        dst.write(src.read(100))
        dst.flush()
        raise KeyboardInterrupt  # stands for the kill

    monkeypatch.setattr(shutil, "copyfileobj", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        PathManager.copy(str(new), str(last), overwrite=True)  # as checkpoint_utils calls it
    assert last.read_bytes() == b"previous checkpoint"
    monkeypatch.setattr(shutil, "copyfileobj", real_copy)
    assert PathManager.copy(str(new), str(last), overwrite=True)
    assert last.read_bytes() == new.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_1_10.pt", "checkpoint_last.pt"]
