"""Task ``bt_translation``: bitext mixed with back-translated (synthetic) corpora."""
import logging
import os
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np
from fairseq import utils
from fairseq.data import LanguagePairDataset
from fairseq.tasks import register_task
from omegaconf import II
from fairseq.tasks.translation import TranslationConfig, TranslationTask, load_langpair_dataset

from ..data.bt_mix_dataset import BTMixDataset
from ..data.epochs import StopsPreviousWorkers
from ..data.noising import NO_NOISE, build_noiser, noise_options
from ..data.synthetic_source_dataset import SyntheticSourceDataset
from ..errors import BTUserError, check
from ..transfer import TransferConfig, TransferTaskMixin

logger = logging.getLogger(__name__)


@dataclass
class BTTranslationConfig(TranslationConfig, TransferConfig,
                          noise_options("bt_noise_", NO_NOISE, "synthetic source: ")):
    upsample_primary: int = field(
        default=1,
        metadata={"help": "repeat the bitext this many times per epoch when mixing with "
                  "synthetic corpora (Edunov et al. 2018). Must be >= 1: unlike stock fairseq "
                  "(default -1, fairseq#3644) the bitext is never silently dropped"},
    )
    bt_data: str = field(
        default="",
        metadata={"help": "comma-separated synthetic (back-translated) corpora, each a "
                  "directory holding a binarized 'train' split, DIR:SPLIT, or the name of a "
                  "split in the main data directory. They must share the bitext dictionaries"},
    )
    bt_synthetic_fraction: Optional[float] = field(
        default=None,
        metadata={"help": "instead of --upsample-primary: the share of synthetic pairs in each "
                  "epoch, in (0, 1). The bitext is used once and round(f*N/(1-f)) synthetic "
                  "pairs are drawn afresh every epoch"},
    )
    bt_tag: str = field(
        default="",
        metadata={"help": "tagged back-translation (Caswell et al. 2019): prepend this token "
                  "(e.g. '<BT>') to every synthetic source sentence; added to the source "
                  "dictionary if missing; never added to bitext, valid or test data. "
                  "Pass the same value to fairseq-generate. Empty: no tag"},
    )
    seed: int = II("common.seed")
    bt_weighted: bool = field(
        default=False,
        metadata={"help": "multiply the loss of each synthetic pair by its weight, read from "
                  "SPLIT.weights (one float per line) beside each synthetic corpus, as written "
                  "by fairseq-bt-backtranslate; bitext pairs weigh 1"},
    )


def _dict_difference(path_a: str, path_b: str) -> Optional[str]:
    with open(path_a, encoding="utf-8") as fa, open(path_b, encoding="utf-8") as fb:
        a, b = fa.read().splitlines(), fb.read().splitlines()
    for n, (la, lb) in enumerate(zip(a, b), start=1):
        if la.split(" ")[0] != lb.split(" ")[0]:
            return f"first difference at line {n}: {la.split(' ')[0]!r} vs {lb.split(' ')[0]!r}"
    if len(a) != len(b):
        return f"{len(a)} vs {len(b)} entries"
    return None


def check_same_dictionaries(data_path: str, main: str, langs, option: str) -> None:
    """A synthetic corpus in ``data_path`` (from ``option``) comes with the dictionaries of
    the bitext in ``main`` (nothing to check when it is ``main``)."""
    if os.path.abspath(data_path) == os.path.abspath(main):
        return
    for lang in langs:
        theirs = os.path.join(data_path, f"dict.{lang}.txt")
        # token ids mean nothing without their dictionary: it must be there to compare
        check(os.path.exists(theirs), f"{theirs}: not found; a synthetic corpus from "
              f"{option} must come with the dictionaries it was binarized with "
              "(fairseq-preprocess and fairseq-bt-backtranslate --binarize-to write them)")
        diff = _dict_difference(os.path.join(main, f"dict.{lang}.txt"), theirs)
        check(diff is None, f"{theirs}: differs from the bitext dictionary "
              f"{os.path.join(main, f'dict.{lang}.txt')} ({diff}); synthetic corpora "
              "must be binarized with the bitext dictionaries (--srcdict/--tgtdict)")


def read_weights(path: str, expected: int) -> np.ndarray:
    """Per-pair weights, one float per line; errors name the file and line."""
    check(os.path.exists(path), f"{path}: weights file not found (needed by --bt-weighted)")
    values = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            try:
                w = float(line.split("\t")[0])
            except ValueError:
                raise BTUserError(f"{path}:{n}: not a number: {line.strip()[:40]!r}") from None
            check(np.isfinite(w) and w >= 0, f"{path}:{n}: weight must be finite and >= 0, got {w}")
            values.append(w)
    check(len(values) == expected,
          f"{path}: {len(values)} weights for a synthetic corpus of {expected} pairs")
    return np.asarray(values, dtype=np.float32)


