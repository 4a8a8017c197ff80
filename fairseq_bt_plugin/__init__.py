"""fairseq_bt_plugin: back-translation and transfer learning for fairseq.

Load with ``--user-dir $(fairseq-bt-user-dir)`` (or ``common.user_dir=...`` for
``fairseq-hydra-train``). Importing the package registers every ``bt_*`` component and
applies every change to fairseq listed in :data:`fairseq_bt_plugin.compat.PATCHES`
(:func:`setup`). One command defers that: ``fairseq-bt-translate``, whose exported models
translate without fairseq, so that its process starts without importing it (about 2 seconds
on a small CPU); it calls :func:`setup` before it reads a fairseq checkpoint.
"""
import os
import sys

#: console commands whose process imports fairseq only through :func:`setup`, where needed
DEFERRED_SETUP_COMMANDS = ("fairseq-bt-translate",)

_set_up = False


def setup() -> None:
    """Apply every patch of :data:`~fairseq_bt_plugin.compat.PATCHES` and register every
    ``bt_*`` component with fairseq (once per process)."""
    global _set_up
    if _set_up:
        return
    from . import compat

    compat.apply_all()
    from . import criterions, models, tasks  # noqa: F401  (registration side effects)

    _set_up = True


def _deferred() -> bool:
    """Whether this process is one of :data:`DEFERRED_SETUP_COMMANDS` that has not imported
    fairseq yet."""
    command = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return command in DEFERRED_SETUP_COMMANDS and "fairseq" not in sys.modules


if not _deferred():
    setup()
