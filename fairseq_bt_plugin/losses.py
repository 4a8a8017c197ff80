"""Loss functions as pure tensor functions, so they can be unit-tested by hand."""
from typing import Optional, Tuple

import torch


def weighted_label_smoothed_nll_loss(
    lprobs: torch.Tensor,
    target: torch.Tensor,
    epsilon: float,
    ignore_index: Optional[int] = None,
    token_weights: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """fairseq's ``label_smoothed_nll_loss`` with an optional weight per target token.

    Args:
        lprobs: ``(N, V)`` log-probabilities (N = batch x len, flattened).
        target: ``(N,)`` gold indices.
        epsilon: label-smoothing mass.
        ignore_index: padding index, contributes nothing.
        token_weights: ``(N,)`` weight of each token's loss (the weight of its sentence pair);
            None means 1 everywhere. Weights multiply the per-token terms before summation, in
            the same order as fairseq, so all-ones weights give bit-identical results.

    Returns:
        ``(loss, nll_loss, token_loss)``: summed smoothed loss, summed NLL and the ``(N,)``
        per-token smoothed loss (already weighted; zero at padding).
    """
    target = target.unsqueeze(-1)  # N x 1
    nll_loss = -lprobs.gather(dim=-1, index=target)  # N x 1
    smooth_loss = -lprobs.sum(dim=-1, keepdim=True)  # N x 1
    if ignore_index is not None:
        pad_mask = target.eq(ignore_index)
        nll_loss.masked_fill_(pad_mask, 0.0)
        smooth_loss.masked_fill_(pad_mask, 0.0)
    if token_weights is not None:
        w = token_weights.to(nll_loss.dtype).unsqueeze(-1)
        nll_loss = nll_loss * w
        smooth_loss = smooth_loss * w
    eps_i = epsilon / (lprobs.size(-1) - 1)
    token_loss = (1.0 - epsilon - eps_i) * nll_loss.squeeze(-1) + eps_i * smooth_loss.squeeze(-1)
    nll_sum = nll_loss.sum()
    loss = (1.0 - epsilon - eps_i) * nll_sum + eps_i * smooth_loss.sum()
    return loss, nll_sum, token_loss


# --- latent-variable (VAE) terms -----------------------------------------------------------
def gaussian_kl(
    q_mu: torch.Tensor,
    q_logvar: torch.Tensor,
    p_mu: Optional[torch.Tensor] = None,
    p_logvar: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """KL(q || p) of two diagonal Gaussians, per example and latent dimension.

    Args:
        q_mu, q_logvar: ``(B, K)`` mean and log-variance of q.
        p_mu, p_logvar: ``(B, K)`` of p; None means the standard normal N(0, I).

    Returns:
        ``(B, K)``: ``0.5 * (lv_p - lv_q + (exp(lv_q) + (mu_q - mu_p)^2) / exp(lv_p) - 1)``.
    """
    if p_mu is None:
        return 0.5 * (q_logvar.exp() + q_mu.pow(2) - 1.0 - q_logvar)
    return 0.5 * (p_logvar - q_logvar
                  + (q_logvar.exp() + (q_mu - p_mu).pow(2)) / p_logvar.exp() - 1.0)


def free_bits_kl(kl_per_dim: torch.Tensor, free_bits: float) -> torch.Tensor:
    """Summed KL with a floor of ``free_bits`` nats per latent dimension (Kingma et al. 2016).

    The floor applies to the batch mean of each dimension, so a dimension whose average KL is
    below it contributes ``free_bits`` (no gradient) and is not pushed further to the prior.
    Result is on the same scale as ``kl_per_dim.sum()`` (a sum over the batch).

    Args:
        kl_per_dim: ``(B, K)`` from :func:`gaussian_kl`.
        free_bits: floor in nats per dimension; ``<= 0`` returns ``kl_per_dim.sum()``.
    """
    if free_bits <= 0:
        return kl_per_dim.sum()
    bsz = kl_per_dim.size(0)
    return kl_per_dim.mean(dim=0).clamp(min=free_bits).sum() * bsz


def bow_reconstruction_loss(
    logits: torch.Tensor, tokens: torch.Tensor, ignore: Tuple[int, ...] = (),
    weights: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Bag-of-words reconstruction: each token of the sentence predicted from z alone
    (Zhao et al. 2017), ``-sum_i w_i sum_t log softmax(logits_i)[token_it]``.

    Args:
        logits: ``(B, V)`` one distribution per sentence.
        tokens: ``(B, T)`` token ids of the sentence to reconstruct.
        ignore: ids that are not scored (padding, eos; the BT tag and noise filler of a
            source).
        weights: ``(B,)`` weight of each sentence pair (``bt_weights``); None means 1.

    Returns:
        ``(loss, ntokens)``: summed (weighted) loss and number of scored tokens (unweighted,
        as fairseq's ``ntokens``).
    """
    lprobs = torch.log_softmax(logits.float(), dim=-1)  # B x V
    scored = torch.ones_like(tokens, dtype=torch.bool)
    for idx in ignore:
        scored &= tokens.ne(idx)
    token_lprobs = lprobs.gather(dim=1, index=tokens)  # B x T
    token_loss = -(token_lprobs * scored.to(token_lprobs.dtype))  # B x T
    if weights is not None:
        token_loss = token_loss * weights.to(token_loss).unsqueeze(-1)
    return token_loss.sum(), scored.sum()


def vae_seq2seq_loss(
    ce_loss: torch.Tensor,
    kl_per_dim: Optional[torch.Tensor],
    beta: float,
    free_bits: float = 0.0,
    rec_loss: Optional[torch.Tensor] = None,
    rec_weight: float = 0.0,
    weights: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor]]:
    """``ce + beta * KL_fb + rec_weight * rec``; a term whose weight is 0 is not added at all,
    so with ``beta == 0`` and ``rec_weight == 0`` the result *is* ``ce_loss`` (bit-identical).

    Args:
        weights: ``(B,)`` weight of each sentence pair (``bt_weights``), applied to its KL
            (each row of ``kl_per_dim``) before the sum and the free-bits floor, as the CE and
            ``rec_loss`` already carry them: a pair's whole ELBO is weighted. None means 1.

    Returns:
        ``(loss, kl, kl_fb)``: total, (weighted) summed KL and that KL after the free-bits
        floor (both None when there is no latent).
    """
    loss, kl, kl_fb = ce_loss, None, None
    if kl_per_dim is not None:
        if weights is not None:
            kl_per_dim = kl_per_dim * weights.to(kl_per_dim).unsqueeze(-1)
        kl = kl_per_dim.sum()
        kl_fb = free_bits_kl(kl_per_dim, free_bits)
        if beta != 0:
            loss = loss + beta * kl_fb
    if rec_loss is not None and rec_weight != 0:
        loss = loss + rec_weight * rec_loss
    return loss, kl, kl_fb
