"""fairseq's own distributed trainer on CPU (gloo), with the plugin loaded: 2 processes
launched by torchrun, or spawned by fairseq itself (``--distributed-world-size 2``).

The ``traced_bt_translation`` task (``tests/bt_trace``) records on every rank which examples
each update trained on and checksums of the parameters."""
import re

import pytest
from fairseq import checkpoint_utils

from bt_trace import read_trace, state_checksum

from helpers import N_TRAIN, PLUGIN_DIR
from helpers.trace import BT, TRACED, run, torchrun, train_cmd

N_SYN_EPOCH = round(0.3 * N_TRAIN / 0.7)  # --bt-synthetic-fraction 0.3: 214 synthetic pairs
LS = ["--criterion", "bt_label_smoothed_cross_entropy", "--label-smoothing", "0.1"]
VAE = ["--arch", "bt_transformer_vae_tiny", "--share-all-embeddings", "--criterion",
       "bt_vae_seq2seq", "--label-smoothing", "0.1", "--kl-beta", "0.5", "--rec-weight", "0.5"]


def check_one_model_on_disjoint_shares(trace, save, epochs: int):
    """Every example of each epoch trained on exactly once, by one of the two ranks; the
    synthetic share over both ranks is the configured one; the ranks' parameters agree
    before every update and after the last (= rank 0's checkpoint)."""
    for epoch in range(1, epochs + 1):
        shares = [[(i, syn) for r in read_trace(trace, rank) if r["epoch"] == epoch
                   for i, syn in zip(r["ids"], r["synthetic"])] for rank in (0, 1)]
        ids = [i for share in shares for i, _ in share]
        assert len(ids) == len(set(ids)), f"epoch {epoch}: an example trained on twice"
        assert set(ids) == set(range(N_TRAIN + N_SYN_EPOCH)), f"epoch {epoch}: examples missed"
        n_syn = [sum(syn for _, syn in share) for share in shares]
        assert sum(n_syn) == N_SYN_EPOCH and len(ids) - sum(n_syn) == N_TRAIN
        assert all(0 < n < len(share) for n, share in zip(n_syn, shares))  # both kinds per rank
    before = [{r["update"]: r["params"] for r in read_trace(trace, rank)} for rank in (0, 1)]
    common = before[0].keys() & before[1].keys()
    assert len(common) >= len(before[0]) - 1 and all(before[0][u] == before[1][u] for u in common)
    after = [[r["params"] for r in read_trace(trace, rank, "valid")] for rank in (0, 1)]
    assert after[0] and after[0] == after[1]
    saved = checkpoint_utils.load_checkpoint_to_cpu(str(save / "checkpoint_last.pt"))["model"]
    assert state_checksum(saved) == after[0][-1]


@pytest.mark.parametrize("workers", ["0", "2"])
def test_torchrun_two_ranks_share_each_epoch_and_train_one_model(corpus, tmp_path, workers):
    save, trace = tmp_path / "ckpt", tmp_path / "trace"
    p = run(train_cmd(corpus, save, *TRACED, *BT, *LS, "--bt-tag", "<BT>", "--max-epoch", "2",
                      "--num-workers", workers, launcher=torchrun(2)), trace)
    log = p.stdout + p.stderr
    assert "training on 2 devices" in log and "distributed init (rank 1): env://" in log
    check_one_model_on_disjoint_shares(trace, save, epochs=2)
    # the criterion's own counts, summed over the ranks by fairseq, for each epoch
    assert len(re.findall(rf"\| train \|.*nsentences_bitext {N_TRAIN} \|.*"
                          rf"nsentences_synth {N_SYN_EPOCH} \|", log)) == 2


def test_torchrun_vae_criterion(corpus, tmp_path):
    save, trace = tmp_path / "ckpt", tmp_path / "trace"
    p = run(train_cmd(corpus, save, *TRACED, *BT, *VAE, "--max-epoch", "1",
                      launcher=torchrun(2)), trace)
    assert "training on 2 devices" in p.stdout + p.stderr
    check_one_model_on_disjoint_shares(trace, save, epochs=1)


def test_world_size_disagreeing_with_launch_is_refused(corpus, tmp_path):
    cmd = train_cmd(corpus, tmp_path / "bad", "--task", "bt_translation",
                    "--distributed-world-size", "3", launcher=torchrun(2))
    p = run(cmd, check=False)
    assert p.returncode != 0
    assert "torchrun started 2 processes (WORLD_SIZE=2) but --distributed-world-size is 3" in p.stderr


def test_spawn_path_plain_fairseq_train_with_the_plugin_dir(corpus, tmp_path):
    """No launcher: fairseq spawns the 2 workers itself; the plugin's criterion ran on both
    halves of the epoch (its counts, summed over the workers, cover the whole epoch)."""
    save = tmp_path / "ckpt"
    p = run(train_cmd(corpus, save, "--user-dir", PLUGIN_DIR, "--task", "bt_translation", *BT,
                      *LS, "--max-epoch", "1", "--disable-validation",
                      "--distributed-world-size", "2", command="fairseq-train"))
    log = p.stdout + p.stderr
    assert "training on 2 devices" in log
    assert re.search(r"distributed init \(rank 1\): tcp://localhost:\d+", log)
    assert re.search(r"initialized host \S+ as rank 1", log)
    assert re.search(rf"\| train \|.*nsentences_bitext {N_TRAIN} \|.*"
                     rf"nsentences_synth {N_SYN_EPOCH} \|", log)
    assert (save / "checkpoint_last.pt").exists()


def test_spawn_path_fairseq_bt_train_with_a_user_dir_folder(corpus, tmp_path):
    """Upstream #4875's setting: a --user-dir folder that is no installed package. Each
    spawned worker found its task (it wrote its trace) and they trained one model."""
    save, trace = tmp_path / "ckpt", tmp_path / "trace"
    p = run(train_cmd(corpus, save, *TRACED, *BT, "--max-epoch", "1",
                      "--distributed-world-size", "2"), trace)
    assert "training on 2 devices" in p.stdout + p.stderr
    check_one_model_on_disjoint_shares(trace, save, epochs=1)
