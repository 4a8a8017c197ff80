"""GPU paths: half-precision training with the plugin's task and with freezing, generation in
half precision, CTranslate2 on the GPU. Skipped without a CUDA device (CI has none); run on
a GPU machine with ``python -m pytest -q tests/integration/test_gpu.py`` (docs/testing.md,
docs/gpu_check.md)."""
import ctypes
import json
import re
import subprocess
import sys

import pytest
import torch

from helpers import PLUGIN_DIR, TINY_MODEL, run
from helpers.generate import FAST, make_input, outputs
from helpers.transfer import check_frozen_until, fairseq_train, stock_child

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
ON_GPU = [a for a in TINY_MODEL if a != "--cpu"]


def loadable(library: str) -> bool:
    try:
        ctypes.CDLL(library)
        return True
    except OSError:
        return False


def without_cpu(args):
    return [a for a in args if a != "--cpu"]


@pytest.mark.parametrize("precision", ["--fp16", "--amp"])
def test_freezing_is_exact_in_half_precision_gpu_training(corpus, tmp_path, precision):
    """fairseq's FP16Optimizer (half model, fp32 master copy) and AMPOptimizer (fp32 model,
    autocast) on the GPU, with weight decay: the frozen tensors and rows stay bit-identical (at
    the model's precision) for 2 updates, then train. (fairseq 0.12's --bf16 means a TPU.)"""
    child = stock_child(corpus, tmp_path)
    save = tmp_path / "gpu"
    out = fairseq_train(child.bin, save, without_cpu(child.train) + [
        "--finetune-from-model", str(child.init), "--weight-decay", "0.1", precision,
        "--fp16-init-scale", "4"], 3, save_every=1)
    assert "overflow" not in out.stdout + out.stderr  # every update counted as a step
    init = torch.load(child.init, weights_only=False)
    frozen = init["extra_state"]["bt_init"]["frozen"]
    states = {}
    for update in (1, 2, 3):
        paths = list(save.glob(f"checkpoint_*_{update}.pt")) or [save / "checkpoint_last.pt"]
        states[update] = torch.load(paths[0], weights_only=False)["model"]
    # the model trains in half precision (fairseq saves it cast back to fp32): the initial
    # values as the half-precision model holds them
    dtype = torch.float16 if precision == "--fp16" else torch.float32
    half = {k: v.to(dtype).float() if v.is_floating_point() else v
            for k, v in init["model"].items()}
    check_frozen_until(half, frozen, states, until=2)


def test_bt_translation_trains_in_fp16_on_gpu_with_every_source_logged(corpus, tmp_path):
    """The plugin's task and criterion under fairseq's fp16 trainer: finite per-source losses,
    and validation sees every valid sentence."""
    out = run([sys.executable, "-m", "fairseq_cli.train", str(corpus.bin), "--user-dir",
               PLUGIN_DIR, "-s", corpus.src, "-t", corpus.tgt, "--task", "bt_translation",
               "--bt-data", str(corpus.syn), "--bt-tag", "<BT>", "--bt-weighted",
               "--criterion", "bt_label_smoothed_cross_entropy", "--label-smoothing", "0.1",
               "--save-dir", str(tmp_path / "ckpt"), "--max-update", "12", "--fp16",
               "--log-interval", "4", "--no-epoch-checkpoints"] + ON_GPU)
    log = out.stdout + out.stderr
    losses = [float(x) for x in re.findall(r"loss_(?:bitext|synth)=([\d.]+|nan|inf)", log)]
    assert losses and all(0 < x < 100 for x in losses), losses
    assert re.search(r"valid on 'valid' subset \| .*loss [\d.]+", log), log[-2000:]
    assert (tmp_path / "ckpt" / "checkpoint_last.pt").exists()


@pytest.mark.parametrize("backend", ["fairseq", "ctranslate2"])
def test_generation_on_gpu_writes_every_line(corpus, reverse_model, tmp_path, backend):
    """fairseq-bt-backtranslate on the GPU in half precision, a batch size that is no multiple of
    8 (fairseq-generate's #5036 trap): 37 lines in, 37 pairs out."""
    inp = make_input(corpus, tmp_path / "mono.txt", 37)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "fairseq_bt_plugin.generate", "--input", str(inp), "--path",
           str(reverse_model), "--data", str(corpus.bin), "--spm-model", str(corpus.spm),
           "-s", corpus.tgt, "-t", corpus.src, "--output-dir", str(out), "--fp16",
           "--batch-size", "5", "--backend", backend] + FAST
    if backend == "ctranslate2":
        ct2 = pytest.importorskip("ctranslate2")
        if ct2.get_cuda_device_count() == 0 or not loadable("libcublas.so.12"):
            # what a user without CUDA 12's cuBLAS gets: one line, no output
            p = subprocess.run(cmd, capture_output=True, text=True)
            assert p.returncode != 0
            assert p.stderr.strip().splitlines()[-1].startswith(
                "fairseq-bt-backtranslate: error: --backend ctranslate2 on the GPU:"), p.stderr
            pytest.skip("ctranslate2 4.x on a GPU needs CUDA 12's libcublas.so.12 (the one-line "
                        "error without it checked)")
    run(cmd)
    summary = json.loads((out / "bt.summary.json").read_text())
    assert summary["input_lines"] == summary["translated"] == 37
    syn, orig, _, _ = outputs(out)
    assert len(syn) == len(orig) == summary["output_pairs"]
    assert summary["output_pairs"] + sum(summary["filtered"].values()) == 37
