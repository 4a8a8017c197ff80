"""Task ``bt_multilingual``: fairseq's ``translation_multi_simple_epoch`` with back-translated
corpora per language pair.

Everything multilingual is fairseq's: ``--lang-pairs``, ``--langs`` / ``--lang-dict``, the
``__xx__`` language tokens (``--encoder-langtok``, ``--decoder-langtok``), sampling across pairs
(``--sampling-method temperature --sampling-temperature T``). The synthetic corpora are fairseq's
extra-data category ``bt``: ``--extra-data '{"bt": "DIR"}' --extra-lang-pairs '{"bt":
"de-en,fr-en"}'``, DIR holding ``train.SRC-TGT.{SRC,TGT}`` per pair (binarized with the bitext
dictionary; ``fairseq-bt-backtranslate --target-langs ... --binarize-to DIR`` writes it); a
colon-separated list of such directories is used one per epoch, as fairseq does for ``main``.
Per pair the task adds what ``bt_translation`` has: mixing (``--bt-upsample-primary``,
``--bt-synthetic-fraction``), a tag (``--bt-tag``), noise (``--bt-noise-*``) and weights
(``--bt-weighted``) of the synthetic source. See :mod:`fairseq_bt_plugin.data.multilingual`.

fairseq 0.12's ``translation_multi_simple_epoch`` is a legacy (argparse) task: registering a
dataclass for a subclass would make fairseq rebuild the task's options from that dataclass
alone and lose fairseq's. So fairseq's options stay fairseq's (``add_args``) and this task's own
are the dataclass :class:`BTMultilingualConfig`, added to the same parser.
"""
import logging
import os
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Tuple

from fairseq import utils
from fairseq.dataclass.utils import gen_parser_from_dataclass
from fairseq.tasks import register_task
from fairseq.tasks.translation_multi_simple_epoch import TranslationMultiSimpleEpochTask
from omegaconf import DictConfig, ListConfig

from ..data.epochs import StopsPreviousWorkers
from ..data.multilingual import BT, MAIN, BTMultilingualDataManager, pair_counts
from ..data.noising import NO_NOISE, build_noiser, noise_options
from ..errors import check
from .bt_translation import check_same_dictionaries, read_weights

logger = logging.getLogger(__name__)


@dataclass
class BTMultilingualConfig(noise_options("bt_noise_", NO_NOISE, "synthetic source: ")):
    bt_upsample_primary: str = field(
        default="1",
        metadata={"help": "per pair, repeat the bitext this many times per epoch when mixing "
                  "with its synthetic corpus: N for every pair, or 'SRC-TGT:N,...' (pairs not "
                  "named: 1; a hydra override may also give [SRC-TGT:N,...] or "
                  "{SRC-TGT:N,...})"})
    bt_synthetic_fraction: str = field(
        default="",
        metadata={"help": "per pair, instead of --bt-upsample-primary: the share of synthetic "
                  "pairs in the pair's mix, in (0, 1): F for every pair with a synthetic "
                  "corpus, or 'SRC-TGT:F,...' (or a list or mapping, as for "
                  "--bt-upsample-primary). The bitext is used once and round(F*N/(1-F)) "
                  "synthetic pairs are drawn afresh every epoch. fairseq's sampling across "
                  "pairs then draws from each pair's mix"})
    bt_tag: str = field(
        default="",
        metadata={"help": "tagged back-translation: this token (e.g. '<BT>') follows the "
                  "encoder language token of every synthetic source (first when there is no "
                  "encoder language token); added to every dictionary; never in bitext, valid "
                  "or test data. Empty: no tag"})
    bt_weighted: bool = field(
        default=False,
        metadata={"help": "multiply the loss of each synthetic pair by its weight, read from "
                  "train.SRC-TGT.weights beside each synthetic corpus (as written by "
                  "fairseq-bt-backtranslate --target-langs --binarize-to); bitext pairs weigh 1"})


def per_pair(value, pairs, flag: str, kind) -> Dict[str, object]:
    """``"V"`` (every pair) or ``"SRC-TGT:V,..."`` -> ``{pair: V}`` for the pairs named. Also
    as hydra hands an override to the task: a number (``=2``), a list (``=[SRC-TGT:V,...]``)
    or a mapping (``={SRC-TGT:V,...}``)."""
    if isinstance(value, (Mapping, DictConfig)):
        items = [(str(pair).strip(), ":", str(v).strip()) for pair, v in value.items()]
    else:
        if isinstance(value, (list, tuple, ListConfig)):
            value = ",".join(str(x) for x in value)
        value = "" if value is None else str(value).strip()
        items = [x.strip().rpartition(":") for x in value.split(",")] if value else []
    out = {}
    for pair, _, v in items:
        check(not pair or pair in pairs,
              f"{flag}: {pair!r} is not one of --lang-pairs {','.join(pairs)}")
        try:
            out.update({p: kind(v) for p in ([pair] if pair else pairs)})
        except ValueError:
            check(False, f"{flag}: expected {kind.__name__} or 'SRC-TGT:{kind.__name__},...', "
                  f"got {value!r}")
    return out


