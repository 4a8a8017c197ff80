"""``TransferTaskMixin``: what a task needs to initialise new models from ``--init-from`` and
keep the loaded parameters fixed for ``--init-freeze-updates``."""
from typing import Optional

from .freezing import drop_frozen_gradients
from .initialise import TransferResult, init_from_parent


class TransferTaskMixin:
    """Task mixin (put it first among the bases) for a task whose config inherits
    :class:`TransferConfig`: initialises new models from ``--init-from`` and keeps the loaded
    parameters fixed for ``--init-freeze-updates``."""

    transfer: Optional[TransferResult] = None

    def build_model(self, cfg, from_checkpoint=False):
        model = super().build_model(cfg, from_checkpoint)
        if not from_checkpoint:
            self.transfer = init_from_parent(model, self.cfg, self.source_dictionary,
                                             self.target_dictionary)
        return model

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        out = super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad)
        drop_frozen_gradients(model, self.transfer, update_num)
        return out
