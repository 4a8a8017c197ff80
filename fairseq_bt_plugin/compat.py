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
"""
import functools
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


def apply_all() -> None:
    patch_torch_load()
    patch_batch_by_size()
