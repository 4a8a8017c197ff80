"""The one patch to fairseq's ``Trainer``: it honours the freezing record of a checkpoint
written by ``fairseq-bt-init-checkpoint --init-freeze-updates N``, whatever the task; a
no-op for every other checkpoint.

The record (``extra_state["bt_init"]``) names the frozen parameters (and rows) and N. The
run that starts from the checkpoint freezes them for its first N updates and writes into its
own checkpoints the update at which freezing ends (``until``) and the update of the
checkpoint (``saved_at_update``). A resumed run (fairseq restored its update counter to
``saved_at_update``) goes on freezing until ``until``; a new run started from such a
checkpoint (``--finetune-from-model``, ``--reset-optimizer``: the counter starts again at 0)
freezes nothing, and its checkpoints carry no record.
"""
import logging

from .freezing import Freezing
from .task_mixin import TransferTaskMixin

logger = logging.getLogger(__name__)


def _freeze_from_checkpoint(trainer, extra_state) -> None:
    """Freeze what a loaded checkpoint's ``bt_init`` record names, if it applies to this run."""
    record = (extra_state or {}).get("bt_init") or {}
    frozen, updates = record.get("frozen") or {}, int(record.get("freeze_updates") or 0)
    if not frozen or updates <= 0:
        return
    if isinstance(frozen, list):  # records written before rows were recorded
        frozen = dict.fromkeys(frozen)
    now = trainer.get_num_updates()
    if "until" in record and record.get("saved_at_update") != now:
        logger.info(f"init: the freezing of {record.get('parent', 'the parent')}'s parameters "
                    "belonged to the run that wrote this checkpoint (the update counter was "
                    "reset): nothing is frozen")
        return
    until = int(record["until"]) if "until" in record else now + updates
    task = trainer.task
    if getattr(task, "bt_freezing", None) is not None and task.bt_freezing.rows:
        return  # the task's own --init-from freezing comes first
    trainer.bt_init_record = {k: v for k, v in record.items()
                              if k not in ("until", "saved_at_update")}
    task.bt_freezing = Freezing(rows=frozen, until=until)
    if not isinstance(task, TransferTaskMixin) and "train_step" not in vars(task):
        _add_freezing_to_steps(task)  # a stock task: wrap its steps
    if now < until:
        logger.info(f"init: {len(frozen)} parameter tensors loaded from "
                    f"{record.get('parent', 'the parent')} stay frozen until update {until}")


def _add_freezing_to_steps(task) -> None:
    train_step, optimizer_step = (type(task).train_step.__get__(task),
                                  type(task).optimizer_step.__get__(task))

    def frozen_train_step(sample, model, criterion, optimizer, update_num, ignore_grad=False):
        out = train_step(sample, model, criterion, optimizer, update_num, ignore_grad)
        task.bt_freezing.drop_gradients(model, update_num)
        return out

    def frozen_optimizer_step(optimizer, model, update_num):
        if not task.bt_freezing.active(update_num):
            return optimizer_step(optimizer, model, update_num)
        task.bt_freezing.optimizer_step(optimizer, model, update_num)

    task.train_step, task.optimizer_step = frozen_train_step, frozen_optimizer_step


def install_trainer_hook() -> None:
    """Patch fairseq's ``Trainer.load_checkpoint`` / ``save_checkpoint`` so that a
    checkpoint's ``bt_init`` freezing record is honoured and kept for resumes (idempotent)."""
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
        freezing = getattr(self.task, "bt_freezing", None)
        if record and freezing is not None and "bt_init" not in extra_state:
            extra_state = {**extra_state, "bt_init": {
                **record, "until": freezing.until, "saved_at_update": self.get_num_updates()}}
        return save(self, filename, extra_state)

    Trainer.load_checkpoint, Trainer.save_checkpoint = load_checkpoint, save_checkpoint
    Trainer._bt_freezing = True
