"""fairseq's multilingual data (``translation_multi_simple_epoch``) with back-translation per pair.

Written for fairseq 0.12. :class:`BTMultilingualDataManager` is fairseq's
``MultilingualDatasetManager`` whose training split is one :class:`~.bt_mix_dataset.BTMixDataset`
per language pair of ``--lang-pairs``: the pair's bitext (data category ``main``) mixed with its
synthetic corpus (category ``bt`` of fairseq's ``--extra-data`` / ``--extra-lang-pairs``), so
fairseq's sampling across pairs (``--sampling-method``, ``--sampling-temperature``,
``--sampling-weights`` keyed ``main:SRC-TGT``) draws from each pair's mix. The synthetic source is
noised and tagged (:class:`~.synthetic_source_dataset.SyntheticSourceDataset`) before fairseq
prepends the language token, so the language token stays first and is never noised.
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from fairseq.data.multilingual.multilingual_data_manager import MultilingualDatasetManager
from fairseq.data.multilingual.sampled_multi_dataset import CollateFormat, SampledMultiDataset

from .bt_mix_dataset import BTMixDataset, per_sample_tensor
from .noising import WordNoiser
from .synthetic_source_dataset import SyntheticSourceDataset

BT = "bt"  # fairseq data category of the synthetic corpora (--extra-data '{"bt": DIR}')
MAIN = "main"


class BTSampledMultiDataset(SampledMultiDataset):
    """fairseq's ``SampledMultiDataset`` over the pairs' :class:`BTMixDataset` s.

    Each sample gets a batch-wide unique ``id`` (its index here: the pairs' own indices repeat)
    and ``bt_pair`` (the pair's position in ``--lang-pairs``), collated into ``batch["bt_pair"]``.
    The pairs are re-drawn every epoch (synthetic sample, noise), so their sizes are re-read
    every epoch also when fairseq would keep the first epoch's (``--sampling-method concat``)."""

    def _establish_virtual_datasets(self):
        self._cur_indices = None
        super()._establish_virtual_datasets()

    def __getitem__(self, index):
        pair, item = super().__getitem__(index)
        return pair, dict(item, id=index, bt_pair=pair)

    def collater(self, samples, **extra_args):
        batch = super().collater(samples, **extra_args)
        if batch:
            batch["bt_pair"] = per_sample_tensor([s for _, s in samples], batch, "bt_pair",
                                                 torch.long)
        return batch


class BTMultilingualDataManager(MultilingualDatasetManager):
    """The data manager of ``bt_multilingual`` (see the module docstring).

    ``mixing``: per pair ``SRC-TGT``, ``(upsample_primary, synthetic_fraction)`` of
    :class:`BTMixDataset`; ``weights(param, n)``: the per-pair weights of a synthetic corpus
    of ``n`` pairs (None: all 1)."""

    def __init__(self, args, lang_pairs, langs, dicts, sampling_method, *,
                 mixing: Dict[str, Tuple[int, Optional[float]]], noiser: Optional[WordNoiser],
                 tag_idx: Optional[int], weights):
        super().__init__(args, lang_pairs, langs, dicts, sampling_method)
        self.mixing, self.noiser, self.tag_idx, self.weights = mixing, noiser, tag_idx, weights

    def load_synthetic(self, param: Dict):
        """A synthetic corpus as fairseq loads a pair, its source noised and tagged first."""
        src, tgt = param["src"], param["tgt"]
        src_spec, tgt_spec = param["langtok_spec"]
        a = self.args
        return self.load_langpair_dataset(
            param["data_path"], param["split"], src, param["src_dict"], tgt, param["tgt_dict"],
            combine=False, dataset_impl=a.dataset_impl, upsample_primary=1,
            left_pad_source=a.left_pad_source, left_pad_target=a.left_pad_target,
            max_source_positions=a.max_source_positions,
            max_target_positions=a.max_target_positions, truncate_source=a.truncate_source,
            src_dataset_transform_func=lambda ds: self.src_dataset_tranform_func(
                src, tgt, SyntheticSourceDataset(ds, ds.sizes, self.noiser, self.tag_idx,
                                                 self.seed), src_spec),
            tgt_dataset_transform_func=lambda ds: self.tgt_dataset_tranform_func(
                src, tgt, ds, tgt_spec))

    def load_split_datasets(self, split, training, epoch=1, combine=False, shard_epoch=None,
                            **kwargs):
        if not (training and split == getattr(self.args, "train_subset", None)):
            return super().load_split_datasets(split, training, epoch, combine, shard_epoch)
        params = self.get_split_data_param_list(split, epoch, shard_epoch=shard_epoch)
        synthetic = {(p["src"], p["tgt"]): p for p in params if p["data_category"] == BT}
        main = [p for p in params if p["data_category"] == MAIN]
        datasets = []
        for p in main:
            bitext = self.load_a_dataset(combine=combine, **p)
            syn = synthetic.get((p["src"], p["tgt"]))
            corpora = [self.load_synthetic(syn)] if syn else []
            upsample, fraction = self.mixing[f"{p['src']}-{p['tgt']}"]
            datasets.append((p["key"], BTMixDataset(
                bitext, corpora, [self.weights(syn, len(c)) for c in corpora],
                upsample_primary=upsample, synthetic_fraction=fraction, seed=self.seed,
                epoch=epoch)))
        return datasets, main

    def load_sampled_multi_dataset(self, split, training, epoch=0, combine=False,
                                   shard_epoch=None, **kwargs):
        if not (training and split == getattr(self.args, "train_subset", None)):
            return super().load_sampled_multi_dataset(split, training, epoch, combine,
                                                      shard_epoch, **kwargs)
        datasets, params = self.load_split_datasets(split, training, epoch, combine,
                                                    shard_epoch=shard_epoch)
        return BTSampledMultiDataset(
            OrderedDict(datasets), epoch=epoch,
            sampling_ratios=self.get_sampling_ratios(params, datasets, epoch),
            eval_key=None, collate_format=CollateFormat.single,
            virtual_size=self.args.virtual_data_size, split=split, shared_collater=True)


def pair_counts(dataset: BTSampledMultiDataset) -> List[np.ndarray]:
    """Per pair, the samples of the current epoch from its bitext (index 0) and synthetic
    corpus (index 1), as drawn by fairseq's sampling across pairs."""
    out = []
    for i, d in enumerate(dataset.datasets):
        lo = dataset.cumulated_sizes[i - 1] if i else 0
        local = dataset._cur_indices[lo:dataset.cumulated_sizes[i]]
        out.append(np.bincount(d._corpus[local], minlength=2))
    return out