@register_task("bt_multilingual")
class BTMultilingualTask(StopsPreviousWorkers, TranslationMultiSimpleEpochTask):
    """Multilingual translation (fairseq's) on bitext plus back-translated corpora per pair;
    valid and test read bitext only. Batches carry ``bt_synthetic``, ``bt_weights`` and
    ``bt_pair`` for ``bt_label_smoothed_cross_entropy`` (loss per pair and source)."""

    @staticmethod
    def add_args(parser):
        TranslationMultiSimpleEpochTask.add_args(parser)
        gen_parser_from_dataclass(parser, BTMultilingualConfig())

    @classmethod
    def setup_task(cls, args, **kwargs):
        langs, dicts, training = BTMultilingualDataManager.prepare(cls.load_dictionary, args,
                                                                   **kwargs)
        if args.bt_tag:  # after fairseq's language tokens, in training and inference alike
            for d in dicts.values():
                d.add_symbol(args.bt_tag)
        return cls(args, langs, dicts, training)

    def __init__(self, args, langs, dicts, training):
        extra = args.extra_data or {}
        check(set(extra) <= {BT}, f"--extra-data: bt_multilingual reads the category '{BT}' "
              f"only, got {sorted(extra)}")
        check(BT not in extra or BT in (args.extra_lang_pairs or {}),
              "--extra-data has 'bt' but --extra-lang-pairs does not say which pairs it serves "
              "(e.g. --extra-lang-pairs '{\"bt\": \"de-en,fr-en\"}')")
        check(args.virtual_epoch_size is None and not args.lang_tok_replacing_bos_eos,
              "bt_multilingual does not support --virtual-epoch-size or "
              "--lang-tok-replacing-bos-eos")
        check(args.sampling_method != "RoundRobin",
              "bt_multilingual: --sampling-method RoundRobin is not supported")
        super().__init__(args, langs, dicts, training)
        if BT not in args.langtoks:  # fairseq would give the category no language tokens
            args.langtoks[BT] = args.langtoks[MAIN]
        src_dict = self.source_dictionary
        main = utils.split_paths(args.data)[0]
        noiser = build_noiser(src_dict, args, "bt_noise_", os.path.join(
            main, f"dict.{self.source_langs[0]}.txt"))
        self.data_manager = BTMultilingualDataManager(
            args, self.lang_pairs, langs, dicts, self.sampling_method,
            mixing=self._mixing(args) if training else {}, noiser=noiser,
            tag_idx=src_dict.index(args.bt_tag) if args.bt_tag else None, weights=self._weights)

    def _mixing(self, args) -> Dict[str, Tuple[int, Optional[float]]]:
        """Per pair, ``(upsample_primary, synthetic_fraction)`` from the options."""
        pairs = list(self.lang_pairs)
        bt_pairs = (args.extra_lang_pairs or {}).get(BT, "")
        for p in [p.strip() for p in bt_pairs.split(",") if p.strip()]:
            check(p in pairs, f"--extra-lang-pairs: bt pair {p} is not one of --lang-pairs "
                  f"{','.join(pairs)}")
        upsample = per_pair(args.bt_upsample_primary, pairs, "--bt-upsample-primary", int)
        fraction = per_pair(args.bt_synthetic_fraction, pairs, "--bt-synthetic-fraction", float)
        mixing = {}
        for p in pairs:
            n, f = upsample.get(p, 1), fraction.get(p)
            check(n >= 1, f"--bt-upsample-primary must be >= 1, got {n} for {p}")
            check(f is None or 0.0 < f < 1.0,
                  f"--bt-synthetic-fraction must be in (0, 1), got {f} for {p}")
            check(f is None or p not in upsample or n == 1,
                  f"{p}: use either --bt-upsample-primary or --bt-synthetic-fraction, not both")
            mixing[p] = (n, f)
        return mixing

    @property
    def bt_pair_names(self):
        """``SRC-TGT`` of the pair index ``batch["bt_pair"]`` (the order of --lang-pairs)."""
        return list(self.lang_pairs)

    def _weights(self, param: Dict, n: int):
        """Check a synthetic corpus' dictionaries; its weights with --bt-weighted."""
        d, src, tgt = param["data_path"], param["src"], param["tgt"]
        check_same_dictionaries(d, utils.split_paths(self.args.data)[0], (src, tgt),
                                "--extra-data")
        if not self.args.bt_weighted:
            return None
        return read_weights(os.path.join(d, f"{param['split']}.{src}-{tgt}.weights"), n)

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        super().load_dataset(split, epoch=epoch, combine=combine, **kwargs)
        if self.training and split == getattr(self.args, "train_subset", None):
            for name, (bitext, synthetic) in zip(self.lang_pairs,
                                                 pair_counts(self.datasets[split])):
                logger.info(f"bt_multilingual {split} epoch {epoch} {name}: {bitext} bitext + "
                            f"{synthetic} synthetic pairs")
