"""Latent-variable loss terms as pure functions, against hand-computed numbers."""
import math

import pytest
import torch

from fairseq_bt_plugin.losses import (
    bow_reconstruction_loss,
    free_bits_kl,
    gaussian_kl,
    vae_seq2seq_loss,
)


def test_kl_two_diagonal_gaussians_by_hand():
    # q = N(1, 1), p = N(0, 4): 0.5 * (log 4 - 0 + (1 + 1) / 4 - 1)
    q_mu, q_lv = torch.tensor([[1.0]], dtype=torch.float64), torch.tensor([[0.0]], dtype=torch.float64)
    p_mu, p_lv = torch.tensor([[0.0]], dtype=torch.float64), torch.tensor([[math.log(4)]], dtype=torch.float64)
    assert gaussian_kl(q_mu, q_lv, p_mu, p_lv).item() == pytest.approx(0.5 * (math.log(4) - 0.5), abs=1e-12)
    # q = N(2, e^-1), p = N(-1, e^1): 0.5 * (1 - (-1) + (e^-1 + 9) / e - 1)
    kl = gaussian_kl(torch.tensor([[2.0]], dtype=torch.float64), torch.tensor([[-1.0]], dtype=torch.float64),
                     torch.tensor([[-1.0]], dtype=torch.float64), torch.tensor([[1.0]], dtype=torch.float64))
    assert kl.item() == pytest.approx(0.5 * (2 + (math.exp(-1) + 9) / math.e - 1), abs=1e-12)


def test_kl_against_standard_normal_by_hand():
    # q = N(0.5, 2): 0.5 * (2 + 0.25 - 1 - log 2)
    kl = gaussian_kl(torch.tensor([[0.5, 0.0]], dtype=torch.float64),
                     torch.tensor([[math.log(2), 0.0]], dtype=torch.float64))
    assert kl.shape == (1, 2)
    assert kl[0, 0].item() == pytest.approx(0.5 * (1.25 - math.log(2)), abs=1e-12)
    assert kl[0, 1].item() == 0.0  # q == p
    # explicit standard normal prior gives the same numbers
    same = gaussian_kl(torch.tensor([[0.5]]), torch.tensor([[math.log(2)]]),
                       torch.zeros(1, 1), torch.zeros(1, 1))
    assert same.item() == pytest.approx(kl[0, 0].item(), abs=1e-6)


def test_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    q_mu, q_lv, p_mu, p_lv = (torch.randn(3, 5, generator=g, dtype=torch.float64) for _ in range(4))
    q = torch.distributions.Normal(q_mu, (0.5 * q_lv).exp())
    p = torch.distributions.Normal(p_mu, (0.5 * p_lv).exp())
    assert torch.allclose(gaussian_kl(q_mu, q_lv, p_mu, p_lv), torch.distributions.kl_divergence(q, p))


def test_free_bits_floor_per_dimension():
    kl = torch.tensor([[0.1, 2.0], [0.3, 1.0]], requires_grad=True)
    # batch means (0.2, 1.5); floor 0.5 -> (0.5, 1.5); times batch size 2
    out = free_bits_kl(kl, 0.5)
    assert out.item() == pytest.approx(4.0)
    out.backward()
    assert kl.grad[:, 0].tolist() == [0.0, 0.0]  # under the floor: not pushed to the prior
    assert kl.grad[:, 1].tolist() == [1.0, 1.0]
    assert free_bits_kl(kl.detach(), 0.0).item() == pytest.approx(3.4)


def test_bow_reconstruction_by_hand():
    logits = torch.zeros(2, 4)  # uniform over 4 types: -log 4 per token
    pad, eos = 1, 2
    tokens = torch.tensor([[3, 0, eos], [3, 3, pad]])
    loss, n = bow_reconstruction_loss(logits, tokens, ignore=(pad, eos))
    assert n.item() == 4
    assert loss.item() == pytest.approx(4 * math.log(4))
    logits = torch.tensor([[0.0, 0.0, 0.0, math.log(3)]])  # p(3) = 3/6
    loss, _ = bow_reconstruction_loss(logits, torch.tensor([[3]]))
    assert loss.item() == pytest.approx(math.log(2))


def test_combined_loss_terms_and_exact_identity():
    ce = torch.tensor(10.0)
    kl = torch.tensor([[0.5, 1.5], [0.5, 0.5]])
    rec = torch.tensor(4.0)
    loss, kl_raw, kl_fb = vae_seq2seq_loss(ce, kl, beta=0.5, free_bits=0.0, rec_loss=rec, rec_weight=0.25)
    assert kl_raw.item() == 3.0 and kl_fb.item() == 3.0
    assert loss.item() == pytest.approx(10 + 0.5 * 3 + 0.25 * 4)
    loss, _, _ = vae_seq2seq_loss(ce, kl, beta=0.0, rec_loss=rec, rec_weight=0.0)
    assert loss is ce  # nothing added: bit-identical to the CE


def test_pair_weights_weigh_the_bag_of_words_term_by_hand():
    logits = torch.zeros(2, 4)  # uniform: log 4 per scored token
    pad, eos = 1, 2
    tokens = torch.tensor([[3, 0, eos], [3, 3, pad]])
    loss, n = bow_reconstruction_loss(logits, tokens, ignore=(pad, eos),
                                      weights=torch.tensor([0.5, 2.0]))
    assert n.item() == 4  # scored tokens are counted unweighted, like fairseq's ntokens
    assert loss.item() == pytest.approx((0.5 * 2 + 2.0 * 2) * math.log(4))
    # the BT tag (5) and the noise filler (3) of a source are not scored when ignored
    loss, n = bow_reconstruction_loss(torch.zeros(1, 6), torch.tensor([[5, 3, 0, 4, eos]]),
                                      ignore=(pad, eos, 5, 3))
    assert n.item() == 2 and loss.item() == pytest.approx(2 * math.log(6))


def test_pair_weights_weigh_the_kl_before_the_free_bits_floor_by_hand():
    ce = torch.tensor(10.0)
    kl = torch.tensor([[0.5, 1.5], [0.5, 0.5]])
    w = torch.tensor([2.0, 0.0])  # weighted rows: (1, 3) and (0, 0)
    loss, kl_sum, kl_fb = vae_seq2seq_loss(ce, kl, beta=0.5, rec_loss=torch.tensor(4.0),
                                           rec_weight=0.25, weights=w)
    assert kl_sum.item() == 4.0 and kl_fb.item() == 4.0
    assert loss.item() == pytest.approx(10 + 0.5 * 4 + 0.25 * 4)
    # floor 1 nat on the batch means of the weighted KL, (0.5, 1.5) -> (1, 1.5), times B = 2
    _, kl_sum, kl_fb = vae_seq2seq_loss(ce, kl, beta=0.5, free_bits=1.0, weights=w)
    assert kl_sum.item() == 4.0 and kl_fb.item() == pytest.approx(5.0)
    # all weights 1: the unweighted numbers
    assert vae_seq2seq_loss(ce, kl, 0.5, weights=torch.ones(2))[1].item() == 3.0
