"""Bitext and synthetic corpora mixed into one training set, re-drawn every epoch."""
from typing import List, Optional, Sequence

import numpy as np
import torch
from fairseq.data import FairseqDataset, LanguagePairDataset, data_utils

from .epochs import RebuiltEveryEpoch

BITEXT = 0  # corpus id of the bitext; synthetic corpora are 1..n


def per_sample_tensor(samples, batch, key: str, dtype) -> torch.Tensor:
    """``sample[key]`` of each sample, in the order of the collated ``batch["id"]``."""
    by_id = {s["id"]: s for s in samples}
    return torch.tensor([by_id[int(i)][key] for i in batch["id"]], dtype=dtype)


def epoch_plan(n_bitext: int, n_synthetic: Sequence[int], upsample_primary: int,
               synthetic_fraction: Optional[float], seed: int, epoch: int):
    """Which (corpus, index) pairs make up one epoch.

    Upsampling mode (``synthetic_fraction is None``): every bitext pair ``upsample_primary``
    times and every synthetic pair once. Fraction mode: every bitext pair once and
    ``round(f * n_bitext / (1 - f))`` synthetic pairs, drawn without replacement from all
    synthetic corpora (whole passes first if more are needed than exist), a fresh draw per epoch.

    Returns:
        ``(corpus, local)``: two int64 arrays of equal length.
    """
    sizes = np.asarray(n_synthetic, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    pool = int(offsets[-1])
    if synthetic_fraction is None:
        bitext_rep = upsample_primary
        pooled = np.arange(pool, dtype=np.int64)
    else:
        bitext_rep = 1
        want = int(round(synthetic_fraction * n_bitext / (1.0 - synthetic_fraction)))
        if pool == 0:
            want = 0
        full, rest = divmod(want, pool) if pool else (0, 0)
        rng = np.random.RandomState(np.random.SeedSequence([seed, epoch, 7919]).generate_state(1)[0])
        extra = np.sort(rng.choice(pool, size=rest, replace=False)) if rest else np.zeros(0, np.int64)
        pooled = np.concatenate([np.tile(np.arange(pool, dtype=np.int64), full), extra.astype(np.int64)])
    syn_corpus = np.searchsorted(offsets, pooled, side="right")  # 1-based corpus ids
    syn_local = pooled - offsets[syn_corpus - 1]
    corpus = np.concatenate([np.full(n_bitext * bitext_rep, BITEXT, np.int64), syn_corpus])
    local = np.concatenate([np.tile(np.arange(n_bitext, dtype=np.int64), bitext_rep), syn_local])
    return corpus, local


class BTMixDataset(RebuiltEveryEpoch, FairseqDataset):
    """One bitext :class:`LanguagePairDataset` plus synthetic ones, as a single dataset.

    Each sample carries ``bt_synthetic`` (bool) and ``bt_weight`` (float, 1 for bitext); the
    collated batch gets ``bt_synthetic`` and ``bt_weights`` tensors aligned with ``batch["id"]``.
    """

    def __init__(self, bitext: LanguagePairDataset, synthetic: List[LanguagePairDataset],
                 synthetic_weights: List[Optional[np.ndarray]], upsample_primary: int = 1,
                 synthetic_fraction: Optional[float] = None, seed: int = 1, shuffle: bool = True,
                 epoch: int = 1):
        super().__init__()
        self.corpora = [bitext] + list(synthetic)
        self.weights = [None] + list(synthetic_weights)
        self.upsample_primary = upsample_primary
        self.synthetic_fraction = synthetic_fraction
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = None
        self.set_epoch(epoch)

    # --- epoch plan -------------------------------------------------------------------
    def set_epoch(self, epoch):
        for c in self.corpora:
            c.set_epoch(epoch)
            if hasattr(c.src, "set_epoch"):
                c.src.set_epoch(epoch)
        if epoch == self.epoch:
            return
        self.epoch = epoch
        self._corpus, self._local = epoch_plan(
            len(self.corpora[0]), [len(c) for c in self.corpora[1:]], self.upsample_primary,
            self.synthetic_fraction, self.seed, epoch)
        self.src_sizes = np.empty(len(self._corpus), dtype=np.int64)
        self.tgt_sizes = np.empty(len(self._corpus), dtype=np.int64)
        for cid, c in enumerate(self.corpora):
            mask = self._corpus == cid
            self.src_sizes[mask] = c.src_sizes[self._local[mask]]
            self.tgt_sizes[mask] = c.tgt_sizes[self._local[mask]]

    def counts(self):
        """Number of samples per corpus in the current epoch (index 0: bitext)."""
        return np.bincount(self._corpus, minlength=len(self.corpora))

    # --- FairseqDataset ---------------------------------------------------------------
    def __len__(self):
        return len(self._corpus)

    def __getitem__(self, index):
        cid, local = int(self._corpus[index]), int(self._local[index])
        item = self.corpora[cid][local]
        item["id"] = index
        item["bt_synthetic"] = cid != BITEXT
        w = self.weights[cid]
        item["bt_weight"] = 1.0 if w is None else float(w[local])
        return item

    def collater(self, samples):
        batch = self.corpora[0].collater(samples)
        if not batch:
            return batch
        batch["bt_synthetic"] = per_sample_tensor(samples, batch, "bt_synthetic", torch.bool)
        batch["bt_weights"] = per_sample_tensor(samples, batch, "bt_weight", torch.float)
        return batch

    @property
    def sizes(self):
        return np.vstack((self.src_sizes, self.tgt_sizes)).T

    def num_tokens(self, index):
        return max(self.src_sizes[index], self.tgt_sizes[index])

    def num_tokens_vec(self, indices):
        return np.maximum(self.src_sizes[indices], self.tgt_sizes[indices])

    def size(self, index):
        return (self.src_sizes[index], self.tgt_sizes[index])

    def ordered_indices(self):
        if self.shuffle:
            indices = np.random.permutation(len(self)).astype(np.int64)
        else:
            indices = np.arange(len(self), dtype=np.int64)
        indices = indices[np.argsort(self.tgt_sizes[indices], kind="mergesort")]
        return indices[np.argsort(self.src_sizes[indices], kind="mergesort")]

    def filter_indices_by_size(self, indices, max_sizes):
        return data_utils.filter_paired_dataset_indices_by_size(
            self.src_sizes, self.tgt_sizes, indices, max_sizes)

    @property
    def supports_prefetch(self):
        return False
