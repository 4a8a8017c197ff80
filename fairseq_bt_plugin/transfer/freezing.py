"""Freezing: the parameters loaded from the parent (for a vocabulary-sized parameter only the
rows copied from the parent) stay at their values until a given update of the run.

Exact by construction, whatever fairseq does with the gradients in between:

* after each backward the frozen gradients are dropped (``None`` for a whole tensor, zero
  rows otherwise), so gradient clipping does not see them;
* before the optimizer step they are dropped again: ``legacy_ddp`` (CPU distributed
  training) all-reduces a missing gradient as a zero tensor, and an optimizer that sees a
  gradient takes a step (Adam counts it and applies weight decay); without one it skips the
  tensor, as in a single process;
* after the optimizer step the frozen values (and rows) are written back into the model and
  into the optimizer's fp32 master copy (``--fp16``: fairseq's ``FP16Optimizer`` steps a
  flat fp32 copy of every parameter and copies it into the model), so weight decay, Adam
  moments or a flat fp16 gradient buffer cannot move them.
"""
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Tuple

import torch

from .initialise import TransferResult, strip_wrappers

#: parameter name -> frozen rows (None: the whole tensor)
FrozenRows = Dict[str, Optional[List[int]]]


@dataclass
class Freezing:
    """Keep ``rows`` fixed while the update number is below ``until``."""

    rows: FrozenRows
    until: int
    saved: Optional[Dict[str, torch.Tensor]] = field(default=None, repr=False)

    def active(self, update_num: int) -> bool:
        return bool(self.rows) and update_num < self.until

    def _frozen(self, model) -> Iterator[Tuple[str, torch.nn.Parameter, Optional[torch.Tensor]]]:
        for name, p in model.named_parameters(remove_duplicate=False):
            name = strip_wrappers(name)
            if name in self.rows:
                rows = self.rows[name]
                yield name, p, None if rows is None else torch.tensor(rows, dtype=torch.long,
                                                                      device=p.device)

    def drop_gradients(self, model, update_num: int) -> bool:
        """Remove the frozen gradients (and, the first time, remember the frozen values).
        Returns True while freezing."""
        if not self.active(update_num):
            return False
        if self.saved is None:
            self.saved = {name: (p.detach() if rows is None else p.detach()[rows]).clone()
                          for name, p, rows in self._frozen(model)}
        for _, p, rows in self._frozen(model):
            if p.grad is not None:
                if rows is None:
                    p.grad = None
                else:
                    p.grad[rows] = 0
        return True

    def optimizer_step(self, optimizer, model, update_num: int) -> None:
        """``optimizer.step()`` that leaves the frozen values where they are."""
        frozen = self.drop_gradients(model, update_num)
        optimizer.step()
        if frozen:
            self.restore(model, optimizer)

    def restore(self, model, optimizer=None) -> None:
        """Write the remembered values back into the model and the optimizer's master copy."""
        masters = fp32_master_copies(optimizer)
        with torch.no_grad():
            for name, p, rows in self._frozen(model):
                for t in (p.data, masters.get(id(p))):
                    if t is None:
                        continue
                    value = self.saved[name].to(t.dtype)
                    if rows is None:
                        t.copy_(value)
                    else:
                        t[rows] = value


def fp32_master_copies(optimizer) -> Dict[int, torch.Tensor]:
    """``{id(model parameter): its fp32 copy}`` of fairseq's ``FP16Optimizer`` (empty for every
    optimizer that steps the model's own parameters: fp32, ``--memory-efficient-fp16``,
    ``--amp``). The flat layout is the one of ``FP16Optimizer._sync_fp32_params_to_fp16``."""
    fp16_params, fp32_params = (getattr(optimizer, "fp16_params", None),
                                getattr(optimizer, "fp32_params", None))
    if fp16_params is None or fp32_params is None:
        return {}
    if not optimizer.has_flat_params:
        return {id(p): p32.data for p, p32 in zip(fp16_params, fp32_params)}
    copies, offsets = {}, {}
    for p in fp16_params:
        device = p.device.index
        offset, numel = offsets.get(device, 0), p.data.numel()
        copies[id(p)] = fp32_params[device].data[offset:offset + numel].view_as(p.data)
        offsets[device] = offset + numel
    return copies


def freezing_of(result: Optional[TransferResult]) -> Optional[Freezing]:
    """The freezing that ``--init-freeze-updates`` asks for, from update 0 of the run."""
    if result is None or not result.frozen:
        return None
    return Freezing(rows=dict(result.frozen), until=result.freeze_updates)


def freeze_record(result: TransferResult) -> dict:
    """What a checkpoint's ``extra_state["bt_init"]`` holds so that training freezes."""
    return {"frozen": dict(result.frozen), "freeze_updates": result.freeze_updates}
