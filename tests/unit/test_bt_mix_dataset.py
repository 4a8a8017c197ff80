"""Mixing bitext and synthetic corpora: exact counts per epoch, by counting."""
import numpy as np
import pytest

from fairseq_bt_plugin.data.bt_mix_dataset import epoch_plan

from helpers import N_SYN, N_TRAIN, SRC, TGT, setup_task


def test_upsampling_plan_counts_every_pair_exactly():
    corpus, local = epoch_plan(10, [4, 3], upsample_primary=3, synthetic_fraction=None,
                               seed=1, epoch=1)
    assert np.bincount(corpus).tolist() == [30, 4, 3]
    assert np.bincount(local[corpus == 0]).tolist() == [3] * 10
    assert sorted(local[corpus == 1]) == [0, 1, 2, 3]
    assert sorted(local[corpus == 2]) == [0, 1, 2]


def test_fraction_plan_realises_requested_share_and_redraws_each_epoch():
    c1, l1 = epoch_plan(500, [200, 100], 1, 0.25, seed=3, epoch=1)
    c2, l2 = epoch_plan(500, [200, 100], 1, 0.25, seed=3, epoch=2)
    n_syn = int((c1 > 0).sum())
    assert n_syn == round(0.25 * 500 / 0.75) == 167
    assert abs(n_syn / len(c1) - 0.25) <= 1 / len(c1)
    assert (c1 == 0).sum() == 500
    pairs1 = set(zip(c1[c1 > 0].tolist(), l1[c1 > 0].tolist()))
    pairs2 = set(zip(c2[c2 > 0].tolist(), l2[c2 > 0].tolist()))
    assert len(pairs1) == 167  # no repeats when the pool is large enough
    assert pairs1 != pairs2
    assert (c1, l1)[0].tolist() == epoch_plan(500, [200, 100], 1, 0.25, seed=3, epoch=1)[0].tolist()


def test_fraction_plan_with_more_wanted_than_available_uses_whole_passes():
    corpus, local = epoch_plan(100, [30], 1, 0.8, seed=1, epoch=1)
    assert (corpus == 1).sum() == 400
    counts = np.bincount(local[corpus == 1], minlength=30)
    assert set(counts.tolist()) <= {13, 14} and counts.sum() == 400


def _epoch_counts(task, epoch, num_shards=1, shard_id=0):
    itr = task.get_batch_iterator(
        task.dataset("train"), max_tokens=1500, seed=1, epoch=epoch,
        num_shards=num_shards, shard_id=shard_id, max_positions=(1024, 1024),
    ).next_epoch_itr(shuffle=True)
    ids, syn = [], 0
    for batch in itr:
        if not batch:  # fairseq's empty filler batch that evens out uneven shards
            continue
        ids += batch["id"].tolist()
        syn += int(batch["bt_synthetic"].sum())
    return ids, syn


@pytest.mark.parametrize("upsample", [1, 2])
def test_task_epoch_contains_bitext_times_ratio_plus_all_synthetic(corpus, upsample):
    task, _ = setup_task([str(corpus.bin), "--task", "bt_translation", "-s", SRC, "-t", TGT,
                          "--bt-data", str(corpus.syn), "--upsample-primary", str(upsample)])
    task.load_dataset("train")
    ids, syn = _epoch_counts(task, 1)
    assert len(ids) == len(set(ids)) == N_TRAIN * upsample + N_SYN
    assert syn == N_SYN


def test_default_never_drops_the_bitext(corpus):
    """Stock fairseq's --upsample-primary -1 samples no bitext with a 2nd split (#3644)."""
    task, cfg = setup_task([str(corpus.bin), "--task", "bt_translation", "-s", SRC, "-t", TGT,
                            "--bt-data", str(corpus.syn)])
    assert cfg.task.upsample_primary == 1
    task.load_dataset("train")
    assert task.dataset("train").counts().tolist() == [N_TRAIN, N_SYN]


def test_fraction_mode_realised_share_by_counting_batches(corpus):
    task, _ = setup_task([str(corpus.bin), "--task", "bt_translation", "-s", SRC, "-t", TGT,
                          "--bt-data", str(corpus.syn), "--bt-synthetic-fraction", "0.3"])
    task.load_dataset("train")
    for epoch in (1, 2):
        ids, syn = _epoch_counts(task, epoch)
        assert syn == round(0.3 * N_TRAIN / 0.7)
        assert len(ids) - syn == N_TRAIN


def test_shards_see_disjoint_parts_of_each_epoch(corpus):
    task, _ = setup_task([str(corpus.bin), "--task", "bt_translation", "-s", SRC, "-t", TGT,
                          "--bt-data", str(corpus.syn), "--bt-synthetic-fraction", "0.3"])
    task.load_dataset("train")
    ids0, syn0 = _epoch_counts(task, 2, num_shards=2, shard_id=0)
    ids1, syn1 = _epoch_counts(task, 2, num_shards=2, shard_id=1)
    assert not set(ids0) & set(ids1)
    assert len(ids0) + len(ids1) == N_TRAIN + round(0.3 * N_TRAIN / 0.7)
    assert syn0 + syn1 == round(0.3 * N_TRAIN / 0.7)


def test_valid_and_test_read_bitext_only(corpus):
    task, _ = setup_task([str(corpus.bin), "--task", "bt_translation", "-s", SRC, "-t", TGT,
                          "--bt-data", str(corpus.syn)])
    task.load_dataset("valid")
    task.load_dataset("test")
    assert type(task.dataset("valid")).__name__ == "LanguagePairDataset"
    assert len(task.dataset("valid")) == 64 and len(task.dataset("test")) == 50
