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
