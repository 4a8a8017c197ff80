"""Every change that importing the plugin makes to fairseq 0.12 (and torch, and Python's
uncaught-exception report), in one place: :data:`PATCHES`.

``import fairseq_bt_plugin`` (which ``--user-dir`` does, and every ``fairseq-bt-*`` wrapper;
``fairseq-bt-translate`` where it reads a fairseq checkpoint: :func:`fairseq_bt_plugin.setup`)
calls :func:`apply_all`, so ``fairseq-train --user-dir "$(fairseq-bt-user-dir)"`` and
``fairseq-bt-train`` behave the same. Each entry names what it replaces and the fairseq series
it was written for (:data:`FAIRSEQ_SERIES`): with any other fairseq installed, those patches are
not applied and a :class:`FairseqVersionWarning` names them. README's "What importing the
plugin changes" mirrors the table (a test keeps the two in step).

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
fewer than it was given (fairseq#5036, fairseq#5351), validation skips them, and every
training epoch skips the same few (the last in fairseq's length order: the longest). We keep
that remainder as a final batch of its own, smaller than the multiple, which fairseq's own rule
("less than N or a multiple of N") allows and which fairseq itself makes when few long
sentences fill ``--max-tokens``; all other batches are unchanged. Everywhere (generation,
validation, fp32 training) except half-precision training (``--fp16``, ``--bf16``,
``--amp``): there the multiple is what buys tensor-core speed, so the Trainer's training
batches stay exactly fairseq's (up to N-1 sentences of each epoch skipped, as in stock
fairseq; ``--required-batch-size-multiple 1`` keeps them all).

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
import contextlib
import contextvars
import functools
import os
import shutil
import socket
import sys
import warnings
import weakref
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import numpy as np
import torch
from omegaconf import open_dict

from .atomic import atomic_open
from .errors import BTUserError, checkpoint_error, naming, user_error_message

#: the fairseq series every fairseq patch below was written (and tested) for
FAIRSEQ_SERIES = "0.12"


class FairseqVersionWarning(UserWarning):
    """The installed fairseq is not the series the plugin's patches were written for."""

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


#: False while fairseq's Trainer builds half-precision training batches (fairseq's own)
_KEEP_REMAINDER = contextvars.ContextVar("fairseq_bt_keep_remainder", default=True)


@contextlib.contextmanager
def _remainder_kept(keep: bool):
    token = _KEEP_REMAINDER.set(keep)
    try:
        yield
    finally:
        _KEEP_REMAINDER.reset(token)


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
        if (covered < len(indices) and kwargs.get("fixed_shapes") is None
                and _KEEP_REMAINDER.get()):
            batches = list(batches) + [indices[covered:]]
        return batches

    batch_by_size._fairseq_bt_patched = True
    data_utils.batch_by_size = batch_by_size


def half_precision(cfg) -> bool:
    """Whether a fairseq config trains in half precision (``--fp16``, ``--bf16``, ``--amp``;
    the memory-efficient variants set these too)."""
    return bool(cfg.common.fp16 or cfg.common.bf16 or cfg.common.amp)


def patch_train_batches() -> None:
    """Half-precision training batches stay fairseq's own: ``Trainer.get_train_iterator``
    builds them with the remainder dropped (idempotent)."""
    from fairseq.trainer import Trainer

    if getattr(Trainer.get_train_iterator, "_fairseq_bt_patched", False):
        return
    original = Trainer.get_train_iterator

    @functools.wraps(original)
    def get_train_iterator(self, *args, **kwargs):
        keep = not half_precision(self.cfg)
        with _remainder_kept(keep):
            itr = original(self, *args, **kwargs)
        sampler = itr.batch_sampler
        if callable(sampler) and not getattr(sampler, "_fairseq_bt_patched", False):
            # batches rebuilt every epoch, later (in next_epoch_itr): same rule then
            def batch_sampler(*a, **kw):
                with _remainder_kept(keep):
                    return sampler(*a, **kw)

            batch_sampler._fairseq_bt_patched = True
            itr.batch_sampler = batch_sampler
        return itr

    get_train_iterator._fairseq_bt_patched = True
    Trainer.get_train_iterator = get_train_iterator


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


