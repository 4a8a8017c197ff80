"""bt_transformer_vae and the bt_vae_seq2seq criterion on a real (tiny) fairseq setup."""
import math

import pytest
import torch
from fairseq.criterions import CRITERION_REGISTRY
from fairseq.logging import metrics
from fairseq.models import ARCH_MODEL_REGISTRY

from fairseq_bt_plugin.models.bt_transformer_vae import BTTransformerVAEModel, reparameterize

from helpers import SRC, TGT, setup_task


def vae_setup(corpus, *extra):
    args = [str(corpus.bin), "--task", "translation", "-s", SRC, "-t", TGT,
            "--arch", "bt_transformer_vae_tiny", "--share-all-embeddings", "--seed", "1"] + list(extra)
    task, cfg = setup_task(args)
    torch.manual_seed(1)
    model = task.build_model(cfg.model)
    task.load_dataset("valid")
    ds = task.dataset("valid")
    sample = ds.collater([ds[i] for i in range(6)])
    return task, cfg, model, sample


def test_reparameterisation_shape_and_gradient():
    mu = torch.randn(4, 3, requires_grad=True)
    logvar = torch.randn(4, 3, requires_grad=True)
    z = reparameterize(mu, logvar, generator=torch.Generator().manual_seed(7))
    assert z.shape == (4, 3)
    eps = torch.randn(4, 3, generator=torch.Generator().manual_seed(7))
    assert torch.allclose(z, mu + (0.5 * logvar).exp() * eps)
    z.sum().backward()
    assert torch.equal(mu.grad, torch.ones(4, 3))
    assert torch.allclose(logvar.grad, 0.5 * (0.5 * logvar.detach()).exp() * eps)
    many = reparameterize(torch.full((20000, 1), 2.0), torch.full((20000, 1), math.log(0.25)),
                          generator=torch.Generator().manual_seed(0))
    assert many.mean().item() == pytest.approx(2.0, abs=0.02)
    assert many.std().item() == pytest.approx(0.5, abs=0.02)


def test_architectures_registered():
    for arch in ("bt_transformer_vae_tiny", "bt_transformer_vae_small", "bt_transformer_vae_base"):
        assert ARCH_MODEL_REGISTRY[arch] is BTTransformerVAEModel
    assert CRITERION_REGISTRY["bt_vae_seq2seq"].__module__.startswith("fairseq_bt_plugin.")


def test_forward_exposes_latent_and_z_is_an_extra_encoder_position(corpus):
    task, cfg, model, sample = vae_setup(corpus, "--latent-dim", "6")
    assert model.latent_dim == 6 and model.bow_side == "source"
    net_input = sample["net_input"]
    bsz, src_len = net_input["src_tokens"].shape
    model.train()
    logits, extra = model(**net_input)
    lat = extra["latent"]
    for key in ("q_mu", "q_logvar", "p_mu", "p_logvar", "z"):
        assert lat[key].shape == (bsz, 6), key
    assert lat["bow_logits"].shape == (bsz, len(task.source_dictionary))
    assert logits.shape[:2] == sample["target"].shape
    assert not torch.equal(lat["z"], lat["q_mu"])  # sampled while training
    model.eval()
    with torch.no_grad():
        _, extra = model(**net_input)
        assert torch.equal(extra["latent"]["z"], extra["latent"]["q_mu"])
        # the inference path (what fairseq-generate calls) appends proj(prior mean)
        enc = model.encoder(net_input["src_tokens"], net_input["src_lengths"])
        assert enc["encoder_out"][0].shape[0] == src_len + 1
        assert not enc["encoder_padding_mask"][0][:, -1].any()
        p_mu = extra["latent"]["p_mu"]
        assert torch.allclose(enc["encoder_out"][0][-1], model.encoder.latent_proj(p_mu))


def test_autoencoder_mode_and_encoder_posterior(corpus):
    _, _, ae, sample = vae_setup(corpus, "--latent-mode", "autoencoder")
    assert ae.posterior_latent is None and ae.bow_side == "target"
    _, extra = ae(**sample["net_input"])
    assert extra["latent"]["p_mu"] is None and extra["latent"]["p_logvar"] is None
    _, _, cvae, sample = vae_setup(corpus, "--latent-posterior-input", "encoder", "--latent-bow", "none")
    _, extra = cvae(**sample["net_input"])
    assert cvae.bow_proj is None and "bow_logits" not in extra["latent"]
    assert extra["latent"]["q_mu"].shape == extra["latent"]["p_mu"].shape


def test_generation_uses_prior_mean(corpus):
    task, cfg, model, sample = vae_setup(corpus)
    model.eval()
    cfg.generation.beam = 2
    cfg.generation.max_len_a, cfg.generation.max_len_b = 0, 8  # untrained: keep it short
    gen = task.build_generator([model], cfg.generation)
    hyps = task.inference_step(gen, [model], sample)
    assert len(hyps) == sample["target"].size(0) and all(len(h) == 2 for h in hyps)
    assert all(h[0]["tokens"][-1].item() == task.target_dictionary.eos() for h in hyps)
    again = task.inference_step(gen, [model], sample)
    assert [h[0]["tokens"].tolist() for h in hyps] == [h[0]["tokens"].tolist() for h in again]
    # the decoder reads z: a different latent projection changes the scores
    with torch.no_grad():
        model.encoder.latent_proj.bias.add_(1.0)
    moved = task.inference_step(gen, [model], sample)
    assert [h[0]["score"] for h in hyps] != [h[0]["score"] for h in moved]


