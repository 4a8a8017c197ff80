"""Test-only ``--user-dir``: task ``traced_bt_translation``, which is ``bt_translation`` that
also writes what each process trains on, for the distributed and resume tests.

A folder passed as ``--user-dir`` (not an installed package, like the plugins in
fairseq#4875); it loads the installed plugin itself. Every process appends JSON lines to
``$BT_TRACE_DIR/rank{R}.jsonl``:

* ``{"kind": "train", "epoch", "update", "ids", "synthetic", "batch", "params", "loss"}`` for
  each real batch (fairseq's dummy batches for uneven shards are left out): ``batch`` is a
  checksum of its (noised) tokens, ``params`` one of the parameters the update starts from;
* ``{"kind": "valid", "params"}`` for each validation batch: the parameters after the last
  update of the epoch.
"""
import hashlib
import json
import os
from dataclasses import dataclass

import torch
from fairseq.tasks import register_task

from fairseq_bt_plugin.tasks.bt_translation import BTTranslationConfig, BTTranslationTask


def state_checksum(state) -> str:
    """sha256 of a model state dict, by name (DDP wrappers' ``module.`` prefix removed)."""
    h = hashlib.sha256()
    named = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    for name in sorted(named):
        h.update(name.encode())
        h.update(named[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def read_trace(trace_dir, rank: int = 0, kind: str = "train"):
    """The records of one kind that one rank wrote, in order."""
    with open(os.path.join(trace_dir, f"rank{rank}.jsonl")) as f:
        return [r for r in map(json.loads, f) if r["kind"] == kind]


def _record(**entry) -> None:
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    with open(os.path.join(os.environ["BT_TRACE_DIR"], f"rank{rank}.jsonl"), "a") as f:
        f.write(json.dumps(entry) + "\n")


@dataclass
class BTTranslationTracedConfig(BTTranslationConfig):
    pass


@register_task("traced_bt_translation", dataclass=BTTranslationTracedConfig)
class BTTranslationTracedTask(BTTranslationTask):
    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        params = state_checksum(model.state_dict())
        loss, sample_size, logging_output = super().train_step(
            sample, model, criterion, optimizer, update_num, ignore_grad)
        if not ignore_grad:  # ignore_grad marks fairseq's dummy batch
            _record(kind="train", epoch=self.dataset(self.cfg.train_subset).epoch,
                    update=update_num, ids=sample["id"].tolist(),
                    synthetic=sample["bt_synthetic"].tolist(), params=params,
                    batch=state_checksum({"src": sample["net_input"]["src_tokens"],
                                          "tgt": sample["target"]}),
                    loss=float(logging_output["loss"]))
        return loss, sample_size, logging_output

    def valid_step(self, sample, model, criterion):
        _record(kind="valid", params=state_checksum(model.state_dict()))
        return super().valid_step(sample, model, criterion)