def patch_checkpoint_errors() -> None:
    """fairseq's checkpoint functions (``--restore-file``, ``--finetune-from-model``,
    ``--init-from``, ``--path``, saving) raising errors that name the file: a
    :class:`~fairseq_bt_plugin.errors.BTUserError` when it cannot be unpickled or is not a
    checkpoint, instead of a traceback from torch, and an OSError naming the checkpoint when it
    cannot be written (fairseq's half-written ``.tmp`` is removed; the previous checkpoint
    stays as it was). Idempotent."""
    from fairseq import checkpoint_utils

    load, save = checkpoint_utils.load_checkpoint_to_cpu, checkpoint_utils.torch_persistent_save
    if getattr(load, "_fairseq_bt_patched", False):
        return

    @functools.wraps(load)
    def checked_load(path, *args, **kwargs):
        try:
            return load(path, *args, **kwargs)
        except OSError:
            raise  # a missing or unreadable file: reported as such
        except Exception as e:
            raise checkpoint_error(path, e) from None

    @functools.wraps(save)
    def checked_save(obj, filename, *args, **kwargs):
        try:
            with naming(filename):
                return save(obj, filename, *args, **kwargs)
        except OSError:
            if os.path.exists(filename + ".tmp"):
                os.remove(filename + ".tmp")
            raise

    checked_load._fairseq_bt_patched = True
    checkpoint_utils.load_checkpoint_to_cpu = checked_load
    checkpoint_utils.torch_persistent_save = checked_save


def patch_excepthook() -> None:
    """An uncaught user error (what :func:`fairseq_bt_plugin.errors.user_error_message` reports:
    a ``BTUserError``, an unloadable checkpoint, an output that cannot be written) ends the
    program as ``PROG: error: message`` with exit status 2, as the ``fairseq-bt-*`` wrappers
    report it; every other exception keeps Python's report (idempotent)."""
    if getattr(sys.excepthook, "_fairseq_bt_patched", False):
        return
    original = sys.excepthook

    def excepthook(exc_type, exc, tb):
        message = user_error_message(exc) if isinstance(exc, Exception) else None
        if message is None:
            return original(exc_type, exc, tb)
        prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
        print(f"{prog}: error: {message}", file=sys.stderr)
        sys.exit(2)

    excepthook._fairseq_bt_patched = True
    sys.excepthook = excepthook


def patch_background_consumer() -> None:
    """fairseq's ``BufferedIterator`` fills its buffer from a daemon ``BackgroundConsumer``
    thread. When training stops at ``--max-update`` mid-epoch, that thread is still running
    (making a batch, or waiting for room in the queue) as the interpreter shuts down, and torch
    aborts the finished process now and then: ``terminate called without an active
    exception``, exit status -6 (SIGABRT) after "done training" (measured: 3 of 36 tiny
    training runs; 0 of 16 with ``--data-buffer-size 0``). The replacement thread waits for
    room in slices and stops when asked; at exit every live one is stopped and joined
    before torch is torn down."""
    import atexit
    import queue
    import threading

    from fairseq.data import iterators

    if getattr(iterators.BackgroundConsumer, "_fairseq_bt_patched", False):
        return

    class StoppableConsumer(iterators.BackgroundConsumer):
        _fairseq_bt_patched = True

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.daemon = True
            self._stop_asked = threading.Event()
            _LIVE_CONSUMERS.add(self)

        def _put(self, item) -> bool:
            while not self._stop_asked.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def run(self):
            if self.cuda_device is not None:
                torch.cuda.set_device(self.cuda_device)
            try:
                for item in self._source:
                    if not self._put(item):
                        return
                    self.count += 1
                    if self._max_len is not None and self.count >= self._max_len:
                        break
                self._put(iterators._sentinel)
            except Exception as e:  # noqa: BLE001  (handed to the consumer, as fairseq does)
                self._put(e)

    iterators.BackgroundConsumer = StoppableConsumer
    atexit.register(stop_background_consumers)


_LIVE_CONSUMERS: "weakref.WeakSet" = weakref.WeakSet()


