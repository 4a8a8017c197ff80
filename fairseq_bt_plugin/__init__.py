"""fairseq_bt_plugin: back-translation and transfer learning for fairseq.

Load with ``--user-dir $(fairseq-bt-user-dir)`` (or ``common.user_dir=...`` for
``fairseq-hydra-train``). Importing the package registers every ``bt_*`` component and
applies every change to fairseq listed in :data:`fairseq_bt_plugin.compat.PATCHES`.
"""
from . import compat

compat.apply_all()

from . import criterions, models, tasks  # noqa: E402,F401  (registration side effects)
