"""Console commands: the plugin path, and fairseq's own commands with the plugin loaded.

``fairseq-bt-train`` etc. behave exactly like ``fairseq-train`` etc. with
``--user-dir $(fairseq-bt-user-dir)`` added, and report plugin user errors
(:class:`~fairseq_bt_plugin.errors.BTUserError`), unwritable outputs, missing files and
unloadable checkpoints as one line with exit status 2 (see :func:`run_reporting_user_errors`).
"""
import functools
import os
import sys
from typing import Callable, List

PLUGIN_DIR = os.path.dirname(os.path.abspath(__file__))


def print_user_dir() -> None:
    """``fairseq-bt-user-dir``: print the directory to pass as ``--user-dir``."""
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        print("usage: fairseq-bt-user-dir\n\nPrint the fairseq_bt_plugin directory, for\n"
              "  fairseq-train --user-dir \"$(fairseq-bt-user-dir)\" ...\n"
              "  fairseq-hydra-train common.user_dir=\"$(fairseq-bt-user-dir)\" ...")
        return
    print(PLUGIN_DIR)


def run_reporting_user_errors(main: Callable[[], None], prog: str) -> None:
    """Run ``main``; report as ``prog: error: message`` and exit 2: a :class:`BTUserError`,
    an output that cannot be written or an input that is missing (``OSError``: disk full,
    file size limit, read-only or unwritable folder; the message names the path), and a
    checkpoint file that fairseq cannot load (truncated, or not a checkpoint)."""
    from .errors import BTUserError, os_error_message

    _report_checkpoint_errors()
    try:
        main()
        return
    except BTUserError as e:
        message = str(e)
    except OSError as e:
        message = os_error_message(e)
        if message is None:
            raise
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(2)


def _report_checkpoint_errors() -> None:
    """fairseq's checkpoint functions (``--restore-file``, ``--finetune-from-model``,
    ``--init-from``, ``--path``, saving) raising errors that name the file: a
    :class:`BTUserError` when it cannot be unpickled or is not a checkpoint, instead of a
    traceback from torch, and an OSError naming the checkpoint when it cannot be written
    (fairseq's half-written ``.tmp`` is removed; the previous checkpoint stays as it was)."""
    from fairseq import checkpoint_utils

    from .errors import checkpoint_error, naming

    load, save = checkpoint_utils.load_checkpoint_to_cpu, checkpoint_utils.torch_persistent_save
    if getattr(load, "_bt_reports_errors", False):
        return

    @functools.wraps(load)
    def checked_load(path, *args, **kwargs):
        try:
            return load(path, *args, **kwargs)
        except OSError:
            raise  # a missing or unreadable file: reported as such
        except Exception as e:
            raise checkpoint_error(path, e) from None

    @functools.wraps(save)
    def checked_save(obj, filename, *args, **kwargs):
        try:
            with naming(filename):
                return save(obj, filename, *args, **kwargs)
        except OSError:
            if os.path.exists(filename + ".tmp"):
                os.remove(filename + ".tmp")
            raise

    checked_load._bt_reports_errors = True
    checkpoint_utils.load_checkpoint_to_cpu = checked_load
    checkpoint_utils.torch_persistent_save = checked_save


def _with_user_dir(argv: List[str]) -> List[str]:
    if any(a == "--user-dir" or a.startswith("--user-dir=") for a in argv):
        return argv
    return argv[:1] + ["--user-dir", PLUGIN_DIR] + argv[1:]


def _wrap(module: str, prog: str) -> Callable[[], None]:
    def entry() -> None:
        import importlib

        import logging

        import fairseq_bt_plugin  # noqa: F401  (registers bt_* and applies compat fixes)

        # fairseq's commands set up the root logger before importing fairseq; importing this
        # package has imported fairseq already, so do it here as they do
        logging.basicConfig(format="%(asctime)s | %(levelname)s | %(name)s | %(message)s",
                            datefmt="%Y-%m-%d %H:%M:%S", stream=sys.stdout, force=True,
                            level=os.environ.get("LOGLEVEL", "INFO").upper())
        main = importlib.import_module(module).cli_main

        sys.argv = _with_user_dir(sys.argv)
        run_reporting_user_errors(main, prog)

    entry.__doc__ = f"``{prog}``: ``{module}`` with the plugin loaded."
    return entry


train = _wrap("fairseq_cli.train", "fairseq-bt-train")
decode = _wrap("fairseq_cli.generate", "fairseq-bt-decode")
interactive = _wrap("fairseq_cli.interactive", "fairseq-bt-interactive")
preprocess = _wrap("fairseq_cli.preprocess", "fairseq-bt-preprocess")


def hydra_train() -> None:
    """``fairseq-bt-hydra-train``: ``fairseq-hydra-train`` with ``common.user_dir`` set."""
    import fairseq_bt_plugin  # noqa: F401
    from fairseq_cli import hydra_train as ht

    save_dir = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("checkpoint.save_dir=")]
    defaults = {"common.user_dir": PLUGIN_DIR,  # the plugin, wherever it is installed
                # hydra's log beside the checkpoints, not in ./outputs/DATE/
                "hydra.run.dir": save_dir[-1] if save_dir else ".", "hydra.output_subdir": "null"}
    for key, value in defaults.items():
        if not any(a.startswith(key + "=") for a in sys.argv[1:]):
            sys.argv.append(f"{key}={value}")
    run_reporting_user_errors(ht.cli_main, "fairseq-bt-hydra-train")