def stop_background_consumers(timeout: float = 10.0) -> None:
    """Stop and join every live batch-buffer thread (at exit, see
    :func:`patch_background_consumer`)."""
    threads = list(_LIVE_CONSUMERS)
    for thread in threads:
        thread._stop_asked.set()
    for thread in threads:
        if thread.is_alive():
            thread.join(timeout=timeout)


def patch_trainer_freezing() -> None:
    """The Trainer hook of :mod:`fairseq_bt_plugin.transfer` (it lives there, with the rest of
    freezing; imported when the patch is applied, not with this module, which stands below the
    feature code)."""
    from .transfer import install_trainer_hook as install

    install()


@dataclass(frozen=True)
class Patch:
    """One change to fairseq (or torch, or Python) made on import."""

    name: str
    replaces: str  #: what it replaces
    why: str  #: what goes wrong without it
    apply: Callable[[], None]
    fairseq: Optional[str] = FAIRSEQ_SERIES  #: series written for; None: independent of it


#: every change importing the plugin makes, in the order applied (README mirrors this table)
PATCHES: Tuple[Patch, ...] = (
    Patch("torch_load", "torch.load",
          "torch >= 2.6 refuses every fairseq checkpoint (weights_only=True)",
          patch_torch_load),
    Patch("batch_by_size", "fairseq.data.data_utils.batch_by_size",
          "the last batch, short of --required-batch-size-multiple, is dropped: "
          "fairseq-generate skips up to 7 sentences", patch_batch_by_size),
    Patch("train_batches", "fairseq.trainer.Trainer.get_train_iterator",
          "under --fp16/--bf16/--amp, the batch_by_size fix would add one batch per epoch "
          "that is no multiple of 8",
          patch_train_batches),
    Patch("checkpoint_copy", "fairseq.file_io.PathManager.copy",
          "a kill while copying to checkpoint_last.pt truncates it", patch_checkpoint_copy),
    Patch("checkpoint_errors",
          "fairseq.checkpoint_utils.load_checkpoint_to_cpu, torch_persistent_save",
          "a truncated or foreign checkpoint is a torch traceback; a failed save leaves .tmp",
          patch_checkpoint_errors),
    Patch("user_errors", "sys.excepthook",
          "plugin user errors end in a traceback instead of one line and exit status 2",
          patch_excepthook, fairseq=None),
    Patch("cpu_distributed",
          "fairseq.distributed.utils.infer_init_method, call_main",
          "no distributed training without GPUs", patch_cpu_distributed),
    Patch("cpu_all_gather_list", "fairseq.distributed.utils.all_gather_list",
          "CUDA buffers in distributed CPU training", patch_cpu_all_gather_list),
    Patch("background_consumer", "fairseq.data.iterators.BackgroundConsumer",
          "a finished training run aborts now and then at exit (SIGABRT: 'terminate called "
          "without an active exception') while the batch-buffer thread still runs",
          patch_background_consumer),
    Patch("trainer_freezing", "fairseq.trainer.Trainer.load_checkpoint, save_checkpoint",
          "the freezing record of fairseq-bt-init-checkpoint would be ignored",
          patch_trainer_freezing),
)


def written_for(version: str, series: str = FAIRSEQ_SERIES) -> bool:
    """Whether fairseq ``version`` (e.g. ``0.12.3.1``) belongs to ``series`` (``0.12``)."""
    return version.split(".")[:2] == series.split(".")


def apply_all(fairseq_version: Optional[str] = None) -> List[str]:
    """Apply every patch of :data:`PATCHES` that fits the installed fairseq; warn
    (:class:`FairseqVersionWarning`) naming those that do not. Returns the names applied."""
    if fairseq_version is None:
        import fairseq

        fairseq_version = fairseq.__version__
    applied, skipped = [], []
    for patch in PATCHES:
        if patch.fairseq is None or written_for(fairseq_version, patch.fairseq):
            patch.apply()
            applied.append(patch.name)
        else:
            skipped.append(patch.name)
    if skipped:
        warnings.warn(
            f"fairseq_bt_plugin: these fixes were written for fairseq {FAIRSEQ_SERIES}.x and "
            f"are not applied to fairseq {fairseq_version}: {', '.join(skipped)} (see README, "
            "'What importing the plugin changes'); install fairseq-fixed==0.12.3.1",
            FairseqVersionWarning, stacklevel=2)
    return applied
