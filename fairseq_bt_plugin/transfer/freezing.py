"""Freezing: the loaded parameters get no gradient for the first ``--init-freeze-updates``
updates."""
from typing import Optional

from .initialise import TransferResult, strip_wrappers

def drop_frozen_gradients(model, result: Optional[TransferResult], update_num: int) -> bool:
    """After backward: remove the gradients of the frozen parameters while
    ``update_num < freeze_updates``. Returns True when it did."""
    if result is None or not result.frozen or update_num >= result.freeze_updates:
        return False
    frozen = set(result.frozen)
    for name, p in model.named_parameters(remove_duplicate=False):
        if strip_wrappers(name) in frozen:
            p.grad = None
    return True


def freeze_record(result: TransferResult) -> dict:
    """What a checkpoint's ``extra_state["bt_init"]`` holds so that training freezes."""
    return {"frozen": list(result.frozen), "freeze_updates": result.freeze_updates}
