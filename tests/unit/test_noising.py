"""Word-level noise on sentencepiece pieces: statistics with a fixed seed, exact invariants."""
import multiprocessing

import numpy as np
import pytest
import torch
from fairseq.data import Dictionary

from fairseq_bt_plugin.data.noising import WordNoiser, local_shuffle_order
from fairseq_bt_plugin.data.synthetic_source_dataset import SyntheticSourceDataset, example_rng
from fairseq_bt_plugin.errors import BTUserError

from helpers import setup_task
from helpers.transfer import mono_bin

W = "\u2581"


def make_dict():
    d = Dictionary()
    for sym in [f"{W}w{i}" for i in range(20)] + ["a", "b", "c"]:
        d.add_symbol(sym)
    return d


def sentence(d, n_words=10):
    """Words alternate one piece (▁wI) and three pieces (▁wI a b); ends with eos."""
    ids = []
    for i in range(n_words):
        ids.append(d.index(f"{W}w{i}"))
        if i % 2:
            ids += [d.index("a"), d.index("b")]
    return torch.tensor(ids + [d.eos()])


def words_of(noiser, t):
    return [tuple(w.tolist()) for w in noiser.split_words(t[:-1].numpy())]


def test_split_words_joins_pieces_up_to_next_word_start():
    d = make_dict()
    noiser = WordNoiser(d)
    words = words_of(noiser, sentence(d, 4))
    assert [len(w) for w in words] == [1, 3, 1, 3]


def test_no_noise_is_identity():
    d = make_dict()
    t = sentence(d)
    assert torch.equal(WordNoiser(d)(t, np.random.RandomState(0)), t)


def test_deletion_rate_keeps_words_whole_and_eos():
    d = make_dict()
    noiser = WordNoiser(d, word_dropout=0.1)
    rng = np.random.RandomState(1234)
    t = sentence(d)
    orig = set(words_of(noiser, t))
    kept = 0
    for _ in range(2000):
        out = noiser(t, rng)
        assert out[-1].item() == d.eos()
        ws = words_of(noiser, out)
        assert set(ws) <= orig  # multi-piece words are dropped or kept whole
        kept += len(ws)
    assert abs(1 - kept / 20000 - 0.1) < 0.01


def test_filler_rate_and_word_count():
    d = make_dict()
    noiser = WordNoiser(d, word_blank=0.2)
    rng = np.random.RandomState(7)
    t = sentence(d)
    blanks = 0
    for _ in range(2000):
        ws = words_of(noiser, noiser(t, rng))
        assert len(ws) == 10
        blanks += sum(w == (d.unk(),) for w in ws)
    assert abs(blanks / 20000 - 0.2) < 0.01


def test_local_shuffle_moves_no_word_further_than_k():
    rng = np.random.RandomState(0)
    moved = 0
    for _ in range(2000):
        order = local_shuffle_order(12, 3, rng)
        assert sorted(order) == list(range(12))
        assert np.abs(order - np.arange(12)).max() <= 3
        moved += (order != np.arange(12)).sum()
    assert moved > 0


def test_bad_parameters_are_refused():
    d = make_dict()
    with pytest.raises(ValueError, match="word_dropout"):
        WordNoiser(d, word_dropout=1.5)
    with pytest.raises(ValueError, match="not in the dictionary"):
        WordNoiser(d, word_blank=0.1, filler="<nope>")


def test_dataset_noise_is_deterministic_per_epoch_and_differs_across_epochs():
    d = make_dict()
    base = [sentence(d, 12) for _ in range(5)]
    sizes = np.array([len(t) for t in base])

    def draw(epoch, seed=1):
        ds = SyntheticSourceDataset(base, sizes, WordNoiser(d, 0.1, 0.1, 3), tag_idx=None, seed=seed)
        ds.set_epoch(epoch)
        return [ds[i].tolist() for i in range(5)]

    assert draw(1) == draw(1)
    assert draw(1) != draw(2)
    assert draw(1, seed=1) != draw(1, seed=2)
    assert example_rng(1, 2, 3).rand() == example_rng(1, 2, 3).rand()


# --- through fairseq's own batch iterator, with data loader worker processes ---------------
def sources_per_epoch(task, num_workers: int, epochs: int = 3):
    """``{id: source tokens}`` of each training epoch, read as ``fairseq-train`` reads them:
    ``task.get_batch_iterator`` for every epoch (``fairseq_cli/train.py``), then
    ``next_epoch_itr``, with ``num_workers`` DataLoader processes."""
    ds, pad = task.dataset("train"), task.source_dictionary.pad()
    out, epoch = [], 1
    earlier = {p.pid for p in multiprocessing.active_children()}  # e.g. of an earlier test
    for _ in range(epochs):
        itr = task.get_batch_iterator(ds, max_tokens=4000, max_positions=(1024, 1024), seed=1,
                                      epoch=epoch, num_workers=num_workers)
        seen = {}
        for batch in itr.next_epoch_itr(shuffle=True):
            for i, row in zip(batch["id"].tolist(), batch["net_input"]["src_tokens"]):
                seen[i] = tuple(row[row != pad].tolist())
        out.append(seen)
        # no worker processes of earlier epochs left behind
        assert len([p for p in multiprocessing.active_children()
                    if p.pid not in earlier]) <= num_workers
        epoch = itr.next_epoch_idx
    return out


