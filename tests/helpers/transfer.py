"""Helpers for the VAE / denoising / transfer tests (shared by several test files).

Built once per test session inside the ``corpus`` fixture's directory, so files that both
need them do not redo the work.
"""
import sys
from pathlib import Path
from types import SimpleNamespace

import torch

from helpers import PLUGIN_DIR, SRC, TINY_MODEL, run

VAE_TINY = ["--arch", "bt_transformer_vae_tiny"] + TINY_MODEL[2:]


def mono_bin(corpus) -> Path:
    """The SRC side of the 300 "syn" sentences, binarized with the bitext dictionary as
    monolingual data for ``bt_denoising`` (``train.SRC-None.SRC``; valid = the bitext valid)."""
    dest = corpus.root / "mono_bin"
    if (dest / f"dict.{SRC}.txt").exists():
        return dest
    tmp = corpus.root / "mono_bin.tmp"
    run([sys.executable, "-m", "fairseq_cli.preprocess", "--only-source", "-s", SRC,
         "--srcdict", str(corpus.bin / f"dict.{SRC}.txt"), "--trainpref", str(corpus.tok / "syn"),
         "--validpref", str(corpus.tok / "valid"), "--destdir", str(tmp), "--workers", "1"])
    tmp.rename(dest)
    return dest


def fairseq_train(data, save_dir: Path, args, updates: int, save_every: int = 0):
    """``fairseq-train`` (real command, plugin loaded) for a few updates on CPU."""
    every = save_every or updates
    cmd = [sys.executable, "-m", "fairseq_cli.train", str(data), "--user-dir", PLUGIN_DIR,
           "--save-dir", str(save_dir), "--max-update", str(updates),
           "--save-interval-updates", str(every), "--no-epoch-checkpoints",
           "--disable-validation", "--num-workers", "0"] + list(args)
    return run(cmd)


def vae_parent(corpus, updates: int = 8) -> SimpleNamespace:
    """A tiny autoencoder-mode VAE pretrained with bt_denoising (cached for the session)."""
    save = corpus.root / "vae_parent"
    ckpt = save / "checkpoint_last.pt"
    if not ckpt.exists():
        fairseq_train(mono_bin(corpus), save, VAE_TINY + [
            "--task", "bt_denoising", "--mono-langs", SRC, "--latent-mode", "autoencoder",
            "--share-all-embeddings", "--criterion", "bt_vae_seq2seq", "--kl-beta", "1",
            "--kl-schedule", "linear", "--kl-warmup-updates", "4", "--rec-weight", "0.5",
            "--label-smoothing", "0.1"], updates)
    return SimpleNamespace(checkpoint=ckpt, data=mono_bin(corpus))


def stock_child(corpus, tmp_path: Path, freeze_updates: int = 2) -> SimpleNamespace:
    """A plain transformer child for the stock ``translation`` task with its own joined
    dictionary (built from the "syn" sentences: other order, tokens the parent lacks),
    written by ``fairseq-bt-init-checkpoint`` from the :func:`vae_parent` with its encoder and
    embeddings loaded and frozen for ``freeze_updates`` updates."""
    parent = vae_parent(corpus)
    child_bin = tmp_path / "bin"
    run([sys.executable, "-m", "fairseq_cli.preprocess", "-s", corpus.src, "-t", corpus.tgt,
         "--joined-dictionary", "--trainpref", str(corpus.tok / "syn"), "--destdir",
         str(child_bin), "--workers", "1"])
    init = tmp_path / "init" / "child.pt"
    lang = ["-s", corpus.src, "-t", corpus.tgt]
    model = ["--task", "translation", *lang, "--arch", "bt_transformer_tiny",
             "--share-all-embeddings"]
    cmd = [sys.executable, "-m", "fairseq_bt_plugin.transfer.init_checkpoint", "--init-from",
           str(parent.checkpoint), "--output", str(init), "--init-parts", "encoder,embeddings",
           "--init-freeze-updates", str(freeze_updates), str(child_bin), *model]
    run(cmd)
    train = model + ["--optimizer", "adam", "--lr", "0.001", "--max-tokens", "2000", "--cpu",
                     "--seed", "1"]
    return SimpleNamespace(parent=parent, bin=child_bin, init=init, cmd=cmd, train=train)


def frozen_part(model_state, name, rows, frozen: bool = True):
    """A checkpoint's frozen tensor or rows (``frozen=False``: the other rows)."""
    value = model_state[name]
    if rows is None:
        return value
    keep = torch.zeros(len(value), dtype=torch.bool)
    keep[rows] = True
    return value[keep if frozen else ~keep]


def check_frozen_until(init_state, frozen, checkpoints, until: int):
    """``checkpoints`` ({update: model state}) keep every frozen tensor and row bit-identical
    to ``init_state`` up to update ``until`` and change each afterwards; rows not frozen of a
    partially frozen tensor (tokens new to the child) change from update 1."""
    assert any(rows is not None for rows in frozen.values())  # some rows are really new
    for update, state in sorted(checkpoints.items()):
        for name, rows in frozen.items():
            same = torch.equal(frozen_part(state, name, rows), frozen_part(init_state, name, rows))
            assert same == (update <= until), (update, name)
            if rows is not None:
                new, new0 = (frozen_part(s, name, rows, False) for s in (state, init_state))
                assert not (new == new0).all(dim=-1).any(), (update, name)  # every new row moved
