"""Word-level noise for synthetic source sentences (Edunov et al. 2018, "noised beam").

Words are sentencepiece pieces joined up to the next piece that starts with ``▁`` (fairseq's
own ``noising.py`` only understands ``@@`` BPE). Three operations, in this order:

* deletion: each word is dropped with probability ``word_dropout`` (one word always survives);
* filler: each surviving word is replaced by one filler token with probability ``word_blank``;
* local shuffle: words are permuted so that no word moves more than ``shuffle_distance``
  positions (Lample et al. 2018: sort ``i + U(0, k + 1)``).

Randomness comes only from the ``numpy.random.RandomState`` passed in, so callers control
determinism (the dataset seeds it from ``(seed, epoch, index)``).
"""
from typing import List, Optional

import numpy as np
import torch

SP_WORD_START = "\u2581"


class WordNoiser:
    """Applies deletion / filler / local-shuffle noise to a 1-D tensor of token ids.

    Args:
        dictionary: fairseq ``Dictionary`` of the tokens being noised.
        word_dropout: probability of deleting a word.
        word_blank: probability of replacing a word by ``filler``.
        shuffle_distance: maximum distance a word may move (0: no shuffle).
        filler: filler token (added to nothing: must already be in ``dictionary``).
        word_start: prefix marking the first piece of a word.
    """

    def __init__(self, dictionary, word_dropout: float = 0.0, word_blank: float = 0.0,
                 shuffle_distance: int = 0, filler: str = "<unk>",
                 word_start: str = SP_WORD_START):
        for name, p in (("word_dropout", word_dropout), ("word_blank", word_blank)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {p}")
        if shuffle_distance < 0:
            raise ValueError(f"shuffle_distance must be >= 0, got {shuffle_distance}")
        filler_idx = dictionary.index(filler)
        if filler_idx == dictionary.unk() and filler != dictionary.unk_word:
            raise ValueError(f"filler token {filler!r} is not in the dictionary")
        self.word_dropout = word_dropout
        self.word_blank = word_blank
        self.shuffle_distance = shuffle_distance
        self.filler_idx = filler_idx
        self.eos = dictionary.eos()
        starts = [s.startswith(word_start) for s in dictionary.symbols]
        for i in range(dictionary.nspecial):
            starts[i] = True  # special tokens are words of their own
        self._is_word_start = np.array(starts, dtype=bool)

    @property
    def active(self) -> bool:
        return self.word_dropout > 0 or self.word_blank > 0 or self.shuffle_distance > 0

    def split_words(self, ids: np.ndarray) -> List[np.ndarray]:
        """Split ids (no trailing eos) into words; the first token always opens a word."""
        if len(ids) == 0:
            return []
        starts = self._is_word_start[ids].copy()
        starts[0] = True
        return np.split(ids, np.flatnonzero(starts)[1:])

    def __call__(self, tokens: torch.Tensor, rng: np.random.RandomState) -> torch.Tensor:
        ids = tokens.numpy() if isinstance(tokens, torch.Tensor) else np.asarray(tokens)
        has_eos = len(ids) > 0 and ids[-1] == self.eos
        body = ids[:-1] if has_eos else ids
        words = self.split_words(body)
        if not words or not self.active:
            return torch.as_tensor(ids, dtype=torch.long)
        words = self._drop(words, rng)
        words = self._blank(words, rng)
        words = self._shuffle(words, rng)
        out = np.concatenate(words + ([np.array([self.eos], dtype=ids.dtype)] if has_eos else []))
        return torch.from_numpy(out.astype(np.int64))

    def _drop(self, words, rng):
        if self.word_dropout <= 0:
            return words
        keep = rng.rand(len(words)) >= self.word_dropout
        if not keep.any():
            keep[rng.randint(len(words))] = True
        return [w for w, k in zip(words, keep) if k]

    def _blank(self, words, rng):
        if self.word_blank <= 0:
            return words
        blank = rng.rand(len(words)) < self.word_blank
        filler = np.array([self.filler_idx], dtype=words[0].dtype)
        return [filler if b else w for w, b in zip(words, blank)]

    def _shuffle(self, words, rng):
        if self.shuffle_distance <= 0 or len(words) < 2:
            return words
        order = local_shuffle_order(len(words), self.shuffle_distance, rng)
        return [words[i] for i in order]


def local_shuffle_order(n: int, k: int, rng: np.random.RandomState) -> np.ndarray:
    """A permutation of range(n) in which no element moves more than k positions."""
    scores = np.arange(n) + rng.uniform(0, k + 1, size=n)
    return np.argsort(scores, kind="stable")


def build_noiser(dictionary, word_dropout: float, word_blank: float, shuffle_distance: int,
                 filler: str) -> Optional[WordNoiser]:
    """A :class:`WordNoiser`, or None when every kind of noise is off."""
    noiser = WordNoiser(dictionary, word_dropout, word_blank, shuffle_distance, filler)
    return noiser if noiser.active else None
