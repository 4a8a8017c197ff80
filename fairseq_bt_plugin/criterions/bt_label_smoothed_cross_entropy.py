"""Criterion ``bt_label_smoothed_cross_entropy``: per-pair weighted loss, split logging.

The loss of pair i is multiplied by its weight ``w_i`` (``batch["bt_weights"]``, 1 for
bitext). With the weights of ``fairseq-bt-generate --weights sequence`` (for each monolingual
sentence y, the reverse model's ``q(x|y)`` renormalised over its kept synthetic sources x:
they sum to 1 per sentence) the synthetic part is ``L = -sum_y sum_x q(x|y) log p(y|x)``,
each sentence's expected loss over its synthetic sources; with one source per sentence every
weight is 1. With every weight 1 (or no weights in the batch) the loss is bit-identical to
fairseq's ``label_smoothed_cross_entropy``. Loss, token and sentence counts
are also logged separately for bitext (``*_bitext``) and synthetic (``*_synth``) pairs.
"""
import math
from dataclasses import dataclass

import torch
from fairseq import utils
from fairseq.criterions import register_criterion
from fairseq.criterions.label_smoothed_cross_entropy import (
    LabelSmoothedCrossEntropyCriterion,
    LabelSmoothedCrossEntropyCriterionConfig,
)
from fairseq.logging import metrics

from ..losses import weighted_label_smoothed_nll_loss

_SPLIT_KEYS = ("loss_bitext", "loss_synth", "ntokens_bitext", "ntokens_synth",
               "nsentences_bitext", "nsentences_synth")


@dataclass
class BTLabelSmoothedCrossEntropyConfig(LabelSmoothedCrossEntropyCriterionConfig):
    pass


@register_criterion("bt_label_smoothed_cross_entropy", dataclass=BTLabelSmoothedCrossEntropyConfig)
class BTLabelSmoothedCrossEntropyCriterion(LabelSmoothedCrossEntropyCriterion):
    def forward(self, model, sample, reduce=True):
        net_output = model(**sample["net_input"])
        loss, nll_loss, split = self.compute_weighted_loss(model, net_output, sample)
        sample_size = sample["target"].size(0) if self.sentence_avg else sample["ntokens"]
        logging_output = {
            "loss": loss.data,
            "nll_loss": nll_loss.data,
            "ntokens": sample["ntokens"],
            "nsentences": sample["target"].size(0),
            "sample_size": sample_size,
            **split,
        }
        if self.report_accuracy:
            n_correct, total = self.compute_accuracy(model, net_output, sample)
            logging_output["n_correct"] = utils.item(n_correct.data)
            logging_output["total"] = utils.item(total.data)
        return loss, sample_size, logging_output

    def compute_weighted_loss(self, model, net_output, sample):
        lprobs, target = self.get_lprobs_and_target(model, net_output, sample)
        bsz = sample["target"].size(0)
        weights = sample.get("bt_weights")
        token_weights = None
        if weights is not None:
            token_weights = weights.to(lprobs.device).repeat_interleave(target.numel() // bsz)
        loss, nll_loss, token_loss = weighted_label_smoothed_nll_loss(
            lprobs, target, self.eps, ignore_index=self.padding_idx, token_weights=token_weights)
        split = {}
        synthetic = sample.get("bt_synthetic")
        if synthetic is not None:
            synthetic = synthetic.to(lprobs.device)
            sent_loss = token_loss.detach().view(bsz, -1).sum(dim=1)
            sent_tokens = target.view(bsz, -1).ne(self.padding_idx).sum(dim=1)
            split = {
                "loss_bitext": sent_loss[~synthetic].sum().data,
                "loss_synth": sent_loss[synthetic].sum().data,
                "ntokens_bitext": utils.item(sent_tokens[~synthetic].sum()),
                "ntokens_synth": utils.item(sent_tokens[synthetic].sum()),
                "nsentences_bitext": utils.item((~synthetic).sum()),
                "nsentences_synth": utils.item(synthetic.sum()),
            }
        return loss, nll_loss, split

    @classmethod
    def reduce_metrics(cls, logging_outputs) -> None:
        super().reduce_metrics(logging_outputs)
        total = {k: utils.item(sum(log.get(k, 0) for log in logging_outputs)) for k in _SPLIT_KEYS}
        nsent = total["nsentences_bitext"] + total["nsentences_synth"]
        if nsent == 0:  # a batch without bt_translation's mixing (e.g. validation)
            return
        for part in ("bitext", "synth"):
            ntok = total[f"ntokens_{part}"]
            if ntok > 0:
                metrics.log_scalar(f"loss_{part}", total[f"loss_{part}"] / ntok / math.log(2),
                                   ntok, round=3)
            metrics.log_scalar_sum(f"nsentences_{part}", total[f"nsentences_{part}"], round=0)
        metrics.log_scalar("synth_frac", total["nsentences_synth"] / nsent, nsent, round=3)
