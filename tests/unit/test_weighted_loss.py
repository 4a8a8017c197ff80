"""Per-pair weighted label-smoothed loss: hand-computed values, exact equality with fairseq."""
import math

import torch
from fairseq import models
from fairseq.criterions.label_smoothed_cross_entropy import (
    LabelSmoothedCrossEntropyCriterion,
    label_smoothed_nll_loss,
)

from fairseq_bt_plugin.criterions.bt_label_smoothed_cross_entropy import (
    BTLabelSmoothedCrossEntropyCriterion,
)
from fairseq_bt_plugin.losses import weighted_label_smoothed_nll_loss

from helpers import SRC, TGT, setup_task


def test_hand_computed_weighted_loss():
    probs = torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    lprobs = probs.log()
    target = torch.tensor([0, 1, 2])  # token 2 is padding below
    weights = torch.tensor([2.0, 0.5, 9.0])
    loss, nll, per_tok = weighted_label_smoothed_nll_loss(lprobs, target, 0.0, ignore_index=2,
                                                          token_weights=weights)
    expected = 2.0 * -math.log(0.5) + 0.5 * -math.log(0.8)
    assert math.isclose(nll.item(), expected, rel_tol=1e-6)
    assert math.isclose(loss.item(), expected, rel_tol=1e-6)
    assert per_tok[2].item() == 0.0
    # label smoothing eps = 0.2 over V = 3: eps_i = 0.1; smooth term = -sum log p
    loss_s, _, _ = weighted_label_smoothed_nll_loss(lprobs, target, 0.2, ignore_index=2,
                                                    token_weights=weights)
    smooth = 2.0 * -probs[0].log().sum() + 0.5 * -probs[1].log().sum()
    assert math.isclose(loss_s.item(), 0.7 * expected + 0.1 * smooth.item(), rel_tol=1e-6)


def test_unit_weights_bit_identical_to_fairseq():
    torch.manual_seed(0)
    lprobs = torch.randn(64, 50).log_softmax(-1)
    target = torch.randint(0, 50, (64,))
    target[::7] = 1
    for eps in (0.0, 0.1):
        ref_loss, ref_nll = label_smoothed_nll_loss(lprobs, target, eps, ignore_index=1)
        loss, nll, _ = weighted_label_smoothed_nll_loss(lprobs, target, eps, ignore_index=1,
                                                        token_weights=torch.ones(64))
        assert torch.equal(loss, ref_loss) and torch.equal(nll, ref_nll)


def test_criterion_equals_stock_with_unit_weights_and_scales_with_weights(corpus):
    task, cfg = setup_task([str(corpus.bin), "--task", "bt_translation", "-s", SRC, "-t", TGT,
                            "--bt-data", str(corpus.syn), "--label-smoothing", "0.1",
                            "--criterion", "bt_label_smoothed_cross_entropy"])
    task.load_dataset("train")
    torch.manual_seed(1)
    model = task.build_model(cfg.model)
    model.eval()
    ours = BTLabelSmoothedCrossEntropyCriterion(task, False, 0.1)
    stock = LabelSmoothedCrossEntropyCriterion(task, False, 0.1)
    ds = task.dataset("train")
    sample = ds.collater([ds[i] for i in range(490, 510)])  # 10 bitext + 10 synthetic
    assert sample["bt_synthetic"].sum() == 10
    with torch.no_grad():
        loss, size, log = ours(model, sample)
        ref_loss, ref_size, ref_log = stock(model, sample)
        assert torch.equal(loss, ref_loss) and torch.equal(log["nll_loss"], ref_log["nll_loss"])
        assert size == ref_size
        assert torch.allclose(log["loss_bitext"] + log["loss_synth"], loss, rtol=1e-5)
        assert log["nsentences_synth"] == 10 and log["nsentences_bitext"] == 10
        # weight 0 on synthetic pairs leaves exactly the bitext part of the loss
        sample["bt_weights"] = (~sample["bt_synthetic"]).float()
        loss0, size0, log0 = ours(model, sample)
        assert torch.allclose(loss0, log["loss_bitext"], rtol=1e-5)
        assert log0["loss_synth"].item() == 0.0
        # the normaliser is the weighted token count: here the bitext's tokens alone, and
        # the logged per-part token counts are weighted the same way
        tokens = sample["target"].ne(task.target_dictionary.pad()).sum(dim=1)
        assert size0 == tokens[~sample["bt_synthetic"]].sum().item() == log0["ntokens_bitext"]
        assert log0["ntokens_synth"] == 0
        # all weights 1: fairseq's own normaliser; weights 0.5 on the synthetic pairs count
        # their tokens half
        sample["bt_weights"] = torch.ones(len(tokens))
        assert ours(model, sample)[1] == ref_size
        sample["bt_weights"] = 1 - 0.5 * sample["bt_synthetic"].float()
        assert ours(model, sample)[1] == (tokens * sample["bt_weights"]).sum().item()
        ours.sentence_avg = True
        assert ours(model, sample)[1] == 15.0  # 10 bitext + 10 synthetic x 0.5
