"""Console commands: the plugin path, and fairseq's own commands with the plugin loaded.

``fairseq-bt-train`` etc. behave exactly like ``fairseq-train`` etc. with
``--user-dir $(fairseq-bt-user-dir)`` added (every change to fairseq is made by importing the
plugin, :mod:`fairseq_bt_plugin.compat`): both report plugin user errors
(:class:`~fairseq_bt_plugin.errors.BTUserError`), unwritable outputs, missing files and
unloadable checkpoints as one line with exit status 2 (see
:func:`~fairseq_bt_plugin.errors.run_reporting_user_errors`).
"""
import functools
import os
import sys
from typing import Callable, List

from .errors import run_reporting_user_errors

PLUGIN_DIR = os.path.dirname(os.path.abspath(__file__))


def print_user_dir() -> None:
    """``fairseq-bt-user-dir``: print the directory to pass as ``--user-dir``."""
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        print("usage: fairseq-bt-user-dir\n\nPrint the fairseq_bt_plugin directory, for\n"
              "  fairseq-train --user-dir \"$(fairseq-bt-user-dir)\" ...\n"
              "  fairseq-hydra-train common.user_dir=\"$(fairseq-bt-user-dir)\" ...")
        return
    print(PLUGIN_DIR)


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


def legacy_task_config(cfg):
    """``cfg`` as ``fairseq-train`` would hold it when ``task._name`` names a legacy (argparse)
    task such as ``bt_multilingual`` (fairseq's ``translation_multi_simple_epoch`` has no
    dataclass, so fairseq's hydra path cannot set it up): ``cfg.task`` becomes the flat
    ``Namespace`` of every group's values, the task's argparse defaults and the ``task.*`` keys
    (a string parsed by its option's type, e.g. ``task.extra_data='{"bt": "DIR"}'``), as
    ``fairseq-train`` makes it. Other configs are returned unchanged."""
    import argparse

    from fairseq.dataclass.utils import omegaconf_no_object_check
    from fairseq.tasks import TASK_DATACLASS_REGISTRY, TASK_REGISTRY
    from omegaconf import DictConfig, OmegaConf, open_dict

    from .errors import check

    name = cfg.task.get("_name") if isinstance(cfg.task, DictConfig) else None
    if name is None or name in TASK_DATACLASS_REGISTRY or name not in TASK_REGISTRY:
        return cfg
    parser = argparse.ArgumentParser(allow_abbrev=False)
    TASK_REGISTRY[name].add_args(parser)
    actions = {a.dest: a for a in parser._actions}
    # the task's defaults as its parser gives them (positionals, e.g. data: set below)
    args = parser.parse_args(["-"] * sum(not a.option_strings for a in parser._actions))
    for group, node in cfg.items():  # every value, as fairseq-train's flat namespace has it
        if group != "task" and isinstance(node, DictConfig):
            for key, value in node.items():
                if not key.startswith("_") and not OmegaConf.is_missing(node, key):
                    setattr(args, key, value)
    for key in cfg.task:
        if key == "_name" or OmegaConf.is_missing(cfg.task, key):
            continue
        check(key in actions, f"task.{key}: not an option of task {name}")
        value, kind = cfg.task[key], actions[key].type
        setattr(args, key, kind(value) if isinstance(value, str) and callable(kind) else value)
    args.task = args._name = name
    with open_dict(cfg), omegaconf_no_object_check():
        cfg.task = args
    return cfg


def _train_main(cfg, **kwargs) -> None:
    from fairseq_cli.train import main

    main(legacy_task_config(cfg), **kwargs)


def hydra_train() -> None:
    """``fairseq-bt-hydra-train``: ``fairseq-hydra-train`` with ``common.user_dir`` set; also
    trains legacy (argparse) tasks such as ``bt_multilingual`` (:func:`legacy_task_config`)."""
    import fairseq_bt_plugin  # noqa: F401
    from fairseq_cli import hydra_train as ht

    ht.pre_main = _train_main  # what _hydra_main calls (fairseq_cli.train.main)

    save_dir = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("checkpoint.save_dir=")]
    defaults = {"common.user_dir": PLUGIN_DIR,  # the plugin, wherever it is installed
                # hydra's log beside the checkpoints, not in ./outputs/DATE/
                "hydra.run.dir": save_dir[-1] if save_dir else ".", "hydra.output_subdir": "null"}
    for key, value in defaults.items():
        if not any(a.startswith(key + "=") for a in sys.argv[1:]):
            sys.argv.append(f"{key}={value}")
    run_reporting_user_errors(ht.cli_main, "fairseq-bt-hydra-train")
