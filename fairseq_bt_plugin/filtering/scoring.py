"""Scores of synthetic pairs and the choice of the pairs to keep.

Cross-entropies come from fairseq's forced decoding: the task's own scorer
(``task.build_generator(..., score_reference=True)``: ``SequenceScorer``) on batches from the
task's batch iterator, so they are fairseq's per-sentence scores (natural log, per target
token, eos included).
"""
import math
from typing import List, Optional, Sequence

import torch


def dual_score(h_forward: float, h_reverse: float) -> float:
    """Dual conditional cross-entropy (Junczys-Dowmunt 2018): low when both models find the
    pair likely and agree, ``|H_f - H_r| + (H_f + H_r) / 2``."""
    return abs(h_forward - h_reverse) + 0.5 * (h_forward + h_reverse)


def kept_pairs(scores: Sequence[float], drop_worst: Optional[float],
               max_score: Optional[float]) -> List[bool]:
    """Which pairs stay: without the ``floor(drop_worst * N)`` highest scores (ties: the
    later pair goes first), or those scoring at most ``max_score``. Unscored pairs (``inf``
    or ``nan``) never stay, and count as the worst."""
    if max_score is not None:
        return [math.isfinite(s) and s <= max_score for s in scores]
    n_drop = math.floor(drop_worst * len(scores) + 1e-9)
    key = [s if math.isfinite(s) else math.inf for s in scores]
    worst_first = sorted(range(len(scores)), key=lambda i: (-key[i], -i))
    dropped = set(worst_first[:n_drop]) | {i for i, s in enumerate(key) if math.isinf(s)}
    return [i not in dropped for i in range(len(scores))]


def cross_entropies(models, task, src, tgt, max_tokens: Optional[int],
                    batch_size: Optional[int], use_cuda: bool) -> List[float]:
    """``H(tgt_i | src_i)`` of every pair of the token datasets ``src``/``tgt`` (fairseq
    indexed datasets in the task's dictionaries) under ``models`` (an ensemble averages
    probabilities): minus fairseq's forced-decoding score. ``inf`` for a pair too long for
    the models."""
    from fairseq import utils
    from fairseq.data import LanguagePairDataset
    from fairseq.dataclass.configs import GenerationConfig

    cfg = task.cfg
    dataset = LanguagePairDataset(
        src, src.sizes, task.source_dictionary, tgt, tgt.sizes, task.target_dictionary,
        left_pad_source=cfg.left_pad_source, left_pad_target=cfg.left_pad_target, shuffle=False)
    batches = task.get_batch_iterator(
        dataset=dataset, max_tokens=max_tokens, max_sentences=batch_size,
        max_positions=utils.resolve_max_positions(task.max_positions(),
                                                  *[m.max_positions() for m in models]),
        ignore_invalid_inputs=True, seed=1, num_workers=0, disable_iterator_cache=True,
    ).next_epoch_itr(shuffle=False)
    scorer = task.build_generator(models, GenerationConfig(score_reference=True))
    out = [math.inf] * len(dataset)
    with torch.no_grad():
        for sample in batches:
            if use_cuda:
                sample = utils.move_to_cuda(sample)
            for i, hypos in zip(sample["id"].tolist(), task.inference_step(scorer, models,
                                                                          sample)):
                out[i] = -float(hypos[0]["score"])
    return out
