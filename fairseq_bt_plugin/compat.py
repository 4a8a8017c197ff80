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
"""
import functools
import sys

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


def apply_all() -> None:
    patch_torch_load()
