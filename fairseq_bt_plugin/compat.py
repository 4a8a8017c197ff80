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

Checkpoint copies that a kill cannot truncate
---------------------------------------------
fairseq writes each checkpoint once (to a temporary name, then renamed) and then *copies* it
to its other names: ``checkpoint_last.pt`` (and ``checkpoint_best.pt``) after every
``--save-interval-updates`` or epoch checkpoint. That copy writes the destination in place,
so a process killed or out of disk space during it leaves a truncated ``checkpoint_last.pt``,
and the next run, which resumes from it, fails. We copy to a temporary name and rename, as
fairseq does for the first file: ``checkpoint_last.pt`` is always the previous or the new
checkpoint, whole.

Distributed training on CPU
---------------------------
Without GPUs, fairseq 0.12 cannot train distributed. Under ``torchrun`` it trains one
independent copy per process (``--distributed-world-size`` defaults to the number of GPUs,
0 -> 1, so the launch is ignored) or, with ``--distributed-world-size N``, crashes in
``rank % torch.cuda.device_count()``; without a launcher, ``--distributed-world-size N``
fails its assertion ``world size is N but have 0 available devices``, and its own spawn path
(``call_main``) would start ``min(torch.cuda.device_count(), N)`` = 0 workers. Only when no
GPU is visible, we configure fairseq's own distributed trainer:

* a ``torchrun`` launch (``WORLD_SIZE`` > 1): env:// rendezvous from its environment; a
  ``--distributed-world-size`` that disagrees with the launch is refused with a clear message;
* ``--distributed-world-size N`` with no launcher (and no SLURM job): fairseq's single-node
  spawn path, ``tcp://localhost:PORT`` (``--distributed-port`` or a free port), with
  ``--distributed-num-procs`` = N CPU workers started by ``torch.multiprocessing.spawn``;
  ``call_main`` spawns ``--distributed-num-procs`` workers instead of one per GPU, also with
  an explicit ``--distributed-init-method``;

