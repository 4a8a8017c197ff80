"""Small, targeted fixes to fairseq 0.12 / torch >= 2.6 applied when the plugin is imported.

Checkpoint loading
------------------
torch >= 2.6 defaults ``torch.load(..., weights_only=True)``. fairseq checkpoints pickle
``argparse.Namespace`` / OmegaConf configs and optimizer history, so *every* fairseq checkpoint
load then fails. We wrap ``torch.load`` so that a call **made from fairseq's own modules or from
this plugin** that does not choose ``weights_only`` itself gets ``weights_only=False`` again:
the behaviour of torch < 2.6 that fairseq was written for. Calls from any other code keep
torch's default, and an explicit ``weights_only=`` is always respected. It is as safe as
fairseq has always been: fairseq only unpickles checkpoint files the user names on the command
line (``--restore-file``, ``--path``, ``--finetune-from-model``); never load untrusted
checkpoints with fairseq.

Keeping every sentence when batching
------------------------------------
``fairseq.data.data_utils.batch_by_size`` ends with
``if bsz_mult > 1 and len(b[-1]) % bsz_mult != 0: b = b[:-1]``: with the default
``--required-batch-size-multiple 8`` the last, short batch is thrown away, with ``--batch-size``
and with ``--max-tokens`` alike. ``fairseq-generate`` then silently translates up to 7 sentences
fewer than it was given (upstream issues #5036, #5351), validation skips them, and every
training epoch loses them. We keep that remainder as a final batch of its own; all other
batches are unchanged.

Distributed training on CPU
---------------------------
Under ``torchrun`` without GPUs, fairseq 0.12 either trains one independent copy per process
(``--distributed-world-size`` defaults to the number of GPUs, 0 -> 1, so the launch is
ignored) or, with ``--distributed-world-size N``, crashes in
``rank % torch.cuda.device_count()``. When the torchrun environment (``WORLD_SIZE`` > 1) is
present and there is no GPU, we configure fairseq's own distributed trainer from it: env://
rendezvous, the gloo backend, and fairseq's ``legacy_ddp`` gradient all-reduce (PyTorch's
DDP wrapper is given ``device_ids`` by fairseq, which it refuses for CPU modules). A
``--distributed-world-size`` that disagrees with the launch is refused with a clear message.
"""
import functools
import os
import sys

import numpy as np
import torch

_TRUSTED_CALLERS = ("fairseq", "fairseq_cli", "fairseq_bt_plugin")


def _caller_is_trusted(depth: int = 2) -> bool:
    name = sys._getframe(depth).f_globals.get("__name__", "")
    return name.split(".", 1)[0] in _TRUSTED_CALLERS


def patch_torch_load() -> None:
    """Make fairseq's checkpoint loads work on torch >= 2.6 (idempotent)."""
    if getattr(torch.load, "_fairseq_bt_patched", False):
        return
    original = torch.load

    @functools.wraps(original)
    def load(*args, **kwargs):
        if "weights_only" not in kwargs and _caller_is_trusted():
            kwargs["weights_only"] = False
        return original(*args, **kwargs)

    load._fairseq_bt_patched = True
    load._fairseq_bt_original = original
    torch.load = load


def patch_batch_by_size() -> None:
    """Keep the last short batch that fairseq's ``batch_by_size`` drops (idempotent)."""
    from fairseq.data import data_utils

    if getattr(data_utils.batch_by_size, "_fairseq_bt_patched", False):
        return
    original = data_utils.batch_by_size

    @functools.wraps(original)
    def batch_by_size(indices, *args, **kwargs):
        if not isinstance(indices, np.ndarray):
            indices = np.fromiter(indices, dtype=np.int64, count=-1)
        batches = original(indices, *args, **kwargs)
        covered = sum(len(b) for b in batches)
        if covered < len(indices) and kwargs.get("fixed_shapes") is None:
            batches = list(batches) + [indices[covered:]]
        return batches

    batch_by_size._fairseq_bt_patched = True
    data_utils.batch_by_size = batch_by_size


def _launched_world_size() -> int:
    keys = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK")
    return int(os.environ["WORLD_SIZE"]) if all(k in os.environ for k in keys) else 0


def configure_cpu_launch(cfg) -> bool:
    """Set fairseq's distributed options from a torchrun launch on a machine without GPUs.
    Returns True when it did (the caller then skips fairseq's own inference)."""
    world = _launched_world_size()
    if world <= 1 or torch.cuda.device_count() > 0 or cfg.distributed_init_method is not None:
        return False
    if cfg.distributed_world_size not in (1, world):
        from .errors import BTUserError

        raise BTUserError(
            f"torchrun started {world} processes (WORLD_SIZE={world}) but "
            f"--distributed-world-size is {cfg.distributed_world_size}: drop the flag or make "
            "them agree (otherwise the processes would not train one model together)")
    cfg.distributed_init_method = "env://"
    cfg.distributed_world_size = world
    cfg.distributed_rank = int(os.environ["RANK"])
    cfg.device_id = int(os.environ.get("LOCAL_RANK", 0))
    cfg.distributed_no_spawn = True
    if cfg.distributed_backend == "nccl":
        cfg.distributed_backend = "gloo"
    if cfg.ddp_backend in ("pytorch_ddp", "c10d"):
        cfg.ddp_backend = "legacy_ddp"
    return True


def patch_cpu_distributed() -> None:
    """Make ``torchrun ... fairseq-train --cpu`` train one model across processes."""
    from fairseq.distributed import utils as dist_utils

    if getattr(dist_utils.infer_init_method, "_fairseq_bt_patched", False):
        return
    original = dist_utils.infer_init_method

    @functools.wraps(original)
    def infer_init_method(cfg, force_distributed=False):
        if not configure_cpu_launch(cfg):
            original(cfg, force_distributed)

    infer_init_method._fairseq_bt_patched = True
    dist_utils.infer_init_method = infer_init_method


def apply_all() -> None:
    patch_torch_load()
    patch_batch_by_size()
    patch_cpu_distributed()
