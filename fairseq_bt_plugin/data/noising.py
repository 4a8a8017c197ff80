"""Word-level noise for synthetic source sentences (Edunov et al. 2018, "noised beam").

Words are sentencepiece pieces joined up to the next piece that starts with ``▁``, or, in a
dictionary without such pieces, subword-nmt BPE pieces joined up to one that does not end in
``@@`` (fairseq's own ``noising.py`` only understands ``@@``). A dictionary with neither (a
word-level or byte-level one) is refused: each sentence would be one word, and the noise a
silent no-op. Three operations, in this order:

* deletion: each word is dropped with probability ``word_dropout`` (one word always survives);
* filler: each surviving word is replaced by one filler token with probability ``word_blank``;
* local shuffle: words are permuted so that no word moves more than ``shuffle_distance``
  positions (Lample et al. 2018: sort ``i + U(0, k + 1)``).

Randomness comes only from the ``numpy.random.RandomState`` passed in, so callers control
determinism (the dataset seeds it from ``(seed, epoch, index)``).

The options (``--noise-*``, ``--bt-noise-*``) are declared here once (:func:`noise_options`)
and turned into a noiser by one constructor (:func:`build_noiser`).
"""
from dataclasses import field, make_dataclass
from typing import List, Optional

import numpy as np
import torch
from fairseq.dataclass import FairseqDataclass

from ..errors import BTUserError

SP_WORD_START = "\u2581"
BPE_CONTINUATION = "@@"

# Defaults of the noise options. Where noise is the point (bt_denoising, fairseq-bt-backtranslate
# --mode noised_beam): the values of Edunov et al. (2018). bt_translation: off unless asked.
EDUNOV_2018 = {"word_dropout": 0.1, "word_blank": 0.1, "shuffle_distance": 3}
NO_NOISE = {"word_dropout": 0.0, "word_blank": 0.0, "shuffle_distance": 0}


class NoWordBoundaries(ValueError):
    """The dictionary marks no word boundaries (neither ``▁`` nor ``@@`` pieces)."""


class WordNoiser:
    """Applies deletion / filler / local-shuffle noise to a 1-D tensor of token ids.

    Args:
        dictionary: fairseq ``Dictionary`` of the tokens being noised.
        word_dropout: probability of deleting a word.
        word_blank: probability of replacing a word by ``filler``.
        shuffle_distance: maximum distance a word may move (0: no shuffle).
        filler: filler token (added to nothing: must already be in ``dictionary``).
        word_start: prefix marking the first piece of a word (sentencepiece); when no
            symbol has it, a word ends at the first piece not ending in ``@@``.

    Raises:
        ValueError: a probability outside [0, 1), a negative distance, an unknown filler;
            :class:`NoWordBoundaries` when noise is on and the dictionary has neither kind
            of piece.
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
        symbols = dictionary.symbols
        special = np.arange(len(symbols)) < dictionary.nspecial  # words of their own
        starts = np.array([s.startswith(word_start) for s in symbols], dtype=bool)
        if starts[~special].any():
            ends = np.zeros(len(symbols), dtype=bool)
        else:
            ends = np.array([not s.endswith(BPE_CONTINUATION) for s in symbols], dtype=bool)
            if self.active and ends[~special].all():
                raise NoWordBoundaries(
                    f"no sentencepiece '{word_start}' pieces and no '{BPE_CONTINUATION}' BPE "
                    "continuations: words cannot be found, so noise would treat each sentence "
                    "as one word; word noise needs a sentencepiece or subword-nmt dictionary")
        self._is_word_start = starts | special
        self._is_word_end = ends | special

    @property
    def active(self) -> bool:
        return self.word_dropout > 0 or self.word_blank > 0 or self.shuffle_distance > 0

    def split_words(self, ids: np.ndarray) -> List[np.ndarray]:
        """Split ids (no trailing eos) into words; the first token always opens a word."""
        if len(ids) == 0:
            return []
        starts = self._is_word_start[ids]
        starts[1:] |= self._is_word_end[ids[:-1]]
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


def noise_options(prefix: str, defaults: dict, scope: str) -> type:
    """A config mixin with the fields ``PREFIX{word_dropout,word_blank,shuffle_distance,filler}``
    (options ``--PREFIX-word-dropout`` ...), defaults from ``defaults`` (:data:`EDUNOV_2018`
    or :data:`NO_NOISE`), help texts starting with ``scope``."""
    flag = "--" + prefix.replace("_", "-")
    return make_dataclass(f"NoiseOptions_{prefix}", [
        (prefix + "word_dropout", float, field(
            default=defaults["word_dropout"],
            metadata={"help": f"{scope}delete each word with this probability"})),
        (prefix + "word_blank", float, field(
            default=defaults["word_blank"],
            metadata={"help": f"{scope}replace each word by {flag}filler with this probability"})),
        (prefix + "shuffle_distance", int, field(
            default=defaults["shuffle_distance"],
            metadata={"help": f"{scope}shuffle words locally, none moving more than this many "
                      "positions (0: off)"})),
        (prefix + "filler", str, field(
            default="<unk>", metadata={"help": f"filler token for {flag}word-blank"})),
    ], bases=(FairseqDataclass,))


def build_noiser(dictionary, cfg, prefix: str, dict_path: str) -> Optional[WordNoiser]:
    """The :class:`WordNoiser` that the options ``PREFIX*`` of ``cfg`` (see
    :func:`noise_options`) ask for on ``dictionary`` (read from ``dict_path``), or None when
    every kind of noise is off. Bad values raise :class:`BTUserError`."""
    opt = {name: getattr(cfg, prefix + name)
           for name in ("word_dropout", "word_blank", "shuffle_distance", "filler")}
    try:
        noiser = WordNoiser(dictionary, **opt)
    except NoWordBoundaries as e:
        raise BTUserError(f"{dict_path}: {e}") from None
    except ValueError as e:
        raise BTUserError(f"--{prefix.replace('_', '-')}*: {e}") from None
    return noiser if noiser.active else None
