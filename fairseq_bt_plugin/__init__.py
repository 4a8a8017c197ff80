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

#: console commands (and their modules, for ``python -m``) whose process imports fairseq only
#: through :func:`setup`, where needed
DEFERRED_SETUP_COMMANDS = {"fairseq-bt-translate": "fairseq_bt_plugin.translate"}

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
    """Whether this process is one of :data:`DEFERRED_SETUP_COMMANDS` (run by its name or as
    ``python -m MODULE``) that has not imported fairseq yet."""
    if "fairseq" in sys.modules:
        return False
    command = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    argv = list(getattr(sys, "orig_argv", []))  # Python >= 3.10: the interpreter's own flags
    module = argv[argv.index("-m") + 1] if "-m" in argv[:-1] else None
    return command in DEFERRED_SETUP_COMMANDS or module in DEFERRED_SETUP_COMMANDS.values()


if not _deferred():
    setup()
