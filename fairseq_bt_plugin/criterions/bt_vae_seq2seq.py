"""Criterion ``bt_vae_seq2seq``: label-smoothed CE + beta(t) * KL(q || p) + rec_weight * BoW.

* CE: exactly ``bt_label_smoothed_cross_entropy`` (per-pair weights and the bitext/synthetic
  split logging of ``bt_translation`` included; bit-identical to fairseq's
  ``label_smoothed_cross_entropy`` when no weights are given).
* KL: of the model's posterior against its prior (``extra["latent"]`` of
  ``bt_transformer_vae``), summed over the batch, with an optional free-bits floor per latent
  dimension, weighted by ``beta(t)`` from :mod:`fairseq_bt_plugin.kl_schedules`, where t is
  the number of updates done (``model.bt_num_updates``, set by every fairseq task).
* reconstruction: bag-of-words CE of one side's words from z alone (the model's
  ``--latent-bow`` head), weighted by ``--rec-weight``. Padding and eos are not scored, and
  of the source neither are the BT tag and the noise filler (:func:`bow_ignored_source_tokens`):
  they are no words of the sentence.

Per-pair weights (``bt_weights`` of ``bt_translation --bt-weighted``) weigh a pair's whole
ELBO: its CE, its KL (before the free-bits floor, which then applies to the batch mean of the
weighted KL) and its bag-of-words term alike.

With ``--kl-beta 0 --rec-weight 0`` the loss is the CE, bit for bit. Models without a latent
(e.g. a plain transformer in ``bt_denoising``) train with the CE alone. Logged separately:
``ce`` (bits per token), ``kl`` (nats per sentence, before the floor), ``kl_fb`` (after it),
``beta``, ``rec`` (nats per reconstructed token); with per-pair weights, ``kl`` and ``rec``
are of the weighted terms.
"""
import math
from dataclasses import dataclass, field
from typing import Tuple

from fairseq import utils
from fairseq.criterions import register_criterion
from fairseq.dataclass import ChoiceEnum
from fairseq.logging import metrics

from ..errors import check
from ..kl_schedules import KL_SCHEDULES, kl_beta
from ..losses import bow_reconstruction_loss, gaussian_kl, vae_seq2seq_loss
from .bt_label_smoothed_cross_entropy import (
    BTLabelSmoothedCrossEntropyConfig,
    BTLabelSmoothedCrossEntropyCriterion,
)


@dataclass
class BTVAESeq2SeqConfig(BTLabelSmoothedCrossEntropyConfig):
    kl_beta: float = field(
        default=1.0, metadata={"help": "maximum weight of the KL term (0: no KL term)"})
    kl_schedule: ChoiceEnum(KL_SCHEDULES) = field(
        default="linear",
        metadata={"help": "beta(t): constant, linear (warm-up over --kl-warmup-updates), "
                  "sigmoid (beta/2 at half of --kl-warmup-updates) or cyclical (Fu et al. "
                  "2019: cycles of --kl-cycle-updates, rising over --kl-cycle-ratio of each)"})
    kl_warmup_updates: int = field(
        default=4000, metadata={"help": "updates to reach --kl-beta (linear, sigmoid)"})
    kl_sigmoid_steepness: float = field(
        default=10.0, metadata={"help": "steepness of the sigmoid schedule"})
    kl_cycle_updates: int = field(
        default=10000, metadata={"help": "length of one cycle of the cyclical schedule"})
    kl_cycle_ratio: float = field(
        default=0.5, metadata={"help": "share of each cycle spent rising from 0 to --kl-beta"})
    kl_free_bits: float = field(
        default=0.0,
        metadata={"help": "free bits: floor in nats on the batch-mean KL of each latent "
                  "dimension (Kingma et al. 2016); 0: off"})
    rec_weight: float = field(
        default=0.0,
        metadata={"help": "weight (lambda_rec) of the bag-of-words reconstruction of the "
                  "model's --latent-bow side from z; 0: off"})


def bow_ignored_source_tokens(task) -> Tuple[int, ...]:
    """Source tokens the bag-of-words term does not score: padding, eos, and what
    ``bt_translation``/``bt_denoising`` put into a source that is no word of the sentence:
    the BT tag and, when word blanking is on, the noise filler (with the default ``<unk>``
    filler, genuine unknown words too)."""
    d = task.source_dictionary
    noiser = getattr(task, "noiser", None)  # bt_translation, bt_denoising
    filler = noiser.filler_idx if noiser is not None and noiser.word_blank > 0 else None
    extra = (getattr(task, "tag_idx", None), filler)  # bt_translation's --bt-tag
    return (d.pad(), d.eos()) + tuple(i for i in extra if i is not None)