def denoising(corpus):
    return setup_task([str(mono_bin(corpus)), "--task", "bt_denoising",
                       "--noise-shuffle-distance", "3"])[0]


def bt_upsampling(corpus):
    return setup_task([str(corpus.bin), "--task", "bt_translation", "-s", corpus.src,
                       "-t", corpus.tgt, "--bt-data", str(corpus.syn), "--bt-noise-word-dropout",
                       "0.1", "--bt-noise-shuffle-distance", "3"])[0]


@pytest.mark.parametrize("make_task", [denoising, bt_upsampling])
def test_fresh_noise_every_epoch_with_any_number_of_workers(corpus, make_task):
    """fairseq keeps a reusable iterator's DataLoader and its worker processes across epochs;
    ``set_epoch`` only reaches the main process's copy of the dataset. Each epoch must still
    be noised afresh, and identically whatever the number of workers."""
    task = make_task(corpus)
    task.load_dataset("train")
    by_workers = {w: sources_per_epoch(task, w) for w in (0, 1, 2)}
    epochs = by_workers[0]
    noised = [i for i in epochs[0] if len({e[i] for e in epochs}) > 1]
    assert len(noised) > len(epochs[0]) / 4
    for a, b in ((0, 1), (1, 2), (0, 2)):
        changed = sum(epochs[a][i] != epochs[b][i] for i in noised)
        assert changed > len(noised) / 2, f"epochs {a + 1} and {b + 1}: same noise"
    assert by_workers[1] == epochs and by_workers[2] == epochs


# --- dictionaries without sentencepiece pieces --------------------------------------------
def test_bpe_dictionary_words_end_at_a_piece_without_at_at():
    d = Dictionary()
    for sym in ["the", "hou@@", "se", "un@@", "bel@@", "iev@@", "able", "cat"]:
        d.add_symbol(sym)
    t = torch.tensor([d.index(s) for s in ["the", "hou@@", "se", "un@@", "bel@@", "iev@@",
                                           "able", "cat"]] + [d.eos()])
    noiser = WordNoiser(d, shuffle_distance=3)
    assert [len(w) for w in noiser.split_words(t[:-1].numpy())] == [1, 2, 4, 1]
    rng, moved = np.random.RandomState(0), 0
    for _ in range(200):
        out = noiser(t, rng)
        assert sorted(words_of(noiser, out)) == sorted(words_of(noiser, t))  # words kept whole
        moved += not torch.equal(out, t)
    assert moved > 100


def test_word_level_dictionary_is_refused_naming_it(corpus, tmp_path):
    """Without '▁' or '@@' pieces every sentence would be one word: an error, not a no-op."""
    data, L = tmp_path / "words", corpus.src  # mono_bin: the source side
    data.mkdir()
    for name in (f"train.{L}-None.{L}.bin", f"train.{L}-None.{L}.idx"):
        (data / name).symlink_to(mono_bin(corpus) / name)
    lines = (mono_bin(corpus) / f"dict.{L}.txt").read_text(encoding="utf-8").splitlines()
    (data / f"dict.{L}.txt").write_text("".join(x.replace(W, "~") + "\n" for x in lines),
                                      encoding="utf-8")
    with pytest.raises(BTUserError, match=rf"^{data}/dict.{L}.txt: no sentencepiece '{W}' pieces"):
        setup_task([str(data), "--task", "bt_denoising"])
    task, _ = setup_task([str(data), "--task", "bt_denoising", "--noise-word-dropout", "0",
                          "--noise-word-blank", "0", "--noise-shuffle-distance", "0"])
    assert task.noiser is None  # no noise asked for: nothing to refuse


# --- one declaration of the options, per-tool defaults ------------------------------------
def test_every_noise_flag_keeps_its_name_and_documented_default(corpus):
    from fairseq_bt_plugin.generate.config import BTGenerateConfig

    _, bt = setup_task([str(corpus.bin), "--task", "bt_translation", "-s", corpus.src,
                        "-t", corpus.tgt])
    _, dn = setup_task([str(mono_bin(corpus)), "--task", "bt_denoising"])
    gen = BTGenerateConfig()
    for cfg, prefix, on in ((bt.task, "bt_noise_", False), (dn.task, "noise_", True),
                            (gen, "noise_", True)):
        values = [getattr(cfg, prefix + x) for x in
                  ("word_dropout", "word_blank", "shuffle_distance", "filler")]
        assert values == ([0.1, 0.1, 3, "<unk>"] if on else [0.0, 0.0, 0, "<unk>"])
