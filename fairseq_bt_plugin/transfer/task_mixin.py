"""``TransferTaskMixin``: what a task needs to initialise new models from ``--init-from`` and
keep the loaded parameters fixed for ``--init-freeze-updates``."""
from typing import Optional

from .freezing import Freezing, freezing_of
from .initialise import TransferResult, init_from_parent


class TransferTaskMixin:
    """Task mixin (put it first among the bases) for a task whose config inherits
    :class:`TransferConfig`: initialises new models from ``--init-from`` and keeps the loaded
    parameters (the copied rows of vocabulary-sized ones) fixed for
    ``--init-freeze-updates``; or keeps fixed what a loaded checkpoint's freezing record
    names (:mod:`.trainer_hook` sets ``bt_freezing``)."""

    transfer: Optional[TransferResult] = None
    bt_freezing: Optional[Freezing] = None

    def build_model(self, cfg, from_checkpoint=False):
        model = super().build_model(cfg, from_checkpoint)
        if not from_checkpoint:
            self.transfer = init_from_parent(model, self.cfg, self.source_dictionary,
                                             self.target_dictionary)
            self.bt_freezing = freezing_of(self.transfer)
        return model

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        out = super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad)
        if self.bt_freezing is not None:
            self.bt_freezing.drop_gradients(model, update_num)
        return out

    def optimizer_step(self, optimizer, model, update_num):
        if self.bt_freezing is None:
            return super().optimizer_step(optimizer, model, update_num)
        self.bt_freezing.optimizer_step(optimizer, model, update_num)
