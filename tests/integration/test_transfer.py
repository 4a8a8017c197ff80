"""Initialising from a parent: vocabulary remapping, parts, errors, freezing, the offline
command, and the whole pretrain -> initialise -> fine-tune -> generate pipeline on CPU."""
import os
import subprocess
import sys
from argparse import Namespace
from types import SimpleNamespace

import pytest
import torch
from fairseq import checkpoint_utils
from fairseq.data import Dictionary
from fairseq.models import ARCH_MODEL_REGISTRY, ARCH_CONFIG_REGISTRY

import fairseq_bt_plugin  # noqa: F401
from fairseq_bt_plugin.errors import BTUserError
from fairseq_bt_plugin.transfer import (
    TransferConfig,
    coverage,
    freezing_of,
    init_from_parent,
)

from helpers import PLUGIN_DIR, SRC, TGT, run
from helpers.transfer import VAE_TINY, check_frozen_until, fairseq_train, stock_child, vae_parent

PARENT_TOKENS = ["\u2581a", "\u2581b", "c", "d", "e", "f"]
CHILD_TOKENS = ["e", "\u2581b", "x", "\u2581a", "y", "c"]  # 4 shared, 2 new, another order


def make_dict(tokens):
    d = Dictionary()
    for i, t in enumerate(tokens):
        d.add_symbol(t, n=100 - i)
    return d


def build(dictionary, arch="bt_transformer_tiny", **overrides):
    args = Namespace(arch=arch, **overrides)
    ARCH_CONFIG_REGISTRY[arch](args)
    task = SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary)
    return ARCH_MODEL_REGISTRY[arch].build_model(args, task)


@pytest.fixture
def parent(tmp_path):
    """A tiny parent checkpoint (random weights) and its dictionaries, on disk."""
    torch.manual_seed(0)
    d = make_dict(PARENT_TOKENS)
    for lang in ("de", "en"):
        d.save(str(tmp_path / f"dict.{lang}.txt"))
    model = build(d)
    path = tmp_path / "parent.pt"
    torch.save({"args": None, "model": model.state_dict(),
                "cfg": {"task": {"_name": "translation", "data": str(tmp_path),
                                 "source_lang": "de", "target_lang": "en"},
                        "model": {"_name": "bt_transformer_tiny"}},
                "optimizer_history": [{"criterion_name": "x", "optimizer_name": "x",
                                       "lr_scheduler_state": {}, "num_updates": 0}],
                "extra_state": {"train_iterator": {"epoch": 1}}}, path)
    return SimpleNamespace(path=str(path), dict=d, state=model.state_dict())


def transfer_cfg(path, parts="all", freeze=0, dicts=""):
    return TransferConfig(init_from=path, init_parts=parts, init_freeze_updates=freeze,
                          init_parent_dicts=dicts)


def test_remap_copies_shared_rows_bit_identically(parent):
    torch.manual_seed(1)
    cd = make_dict(CHILD_TOKENS)
    child = build(cd)
    before = {k: v.clone() for k, v in child.state_dict().items()}
    result = init_from_parent(child, transfer_cfg(parent.path), cd, cd)
    after = child.state_dict()
    for name in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight",
                 "decoder.output_projection.weight"):
        for i, sym in enumerate(cd.symbols):
            if sym in parent.dict.indices:
                assert torch.equal(after[name][i], parent.state[name][parent.dict.index(sym)]), (name, sym)
            else:
                assert torch.equal(after[name][i], before[name][i]), (name, sym)  # own init kept
    assert torch.equal(after["encoder.layers.0.fc1.weight"], parent.state["encoder.layers.0.fc1.weight"])
    assert result.coverage == {"source": 4 / 6, "target": 4 / 6} == {
        "source": coverage(cd, parent.dict), "target": coverage(cd, parent.dict)}
    assert result.frozen == {} and "decoder.layers.0.fc1.weight" in result.loaded


def test_only_the_chosen_parts_are_loaded(parent):
    cd = make_dict(CHILD_TOKENS)
    child = build(cd)
    before = {k: v.clone() for k, v in child.state_dict().items()}
    init_from_parent(child, transfer_cfg(parent.path, "encoder,output_projection"), cd, cd)
    after = child.state_dict()
    assert torch.equal(after["encoder.layers.0.fc1.weight"], parent.state["encoder.layers.0.fc1.weight"])
    assert torch.equal(after["decoder.layers.0.fc1.weight"], before["decoder.layers.0.fc1.weight"])
    assert torch.equal(after["encoder.embed_tokens.weight"], before["encoder.embed_tokens.weight"])
    i = cd.index("c")
    assert torch.equal(after["decoder.output_projection.weight"][i],
                       parent.state["decoder.output_projection.weight"][parent.dict.index("c")])


