"""Helpers for the VAE / denoising / transfer tests (shared by several test files).

Built once per test session inside the ``corpus`` fixture's directory, so files that both
need them do not redo the work.
"""
import sys
from pathlib import Path
from types import SimpleNamespace

from conftest import PLUGIN_DIR, SRC, TINY_MODEL, run

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