@register_criterion("bt_vae_seq2seq", dataclass=BTVAESeq2SeqConfig)
class BTVAESeq2SeqCriterion(BTLabelSmoothedCrossEntropyCriterion):
    def __init__(self, task, cfg: BTVAESeq2SeqConfig):
        super().__init__(task, cfg.sentence_avg, cfg.label_smoothing, cfg.ignore_prefix_size,
                         cfg.report_accuracy)
        check(cfg.kl_beta >= 0, f"--kl-beta must be >= 0, got {cfg.kl_beta}")
        check(cfg.rec_weight >= 0, f"--rec-weight must be >= 0, got {cfg.rec_weight}")
        check(cfg.kl_free_bits >= 0, f"--kl-free-bits must be >= 0, got {cfg.kl_free_bits}")
        check(0 < cfg.kl_cycle_ratio <= 1,
              f"--kl-cycle-ratio must be in (0, 1], got {cfg.kl_cycle_ratio}")
        self.cfg = cfg
        self.bow_ignore = {"source": bow_ignored_source_tokens(task),
                           "target": (self.padding_idx, task.target_dictionary.eos())}

    def beta(self, num_updates: int) -> float:
        c = self.cfg
        return kl_beta(str(c.kl_schedule), num_updates, c.kl_beta, c.kl_warmup_updates,
                       c.kl_cycle_updates, c.kl_cycle_ratio, c.kl_sigmoid_steepness)

    def forward(self, model, sample, reduce=True):
        net_output = model(**sample["net_input"])
        loss, sample_size, logging_output = self.compute_vae_loss(model, net_output, sample)
        return loss, sample_size, logging_output

    def compute_vae_loss(self, model, net_output, sample):
        """Loss, sample size and logging output for an already computed ``net_output``."""
        ce, nll_loss, split = self.compute_weighted_loss(model, net_output, sample)
        extra = net_output[1] if isinstance(net_output[1], dict) else {}
        latent = extra.get("latent")
        beta = self.beta(getattr(model, "bt_num_updates", 0))
        kl_per_dim = rec = rec_tokens = None
        weights = sample.get("bt_weights")
        if latent is not None:
            kl_per_dim = gaussian_kl(latent["q_mu"].float(), latent["q_logvar"].float(),
                                     None if latent["p_mu"] is None else latent["p_mu"].float(),
                                     None if latent["p_logvar"] is None else latent["p_logvar"].float())
            if latent.get("bow_logits") is not None:
                side = latent["bow_side"]
                tokens = sample["net_input"]["src_tokens"] if side == "source" else sample["target"]
                rec, rec_tokens = bow_reconstruction_loss(
                    latent["bow_logits"], tokens, ignore=self.bow_ignore[side], weights=weights)
        check(self.cfg.rec_weight == 0 or latent is None or rec is not None,
              "--rec-weight > 0 needs a model with a bag-of-words head (--latent-bow)")
        loss, kl, kl_fb = vae_seq2seq_loss(ce, kl_per_dim, beta, self.cfg.kl_free_bits, rec,
                                           self.cfg.rec_weight, weights)
        nsentences = sample["target"].size(0)
        sample_size = nsentences if self.sentence_avg else sample["ntokens"]
        logging_output = {
            "loss": loss.data,
            "ce_loss": ce.data,
            "nll_loss": nll_loss.data,
            "ntokens": sample["ntokens"],
            "nsentences": nsentences,
            "sample_size": sample_size,
            "beta": beta,
            **split,
        }
        if kl is not None:
            logging_output.update(kl=kl.data, kl_fb=kl_fb.data, nsentences_latent=nsentences)
        if rec is not None:
            logging_output.update(rec=rec.data, rec_tokens=utils.item(rec_tokens))
        if self.report_accuracy:
            n_correct, total = self.compute_accuracy(model, net_output, sample)
            logging_output["n_correct"] = utils.item(n_correct.data)
            logging_output["total"] = utils.item(total.data)
        return loss, sample_size, logging_output

    @classmethod
    def reduce_metrics(cls, logging_outputs) -> None:
        super().reduce_metrics(logging_outputs)

        def total(key):
            return utils.item(sum(log.get(key, 0) for log in logging_outputs))

        sample_size = total("sample_size")
        if sample_size > 0:
            metrics.log_scalar("ce", total("ce_loss") / sample_size / math.log(2), sample_size,
                               round=3)
        nlat = total("nsentences_latent")
        if nlat > 0:
            metrics.log_scalar("kl", total("kl") / nlat, nlat, round=3)
            metrics.log_scalar("kl_fb", total("kl_fb") / nlat, nlat, round=3)
        ntok_rec = total("rec_tokens")
        if ntok_rec > 0:
            metrics.log_scalar("rec", total("rec") / ntok_rec, ntok_rec, round=3)
        if logging_outputs:
            # every worker uses the same beta; the mean of identical values is that value
            metrics.log_scalar("beta", sum(log.get("beta", 0) for log in logging_outputs)
                               / len(logging_outputs), weight=0, round=4)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return False  # "beta" is not a sum