def test_vae_child_from_plain_parent(parent):
    cd = make_dict(CHILD_TOKENS)
    child = build(cd, arch="bt_transformer_vae_tiny")
    lat = child.encoder.latent_proj.weight.clone()
    result = init_from_parent(child, transfer_cfg(parent.path), cd, cd)  # all: latent skipped
    assert torch.equal(child.encoder.latent_proj.weight, lat)
    assert not any(n.startswith(("encoder.latent", "bow_proj")) for n in result.loaded)
    with pytest.raises(BTUserError, match="none of this model's latent parameters"):
        init_from_parent(child, transfer_cfg(parent.path, "latent"), cd, cd)


def test_mismatches_are_errors_naming_the_parameter(parent):
    cd = make_dict(CHILD_TOKENS)
    with pytest.raises(BTUserError, match=r"encoder.layers.0.fc1.weight has shape \(64, 32\) in the parent but \(48, 32\)"):
        init_from_parent(build(cd, encoder_ffn_embed_dim=48), transfer_cfg(parent.path), cd, cd)
    with pytest.raises(BTUserError, match="parent has no parameter decoder.layers.1"):
        init_from_parent(build(cd, decoder_layers=2), transfer_cfg(parent.path), cd, cd)
    with pytest.raises(BTUserError, match=r"rows of shape \(32,\) in the parent but \(16,\)"):
        init_from_parent(build(cd, encoder_embed_dim=16), transfer_cfg(parent.path, "embeddings"), cd, cd)
    with pytest.raises(BTUserError, match="unknown part.*pooler.*choose from encoder, decoder, "
                       "embeddings, output_projection, latent"):
        init_from_parent(build(cd), transfer_cfg(parent.path, "encoder,pooler"), cd, cd)
    with pytest.raises(BTUserError, match="weight has 10 rows but the parent's source dictionary has 6 entries"):
        wrong = os.path.join(os.path.dirname(parent.path), "wrong")
        os.makedirs(wrong)
        for lang in ("de", "en"):
            make_dict(PARENT_TOKENS[:2]).save(f"{wrong}/dict.{lang}.txt")
        init_from_parent(build(cd), transfer_cfg(parent.path, dicts=wrong), cd, cd)
    with pytest.raises(BTUserError, match="checkpoint not found"):
        init_from_parent(build(cd), transfer_cfg(parent.path + ".missing"), cd, cd)


def test_parent_with_more_layers_is_an_error(parent, tmp_path):
    d = parent.dict
    big = build(d, encoder_layers=2)
    path = tmp_path / "big.pt"
    state = torch.load(parent.path, weights_only=False)
    state["model"] = big.state_dict()
    torch.save(state, path)
    with pytest.raises(BTUserError, match="parent parameter encoder.layers.1.* has no counterpart"):
        init_from_parent(build(d), transfer_cfg(str(path)), d, d)


def test_frozen_gradients_are_dropped_only_for_n_updates(parent):
    cd = make_dict(CHILD_TOKENS)
    child = build(cd, arch="bt_transformer_vae_tiny")
    result = init_from_parent(child, transfer_cfg(parent.path, freeze=3), cd, cd)
    freezing = freezing_of(result)
    for p in child.parameters():
        p.grad = torch.ones_like(p)
    assert freezing.drop_gradients(child, update_num=2)
    assert child.encoder.layers[0].fc1.weight.grad is None
    assert child.encoder.latent_proj.weight.grad is not None  # not loaded: trains
    # of a vocabulary-sized parameter only the rows copied from the parent
    new = [i for i, s in enumerate(cd.symbols) if s not in parent.dict.indices]
    copied = [i for i, s in enumerate(cd.symbols) if s in parent.dict.indices]
    assert result.frozen["encoder.embed_tokens.weight"] == copied
    grad = child.encoder.embed_tokens.weight.grad
    assert (grad[copied] == 0).all() and (grad[new] == 1).all()
    child.encoder.layers[0].fc1.weight.grad = torch.ones(64, 32)
    assert not freezing.drop_gradients(child, update_num=3)
    assert child.encoder.layers[0].fc1.weight.grad is not None


