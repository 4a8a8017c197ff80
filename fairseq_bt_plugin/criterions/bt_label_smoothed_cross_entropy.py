"""Criterion ``bt_label_smoothed_cross_entropy``: per-pair weighted loss, split logging.

The loss of pair i is multiplied by its weight ``w_i`` (``batch["bt_weights"]``, 1 for
bitext). With the weights of ``fairseq-bt-backtranslate --weights`` (for each monolingual sentence
y, weights summing to 1 over its kept synthetic sources x: the reverse model's ``q(x|y)``
renormalised over a beam's n-best list, or 1/K for K sources sampled from it) the synthetic
part estimates ``L = -sum_y E_{x ~ q(x|y)} log p(y|x)``, each sentence's expected loss over its
synthetic sources; with one source per sentence every weight is 1. The loss is normalised by the weighted token count ``sum_i w_i * tokens_i``
(``sentence_avg``: ``sum_i w_i``), so that each monolingual sentence counts like one bitext
sentence however its weights are spread, and a down-weighted token does not shrink the step.
With every weight 1 (or no weights in the batch) loss and normaliser are bit-identical to
fairseq's ``label_smoothed_cross_entropy``. Loss, (weighted) token and sentence counts
are also logged separately for bitext (``*_bitext``) and synthetic (``*_synth``) pairs, and,
with ``bt_multilingual`` (``batch["bt_pair"]``), per language pair as well
(``loss_de-en_bitext``, ``loss_de-en_synth``, ``nsentences_de-en_synth``, ...).
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

_STATS = ("loss", "ntokens", "nsentences")
_PARTS = ("bitext", "synth")


def split_sums(sent_loss, sent_tokens, synthetic, group: str = ""):
    """Loss, tokens and sentences of the bitext and synthetic pairs, keyed ``STAT_GROUPPART``
    (``group``: "" or ``"de-en_"``)."""
    out = {}
    for part, mask in (("bitext", ~synthetic), ("synth", synthetic)):
        out[f"loss_{group}{part}"] = sent_loss[mask].sum().data
        out[f"ntokens_{group}{part}"] = utils.item(sent_tokens[mask].sum())
        out[f"nsentences_{group}{part}"] = utils.item(mask.sum())
    return out


@dataclass
class BTLabelSmoothedCrossEntropyConfig(LabelSmoothedCrossEntropyCriterionConfig):
    pass


@register_criterion("bt_label_smoothed_cross_entropy", dataclass=BTLabelSmoothedCrossEntropyConfig)
class BTLabelSmoothedCrossEntropyCriterion(LabelSmoothedCrossEntropyCriterion):
    def forward(self, model, sample, reduce=True):
        net_output = model(**sample["net_input"])
        loss, nll_loss, split = self.compute_weighted_loss(model, net_output, sample)
        sample_size = self.weighted_sample_size(sample)
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

    def weighted_sample_size(self, sample):
        """The loss's normaliser: fairseq's (sentences or target tokens), each counted with
        its pair's weight when the batch has weights."""
        weights = sample.get("bt_weights")
        if weights is None:
            return sample["target"].size(0) if self.sentence_avg else sample["ntokens"]
        if self.sentence_avg:
            return utils.item(weights.sum())
        tokens = sample["target"].ne(self.padding_idx).sum(dim=1).to(weights.dtype)
        return utils.item((weights * tokens).sum())

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
            if weights is not None:  # weighted tokens: the loss's own normaliser
                sent_tokens = sent_tokens.to(weights.dtype) * weights.to(lprobs.device)
            split = split_sums(sent_loss, sent_tokens, synthetic)
            pair = sample.get("bt_pair")
            names = getattr(self.task, "bt_pair_names", None)
            if pair is not None and names:
                pair = pair.to(lprobs.device)
                for i in pair.unique().tolist():
                    m = pair == i
                    split.update(split_sums(sent_loss[m], sent_tokens[m], synthetic[m],
                                            f"{names[i]}_"))
        return loss, nll_loss, split

    @classmethod
    def reduce_metrics(cls, logging_outputs) -> None:
        super().reduce_metrics(logging_outputs)
        keys = {k for log in logging_outputs for k in log
                if k.split("_", 1)[0] in _STATS and k.rsplit("_", 1)[-1] in _PARTS}
        total = {k: utils.item(sum(log.get(k, 0) for log in logging_outputs)) for k in keys}
        nsent = total.get("nsentences_bitext", 0) + total.get("nsentences_synth", 0)
        if nsent == 0:  # a batch without bt_translation's mixing (e.g. validation)
            return
        groups = sorted({k[len("nsentences_"):-len("bitext")] for k in keys
                         if k.startswith("nsentences_") and k.endswith("_bitext")})
        for group in groups:  # "" (all pairs), then "de-en_", ... (bt_multilingual)
            for part in _PARTS:
                ntok = total.get(f"ntokens_{group}{part}", 0)
                if ntok > 0:
                    metrics.log_scalar(f"loss_{group}{part}",
                                       total[f"loss_{group}{part}"] / ntok / math.log(2),
                                       ntok, round=3)
                metrics.log_scalar_sum(f"nsentences_{group}{part}",
                                       total.get(f"nsentences_{group}{part}", 0), round=0)
        metrics.log_scalar("synth_frac", total["nsentences_synth"] / nsent, nsent, round=3)