both with the gloo backend and fairseq's ``legacy_ddp`` gradient all-reduce (PyTorch's DDP
wrapper is given ``device_ids`` by fairseq, which it refuses for CPU modules). fairseq's
``all_gather_list`` (used to sync logging outputs that cannot be summed) allocates CUDA
buffers: on CPU it gets CPU ones. Spawned workers load the plugin as fairseq's ``main`` does
(``import_user_module``); they start with the parent's ``sys.path``, so a ``--user-dir``
folder that is no installed package loads in them too (tested, see upstream #4875).
"""
import functools
import os
import shutil
import socket
import sys

import numpy as np
import torch
from omegaconf import open_dict

from .atomic import atomic_open

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


def patch_checkpoint_copy() -> None:
    """Make fairseq's copies of a saved checkpoint (to checkpoint_last.pt, ...) atomic for
    local files (idempotent)."""
    from fairseq.file_io import PathManager

    if getattr(PathManager.copy, "_fairseq_bt_patched", False):
        return
    original = PathManager.copy

    @functools.wraps(original)
    def copy(src_path: str, dst_path: str, overwrite: bool = False) -> bool:
        if "://" in dst_path or (not overwrite and os.path.exists(dst_path)):
            return original(src_path, dst_path, overwrite)
        with open(src_path, "rb") as src, atomic_open(dst_path, "wb") as dst:
            shutil.copyfileobj(src, dst)
        return True

    copy._fairseq_bt_patched = True
    PathManager.copy = staticmethod(copy)


def _launched_world_size() -> int:
    keys = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK")
    return int(os.environ["WORLD_SIZE"]) if all(k in os.environ for k in keys) else 0


def _use_cpu_backends(cfg) -> None:
    if cfg.distributed_backend == "nccl":
        cfg.distributed_backend = "gloo"
    if cfg.ddp_backend in ("pytorch_ddp", "c10d"):
        cfg.ddp_backend = "legacy_ddp"


def free_port() -> int:
    """A TCP port on localhost that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


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
    _use_cpu_backends(cfg)
    return True


def configure_cpu_spawn(cfg) -> bool:
    """``--distributed-world-size N`` without GPUs, launcher or SLURM job: fairseq's
    single-node spawn path with N CPU workers. Returns True when it applied."""
    if (cfg.distributed_world_size <= 1 or torch.cuda.device_count() > 0
            or cfg.distributed_init_method is not None or cfg.distributed_no_spawn
            or _launched_world_size() or "SLURM_JOB_NODELIST" in os.environ):
        return False
    port = cfg.distributed_port if cfg.distributed_port > 0 else free_port()
    cfg.distributed_init_method = f"tcp://localhost:{port}"
    with open_dict(cfg):
        cfg.distributed_num_procs = cfg.distributed_world_size
    return True


def patch_cpu_distributed() -> None:
    """Make ``torchrun ... fairseq-train --cpu`` and ``fairseq-train --cpu
    --distributed-world-size N`` train one model across processes (idempotent)."""
    from fairseq.distributed import utils as dist_utils

    if getattr(dist_utils.infer_init_method, "_fairseq_bt_patched", False):
        return
    original_infer, original_call_main = dist_utils.infer_init_method, dist_utils.call_main

    @functools.wraps(original_infer)
    def infer_init_method(cfg, force_distributed=False):
        if not (configure_cpu_launch(cfg) or configure_cpu_spawn(cfg)):
            original_infer(cfg, force_distributed)

    @functools.wraps(original_call_main)
    def call_main(cfg, main, **kwargs):
        dt = cfg.distributed_training
        if dt.distributed_init_method is None:
            infer_init_method(dt)
        if (torch.cuda.device_count() > 0 or cfg.common.tpu or dt.distributed_no_spawn
                or dt.distributed_init_method is None):
            return original_call_main(cfg, main, **kwargs)
        # fairseq's spawn branch, with one worker per --distributed-num-procs, not per GPU
        _use_cpu_backends(dt)
        kwargs["start_rank"] = dt.distributed_rank
        dt.distributed_rank = None  # assigned in each worker: start_rank + worker index
        torch.multiprocessing.spawn(fn=dist_utils.distributed_main, args=(main, cfg, kwargs),
                                    nprocs=dt.distributed_num_procs, join=True)

    infer_init_method._fairseq_bt_patched = True
    dist_utils.infer_init_method = infer_init_method
    dist_utils.call_main = call_main


def patch_cpu_all_gather_list() -> None:
    """fairseq's ``all_gather_list`` (how the trainer syncs logging outputs that cannot be
    summed, e.g. ``bt_vae_seq2seq``'s beta) allocates ``torch.cuda.ByteTensor`` buffers: on CPU
    give it CPU buffers instead (idempotent)."""
    from fairseq.distributed import utils as dist_utils

    if getattr(dist_utils.all_gather_list, "_fairseq_bt_patched", False):
        return
    original = dist_utils.all_gather_list

    @functools.wraps(original)
    def all_gather_list(data, group=None, max_size=16384):
        if not torch.cuda.is_available():
            # the original reads its buffers from the module's ``all_gather_list``, which is
            # now this function, and allocates CUDA ones only when these are missing or small
            group = group if group is not None else dist_utils.get_global_group()
            size = max_size * dist_utils.get_world_size(group=group)
            if getattr(all_gather_list, "_buffer", torch.empty(0)).numel() < size:
                all_gather_list._buffer = torch.zeros(size, dtype=torch.uint8)
                all_gather_list._cpu_buffer = torch.zeros(max_size, dtype=torch.uint8)
        return original(data, group=group, max_size=max_size)

    all_gather_list._fairseq_bt_patched = True
    dist_utils.all_gather_list = all_gather_list


def apply_all() -> None:
    patch_torch_load()
    patch_batch_by_size()
    patch_checkpoint_copy()
    patch_cpu_distributed()
    patch_cpu_all_gather_list()