@register_task("bt_translation", dataclass=BTTranslationConfig)
class BTTranslationTask(StopsPreviousWorkers, TransferTaskMixin, TranslationTask):
    """Translation on bitext plus back-translated corpora (upsampling or fraction mixing,
    tagging, on-the-fly word noise, per-pair loss weights). Valid and test read bitext only."""

    cfg: BTTranslationConfig

    def __init__(self, cfg: BTTranslationConfig, src_dict, tgt_dict):
        if cfg.bt_tag and src_dict.index(cfg.bt_tag) == src_dict.unk():
            src_dict.add_symbol(cfg.bt_tag)
        super().__init__(cfg, src_dict, tgt_dict)
        check(cfg.upsample_primary >= 1,
              f"--upsample-primary must be >= 1, got {cfg.upsample_primary} (stock fairseq's -1 "
              "would drop the bitext, fairseq#3644)")
        f = cfg.bt_synthetic_fraction
        check(f is None or 0.0 < f < 1.0, f"--bt-synthetic-fraction must be in (0, 1), got {f}")
        check(f is None or cfg.upsample_primary == 1,
              "use either --upsample-primary or --bt-synthetic-fraction, not both")
        self.noiser = build_noiser(src_dict, cfg, "bt_noise_", os.path.join(
            utils.split_paths(cfg.data)[0], f"dict.{cfg.source_lang}.txt"))
        self.tag_idx = src_dict.index(cfg.bt_tag) if cfg.bt_tag else None

    # ------------------------------------------------------------------------------------
    def synthetic_corpora(self) -> List[Tuple[str, str]]:
        """``(directory, split)`` of each --bt-data entry."""
        main = utils.split_paths(self.cfg.data)[0]
        out = []
        for entry in [e.strip() for e in self.cfg.bt_data.split(",") if e.strip()]:
            if os.path.isdir(entry):
                out.append((entry, "train"))
            elif ":" in entry and os.path.isdir(entry.rsplit(":", 1)[0]):
                d, s = entry.rsplit(":", 1)
                out.append((d, s))
            else:
                out.append((main, entry))
        return out

    def _load_pair(self, data_path: str, split: str, combine: bool) -> LanguagePairDataset:
        src, tgt = self.cfg.source_lang, self.cfg.target_lang
        return load_langpair_dataset(
            data_path, split, src, self.src_dict, tgt, self.tgt_dict, combine=combine,
            dataset_impl=self.cfg.dataset_impl, upsample_primary=1,
            left_pad_source=self.cfg.left_pad_source, left_pad_target=self.cfg.left_pad_target,
            max_source_positions=self.cfg.max_source_positions,
            max_target_positions=self.cfg.max_target_positions,
            load_alignments=False, truncate_source=self.cfg.truncate_source,
            num_buckets=self.cfg.num_batch_buckets, shuffle=True,
            pad_to_multiple=self.cfg.required_seq_len_multiple,
        )

    def _check_synthetic(self, data_path: str, split: str) -> None:
        src, tgt = self.cfg.source_lang, self.cfg.target_lang
        prefix = os.path.join(data_path, f"{split}.{src}-{tgt}.{src}")
        check(os.path.exists(prefix + ".idx") or os.path.exists(prefix),
              f"synthetic corpus not found: {prefix}.{{idx,bin}} (from --bt-data)")
        check_same_dictionaries(data_path, utils.split_paths(self.cfg.data)[0], (src, tgt),
                                "--bt-data")

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        if split != self.cfg.train_subset or not self.cfg.bt_data:
            return super().load_dataset(split, epoch=epoch, combine=combine, **kwargs)
        paths = utils.split_paths(self.cfg.data)
        bitext = self._load_pair(paths[(epoch - 1) % len(paths)], split, combine)
        synthetic, weights = [], []
        for data_path, syn_split in self.synthetic_corpora():
            self._check_synthetic(data_path, syn_split)
            pair = self._load_pair(data_path, syn_split, combine=False)
            src = SyntheticSourceDataset(pair.src, pair.src_sizes, self.noiser, self.tag_idx,
                                         self.cfg.seed)
            synthetic.append(LanguagePairDataset(
                src, src.sizes, self.src_dict, pair.tgt, pair.tgt_sizes, self.tgt_dict,
                left_pad_source=self.cfg.left_pad_source, left_pad_target=self.cfg.left_pad_target,
                shuffle=True, pad_to_multiple=self.cfg.required_seq_len_multiple))
            weights.append(read_weights(os.path.join(data_path, f"{syn_split}.weights"), len(pair))
                           if self.cfg.bt_weighted else None)
        self.datasets[split] = BTMixDataset(
            bitext, synthetic, weights, upsample_primary=self.cfg.upsample_primary,
            synthetic_fraction=self.cfg.bt_synthetic_fraction, seed=self.cfg.seed, epoch=epoch)
        counts = self.datasets[split].counts()
        logger.info(f"bt_translation {split} epoch {epoch}: {counts[0]} bitext + "
                    f"{counts[1:].sum()} synthetic pairs ({counts[1:].sum() / counts.sum():.3f} "
                    f"synthetic) from {len(synthetic)} corpora")
