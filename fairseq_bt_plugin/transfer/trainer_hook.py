"""The one patch to fairseq's ``Trainer``: it honours (and keeps) the freezing record of a
checkpoint written by ``fairseq-bt-init-checkpoint --init-freeze-updates N``, whatever the
task; a no-op for every other checkpoint."""
import logging

from .freezing import drop_frozen_gradients
from .initialise import TransferResult
from .task_mixin import TransferTaskMixin

logger = logging.getLogger(__name__)


def _freeze_from_checkpoint(trainer, extra_state) -> None:
    """Freeze the parameters named by a loaded checkpoint's ``bt_init`` record."""
    record = (extra_state or {}).get("bt_init") or {}
    frozen, updates = list(record.get("frozen") or []), int(record.get("freeze_updates") or 0)
    if not frozen or updates <= 0:
        return
    trainer.bt_init_record = record  # saved again with every checkpoint (resumes freeze too)
    result = TransferResult(loaded=frozen, frozen=frozen, freeze_updates=updates, coverage={},
                            skipped=[])
    task = trainer.task
    if isinstance(task, TransferTaskMixin):
        if task.transfer is None or not task.transfer.frozen:
            task.transfer = result
    else:  # a stock task: drop the gradients after its own train_step
        step = type(task).train_step.__get__(task)

        def train_step(sample, model, criterion, optimizer, update_num, ignore_grad=False):
            out = step(sample, model, criterion, optimizer, update_num, ignore_grad)
            drop_frozen_gradients(model, result, update_num)
            return out

        task.train_step = train_step
    if trainer.get_num_updates() < updates:
        logger.info(f"init: {len(frozen)} parameter tensors loaded from "
                    f"{record.get('parent', 'the parent')} stay frozen until update {updates}")


def install_trainer_hook() -> None:
    """Let fairseq's Trainer honour (and keep) a checkpoint's ``bt_init`` freezing record."""
    from fairseq.trainer import Trainer

    if getattr(Trainer, "_bt_freezing", False):
        return
    load, save = Trainer.load_checkpoint, Trainer.save_checkpoint

    def load_checkpoint(self, filename, *args, **kwargs):
        extra_state = load(self, filename, *args, **kwargs)
        _freeze_from_checkpoint(self, extra_state)
        return extra_state

    def save_checkpoint(self, filename, extra_state):
        record = getattr(self, "bt_init_record", None)
        if record and "bt_init" not in extra_state:
            extra_state = {**extra_state, "bt_init": record}
        return save(self, filename, extra_state)

    Trainer.load_checkpoint, Trainer.save_checkpoint = load_checkpoint, save_checkpoint
    Trainer._bt_freezing = True