def test_end_to_end_pretrain_vae_initialise_freeze_finetune_generate(corpus, tmp_path):
    """bt_denoising VAE (real fairseq-train) -> bt_translation VAE initialised from it, frozen
    for 2 updates -> fairseq-generate."""
    parent = vae_parent(corpus)
    save = tmp_path / "child"
    out = fairseq_train(corpus.bin, save, VAE_TINY + [
        "--task", "bt_translation", "-s", SRC, "-t", TGT, "--share-all-embeddings",
        "--criterion", "bt_vae_seq2seq", "--label-smoothing", "0.1", "--kl-beta", "0.5",
        "--kl-schedule", "cyclical", "--kl-cycle-updates", "4",
        "--init-from", str(parent.checkpoint), "--init-freeze-updates", "2"], 4, save_every=1)
    assert "vocabulary coverage source 100.0%, target 100.0%; frozen for 2 updates" in out.stdout + out.stderr
    p = checkpoint_utils.load_checkpoint_to_cpu(str(parent.checkpoint))["model"]
    ck = [checkpoint_utils.load_checkpoint_to_cpu(str(save / f"checkpoint_1_{u}.pt"))["model"]
          for u in (1, 2, 3)]
    for name in ("encoder.layers.0.fc1.weight", "decoder.layers.0.self_attn.k_proj.weight",
                 "encoder.embed_tokens.weight", "encoder.source_latent.out.weight"):
        assert torch.equal(ck[0][name], p[name]) and torch.equal(ck[1][name], p[name]), name
        assert not torch.equal(ck[2][name], p[name]), name  # trains from update 3 on
    assert "posterior_latent.out.weight" not in p  # new in the child: trains at once
    assert not torch.equal(ck[0]["posterior_latent.out.weight"], ck[1]["posterior_latent.out.weight"])
    gen = run([sys.executable, "-m", "fairseq_cli.generate", str(corpus.bin), "--user-dir", PLUGIN_DIR,
               "--path", str(save / "checkpoint_last.pt"), "--task", "translation", "-s", SRC,
               "-t", TGT, "--gen-subset", "test", "--beam", "2", "--max-len-b", "10",
               "--batch-size", "25", "--cpu"])
    assert gen.stdout.count("\nH-") == 50 and "BLEU" in gen.stdout


def test_init_checkpoint_command_for_stock_translation(corpus, tmp_path):
    """A plain transformer with its own dictionary (built from other sentences: other order,
    other tokens), initialised offline from the bt_denoising VAE parent with its encoder frozen
    for 2 updates, then fine-tuned by stock fairseq-train --task translation
    --finetune-from-model (stopped after 1 update and resumed: the freezing goes on)."""
    child = stock_child(corpus, tmp_path)
    parent, child_bin, init, cmd = child.parent, child.bin, child.init, child.cmd
    state = torch.load(init, weights_only=False)
    pstate = checkpoint_utils.load_checkpoint_to_cpu(str(parent.checkpoint))["model"]
    cd = Dictionary.load(str(child_bin / f"dict.{SRC}.txt"))
    pd = Dictionary.load(str(parent.data / f"dict.{SRC}.txt"))
    shared = [(i, pd.index(s)) for i, s in enumerate(cd.symbols) if s in pd.indices]
    assert len(shared) > 100 and sum(i != j for i, j in shared) > 50  # really remapped
    emb, pemb = state["model"]["encoder.embed_tokens.weight"], pstate["encoder.embed_tokens.weight"]
    assert all(torch.equal(emb[i], pemb[j]) for i, j in shared)
    record = state["extra_state"]["bt_init"]
    assert record["coverage"]["source"] == coverage(cd, pd) > 0.9
    assert record["freeze_updates"] == 2 and "encoder.layers.0.fc1.weight" in record["frozen"]
    assert not any(k.startswith("decoder.layers") for k in record["frozen"])
    assert not any(k.startswith(("bow_proj", "encoder.latent")) for k in state["model"])
    ft = tmp_path / "ft"
    args = child.train + ["--finetune-from-model", str(init)]
    out = fairseq_train(child_bin, ft, args, 1, save_every=1)
    assert "stay frozen until update 2" in out.stdout + out.stderr
    fairseq_train(child_bin, ft, args, 3, save_every=1)  # resumes from checkpoint_last.pt
    ck = [checkpoint_utils.load_checkpoint_to_cpu(str(ft / f"checkpoint_1_{u}.pt"))["model"]
          for u in (1, 2, 3)]
    # the copied rows of the tied embeddings stay (after the resume too); the new rows train
    check_frozen_until(state["model"], record["frozen"], dict(zip((1, 2, 3), ck)), until=2)
    assert "encoder.layers.0.fc1.weight" in record["frozen"]
    name = "decoder.layers.0.fc1.weight"  # not loaded: trains at once
    assert not torch.equal(ck[0][name], state["model"][name])
    bad = subprocess.run(cmd[:-1] + ["--encoder-ffn-embed-dim", "48"], capture_output=True, text=True)
    assert bad.returncode == 2 and "encoder.layers.0.fc1.weight has shape" in bad.stderr
