"""Source side of a synthetic (back-translated) corpus: fresh noise per epoch, optional tag."""
from typing import Optional

import numpy as np
import torch
from fairseq.data import BaseWrapperDataset

from .noising import WordNoiser


def example_rng(seed: int, epoch: int, index: int) -> np.random.RandomState:
    """Random state that depends only on (seed, epoch, index): same in every worker or rank."""
    state = np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0]
    return np.random.RandomState(state)


class SyntheticSourceDataset(BaseWrapperDataset):
    """Wraps a source token dataset; noise, if any, is drawn from ``(seed, epoch, index)``.

    The tag (Caswell et al. 2019) is prepended after noising, so it is never dropped or moved.
    ``sizes`` are upper bounds (noise never lengthens a sentence), so batching stays valid.
    """

    def __init__(self, dataset, sizes: np.ndarray, noiser: Optional[WordNoiser],
                 tag_idx: Optional[int], seed: int):
        super().__init__(dataset)
        self.noiser = noiser
        self.tag_idx = tag_idx
        self.seed = seed
        self.epoch = 1
        self._sizes = np.asarray(sizes) + (1 if tag_idx is not None else 0)

    @property
    def sizes(self):
        return self._sizes

    def num_tokens(self, index):
        return self._sizes[index]

    def size(self, index):
        return self._sizes[index]

    def set_epoch(self, epoch):
        self.epoch = epoch

    @property
    def can_reuse_epoch_itr_across_epochs(self):
        return self.noiser is None  # see data/epochs.py

    def __getitem__(self, index):
        item = self.dataset[index]
        if self.noiser is not None:
            item = self.noiser(item, example_rng(self.seed, self.epoch, index))
        if self.tag_idx is not None:
            item = torch.cat([item.new_tensor([self.tag_idx]), item])
        return item
