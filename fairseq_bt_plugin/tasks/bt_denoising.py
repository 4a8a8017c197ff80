"""Task ``bt_denoising``: (V)AE pretraining on monolingual text for transfer to translation.

Each example is (noised sentence -> clean sentence), both in the translation dictionary, so
any encoder-decoder of the translation family trains on it unchanged: a plain transformer
(a denoising autoencoder), or ``bt_transformer_vae`` with ``--latent-mode autoencoder``
and the ``bt_vae_seq2seq`` criterion (a VAE; ``--kl-beta 0`` gives a plain AE with a latent).
The noise (word deletion, filler, local shuffle of sentencepiece words: ``WordNoiser``) is
drawn afresh every epoch from ``(seed, epoch, index)``; validation data are noised the same way.

Data: binarize with the translation dictionary, one language at a time::

    fairseq-preprocess --only-source -s de --srcdict BITEXT_BIN/dict.de.txt \
        --trainpref mono --validpref valid --destdir MONO_BIN

which writes ``MONO_BIN/train.de-None.de.{bin,idx}`` and ``MONO_BIN/dict.de.txt``. Several
languages (``--mono-langs de,en``) are concatenated; their dictionaries must be identical.
"""
import logging
import os
from dataclasses import dataclass, field
from typing import List, Optional

from fairseq import utils
from fairseq.data import ConcatDataset, Dictionary, data_utils
from fairseq.data.indexed_dataset import get_available_dataset_impl
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.tasks import FairseqTask, register_task
from omegaconf import II, MISSING

from ..data.denoising_pair_dataset import DenoisingPairDataset
from ..data.epochs import StopsPreviousWorkers
from ..data.noising import EDUNOV_2018, build_noiser, noise_options
from ..data.synthetic_source_dataset import SyntheticSourceDataset
from ..errors import check
from ..transfer import TransferConfig, TransferTaskMixin

logger = logging.getLogger(__name__)


@dataclass
class BTDenoisingConfig(TransferConfig, noise_options("noise_", EDUNOV_2018, "input: ")):
    data: str = field(
        default=MISSING,
        metadata={"help": "directory with dict.LANG.txt and monolingual text binarized with "
                  "the translation dictionary (fairseq-preprocess --only-source -s LANG "
                  "--srcdict ...)"})
    mono_langs: str = field(
        default="",
        metadata={"help": "comma-separated languages to read (SPLIT.LANG-None.LANG or "
                  "SPLIT.LANG); empty: the language of the only dict.*.txt in --data"})
    left_pad_source: bool = field(default=True, metadata={"help": "pad the input on the left"})
    left_pad_target: bool = field(default=False, metadata={"help": "pad the output on the left"})
    max_source_positions: int = field(
        default=1024, metadata={"help": "max number of tokens in the input"})
    max_target_positions: int = field(
        default=1024, metadata={"help": "max number of tokens in the output"})
    dataset_impl: Optional[ChoiceEnum(get_available_dataset_impl())] = II(
        "dataset.dataset_impl")
    seed: int = II("common.seed")


def _langs(cfg: BTDenoisingConfig, data_dir: str) -> List[str]:
    langs = [x.strip() for x in cfg.mono_langs.split(",") if x.strip()]
    if langs:
        return langs
    found = sorted(f[len("dict."):-len(".txt")] for f in os.listdir(data_dir)
                   if f.startswith("dict.") and f.endswith(".txt")) if os.path.isdir(data_dir) else []
    check(len(found) == 1, f"{data_dir}: found dictionaries {found or 'none'}; name the "
          "language(s) with --mono-langs")
    return found


@register_task("bt_denoising", dataclass=BTDenoisingConfig)
class BTDenoisingTask(StopsPreviousWorkers, TransferTaskMixin, FairseqTask):
    """Denoising (variational) autoencoding of monolingual text, one dictionary both sides."""

    cfg: BTDenoisingConfig

    def __init__(self, cfg: BTDenoisingConfig, dictionary: Dictionary):
        super().__init__(cfg)
        self.dictionary = dictionary
        data_dir = utils.split_paths(cfg.data)[0]
        self.langs = _langs(cfg, data_dir)
        self.noiser = build_noiser(dictionary, cfg, "noise_",
                                   os.path.join(data_dir, f"dict.{self.langs[0]}.txt"))

    @classmethod
    def setup_task(cls, cfg: BTDenoisingConfig, **kwargs):
        data_dir = utils.split_paths(cfg.data)[0]
        langs = _langs(cfg, data_dir)
        dictionary = None
        for lang in langs:
            path = os.path.join(data_dir, f"dict.{lang}.txt")
            check(os.path.isfile(path), f"{path}: dictionary not found (--mono-langs {lang})")
            d = cls.load_dictionary(path)
            if dictionary is None:
                dictionary = d
            else:
                check(d == dictionary, f"{path}: differs from dict.{langs[0]}.txt; every "
                      "language must be binarized with the one translation dictionary")
        logger.info(f"bt_denoising: {len(dictionary)} types, languages {', '.join(langs)}")
        return cls(cfg, dictionary)

    def _load_mono(self, data_dir: str, split: str, lang: str):
        tried = []
        for name in (f"{split}.{lang}-None.{lang}", f"{split}.{lang}"):
            prefix = os.path.join(data_dir, name)
            tried.append(prefix)
            ds = data_utils.load_indexed_dataset(prefix, self.dictionary, self.cfg.dataset_impl)
            if ds is not None:
                return ds
        raise FileNotFoundError(f"bt_denoising: no {split} data for {lang}: tried "
                                f"{', '.join(t + '.{bin,idx}' for t in tried)}")

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        paths = utils.split_paths(self.cfg.data)
        data_dir = paths[(epoch - 1) % len(paths)] if split == "train" else paths[0]
        parts = [self._load_mono(data_dir, split, lang) for lang in self.langs]
        clean = parts[0] if len(parts) == 1 else ConcatDataset(parts)
        noised = SyntheticSourceDataset(clean, clean.sizes, self.noiser, None, self.cfg.seed)
        self.datasets[split] = DenoisingPairDataset(
            noised, noised.sizes, self.dictionary, clean, clean.sizes, self.dictionary,
            left_pad_source=self.cfg.left_pad_source, left_pad_target=self.cfg.left_pad_target,
            shuffle=True)
        logger.info(f"bt_denoising {split}: {len(clean)} sentences ({', '.join(self.langs)})")

    def max_positions(self):
        return (self.cfg.max_source_positions, self.cfg.max_target_positions)

    @property
    def source_dictionary(self):
        return self.dictionary

    @property
    def target_dictionary(self):
        return self.dictionary