def test_loss_equals_label_smoothed_cross_entropy_with_beta_0(corpus):
    flags = ["--criterion", "bt_vae_seq2seq", "--label-smoothing", "0.1", "--kl-beta", "0",
             "--rec-weight", "0"]
    task, cfg, model, sample = vae_setup(corpus, *flags)
    ours = task.build_criterion(cfg.criterion)
    _, stock_cfg = setup_task([str(corpus.bin), "--task", "translation", "-s", SRC, "-t", TGT,
                               "--arch", "bt_transformer_vae_tiny", "--share-all-embeddings",
                               "--criterion", "label_smoothed_cross_entropy",
                               "--label-smoothing", "0.1"])
    stock = task.build_criterion(stock_cfg.criterion)
    assert type(stock).__name__ == "LabelSmoothedCrossEntropyCriterion"
    model.train()
    net_output = model(**sample["net_input"])  # one output, sampled z, dropout on
    loss, _, log = ours.compute_vae_loss(model, net_output, sample)
    ref, ref_nll = stock.compute_loss(model, net_output, sample)
    assert torch.equal(loss, ref) and torch.equal(log["nll_loss"], ref_nll)
    assert log["kl"] > 0  # the KL is there, it just weighs nothing
    model.eval()
    with torch.no_grad():
        a = ours(model, sample)
        b = stock(model, sample)
    assert torch.equal(a[0], b[0]) and a[1] == b[1]


def test_loss_terms_beta_schedule_and_logging(corpus):
    flags = ["--criterion", "bt_vae_seq2seq", "--label-smoothing", "0.1", "--kl-beta", "2",
             "--kl-schedule", "linear", "--kl-warmup-updates", "10", "--rec-weight", "0.5",
             "--kl-free-bits", "0.0"]
    task, cfg, model, sample = vae_setup(corpus, *flags)
    crit = task.build_criterion(cfg.criterion)
    model.set_num_updates(5)  # as fairseq's train_step does: beta = 2 * 5/10
    model.eval()
    with torch.no_grad():
        net_output = model(**sample["net_input"])
        loss, _, log = crit.compute_vae_loss(model, net_output, sample)
        ce, _ = crit.compute_loss(model, net_output, sample)
    assert log["beta"] == 1.0
    assert loss.item() == pytest.approx((ce + 1.0 * log["kl"] + 0.5 * log["rec"]).item(), rel=1e-6)
    assert log["rec_tokens"] > 0 and log["nsentences_latent"] == sample["target"].size(0)
    with metrics.aggregate() as agg:
        type(crit).reduce_metrics([log, log])
    vals = agg.get_smoothed_values()
    for key in ("loss", "ce", "kl", "kl_fb", "rec", "beta", "nll_loss"):
        assert key in vals, key
    assert vals["beta"] == 1.0
    assert vals["kl"] == pytest.approx(log["kl"].item() / sample["target"].size(0), abs=1e-3)


def test_pair_weights_reach_every_term_and_the_bow_skips_tag_and_filler(corpus):
    """bt_translation with a BT tag and word blanking: the bag-of-words term of the source
    scores neither, and a batch's bt_weights weigh the KL and bag-of-words terms as the CE."""
    from fairseq_bt_plugin.criterions.bt_vae_seq2seq import bow_ignored_source_tokens
    from fairseq_bt_plugin.losses import bow_reconstruction_loss, gaussian_kl

    task, cfg = setup_task([  # the tag makes the dictionaries differ: no shared embeddings
        str(corpus.bin), "--task", "bt_translation", "-s", corpus.src, "-t", corpus.tgt,
        "--bt-tag", "<BT>", "--bt-noise-word-blank", "0.1", "--arch", "bt_transformer_vae_tiny",
        "--criterion", "bt_vae_seq2seq", "--label-smoothing", "0.1", "--kl-beta", "1",
        "--kl-schedule", "constant", "--rec-weight", "0.5"])
    torch.manual_seed(1)
    model = task.build_model(cfg.model)
    task.load_dataset("valid")
    sample = task.dataset("valid").collater([task.dataset("valid")[i] for i in range(6)])
    d = task.source_dictionary
    sample["net_input"]["src_tokens"][:, -2] = d.index("<BT>")  # one tag per (left-padded) source
    assert bow_ignored_source_tokens(task) == (d.pad(), d.eos(), d.index("<BT>"), d.unk())
    crit = task.build_criterion(cfg.criterion)
    weights = torch.tensor([0.25, 1.0, 0.5, 1.0, 0.75, 0.0])
    model.eval()
    with torch.no_grad():
        net_output = model(**sample["net_input"])
        _, _, plain = crit.compute_vae_loss(model, net_output, sample)
        loss, _, log = crit.compute_vae_loss(model, net_output, {**sample, "bt_weights": weights})
        lat = net_output[1]["latent"]
        kl_rows = gaussian_kl(lat["q_mu"], lat["q_logvar"], lat["p_mu"], lat["p_logvar"]).sum(1)
        rec, _ = bow_reconstruction_loss(lat["bow_logits"], sample["net_input"]["src_tokens"],
                                         bow_ignored_source_tokens(task), weights)
    assert log["kl"].item() == pytest.approx((weights * kl_rows).sum().item(), rel=1e-5)
    assert plain["kl"].item() == pytest.approx(kl_rows.sum().item(), rel=1e-5)
    assert log["rec"].item() == pytest.approx(rec.item(), rel=1e-6)
    src = sample["net_input"]["src_tokens"]
    words = src.ne(d.pad()) & src.ne(d.eos()) & src.ne(d.unk())  # unk: the filler
    assert log["rec_tokens"] == int(words.sum()) - 6  # the tags are not scored
    assert loss.item() == pytest.approx((log["ce_loss"] + log["kl"] + 0.5 * log["rec"]).item(),
                                        rel=1e-6)
