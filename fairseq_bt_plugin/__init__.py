"""fairseq_bt_plugin: back-translation and transfer learning for fairseq.

Load with ``--user-dir $(fairseq-bt-user-dir)`` (or ``common.user_dir=...`` for
``fairseq-hydra-train``). Importing the package registers every ``bt_*`` component and
applies the compatibility fixes in :mod:`fairseq_bt_plugin.compat`; fairseq's Trainer
honours the freezing record of checkpoints written by ``fairseq-bt-init-checkpoint``.
"""
from . import compat, transfer

compat.apply_all()
transfer.install_trainer_hook()  # checkpoints of fairseq-bt-init-checkpoint may freeze

from . import criterions, models, tasks  # noqa: E402,F401  (registration side effects)
