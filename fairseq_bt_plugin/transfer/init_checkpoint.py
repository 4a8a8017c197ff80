"""``fairseq-bt-init-checkpoint``: write a child checkpoint initialised from a parent one.

For stock tasks (``translation``) that have no ``--init-from``: the child model is built from
the child's data directory and architecture flags exactly as ``fairseq-train`` would build
it, its parameters are initialised from the parent (vocabulary rows remapped; see
:mod:`fairseq_bt_plugin.transfer`), and the result is saved as a fairseq checkpoint that
stock ``fairseq-train`` loads with ``--finetune-from-model CHILD.pt`` (or ``--restore-file
CHILD.pt --reset-optimizer --reset-lr-scheduler --reset-meters --reset-dataloader``), given
the same task, data and model flags. Example::

    fairseq-bt-init-checkpoint --init-from fr_en/checkpoint_best.pt --output de_en_init.pt \
        data-bin/de-en --task translation -s de -t en --arch transformer --share-all-embeddings

With ``--init-freeze-updates N`` the checkpoint records the loaded parameters: training that
starts from it with the plugin loaded (``--user-dir $(fairseq-bt-user-dir)`` or
``fairseq-bt-train``) keeps them fixed for the first N updates, whatever the task; without the
plugin fairseq ignores the record. On torch >= 2.6 load the checkpoint with the plugin
imported, see :mod:`fairseq_bt_plugin.compat`.
"""
import argparse
import logging
import os
import sys
from typing import List, Optional

from ..cli import PLUGIN_DIR
from ..errors import check, run_reporting_user_errors
from .config import TransferConfig
from .freezing import freeze_record
from .initialise import init_from_parent

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    from fairseq.dataclass.utils import gen_parser_from_dataclass

    parser = argparse.ArgumentParser(
        prog="fairseq-bt-init-checkpoint", allow_abbrev=False, add_help=False,
        description="Initialise a child model from a parent checkpoint (remapping "
        "vocabulary rows) and save it as a fairseq checkpoint. Every argument not listed "
        "here goes to fairseq-train's parser (data directory, --task, -s/-t, --arch, model "
        "flags), to build the child model.")
    parser.add_argument("-h", "--help", action="store_true", help="show this help and exit")
    parser.add_argument("--output", help="path of the child checkpoint to write (required)")
    gen_parser_from_dataclass(parser, TransferConfig())
    return parser


def init_checkpoint(own: argparse.Namespace, fairseq_args: List[str]) -> str:
    from fairseq import checkpoint_utils, options, tasks, utils
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from omegaconf import OmegaConf

    check(bool(own.output), "--output CHILD.pt is required")
    check(bool(own.init_from), "--init-from PARENT.pt is required")
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, input_args=["--user-dir", PLUGIN_DIR]
                                       + fairseq_args)
    cfg = convert_namespace_to_omegaconf(args)
    utils.set_torch_seed(cfg.common.seed)
    task = tasks.setup_task(cfg.task)
    model = task.build_model(cfg.model, from_checkpoint=True)  # no task-side --init-from
    transfer = TransferConfig(init_from=own.init_from, init_parts=own.init_parts,
                              init_freeze_updates=own.init_freeze_updates,
                              init_parent_dicts=own.init_parent_dicts)
    result = init_from_parent(model, transfer, task.source_dictionary, task.target_dictionary)
    state = {
        "args": None,
        "cfg": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
        "model": model.state_dict(),
        "criterion": None,
        "optimizer_history": [{
            "criterion_name": "none", "optimizer_name": "none",
            "lr_scheduler_state": {}, "num_updates": 0,
        }],
        "task_state": {},
        "extra_state": {
            "train_iterator": {"epoch": 1, "iterations_in_epoch": 0, "shuffle": True,
                               "version": 2},
            "bt_init": {"parent": os.path.abspath(own.init_from),
                        "parts": own.init_parts,
                        "loaded": list(result.loaded),
                        "coverage": dict(result.coverage),
                        **freeze_record(result)},
        },
    }
    os.makedirs(os.path.dirname(os.path.abspath(own.output)), exist_ok=True)
    checkpoint_utils.torch_persistent_save(state, own.output)  # atomic; errors name the file
    logger.info(f"wrote {own.output}: {len(result.loaded)} parameter tensors from "
                f"{own.init_from}" + "".join(f", {s} coverage {v:.1%}"
                                             for s, v in result.coverage.items()))
    return own.output


def main(argv: Optional[List[str]] = None) -> None:
    import fairseq_bt_plugin  # noqa: F401  (registers bt_* and the torch.load fix)

    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    own, rest = parser.parse_known_args(argv)
    if own.help or not argv:
        parser.print_help()
        sys.exit(0 if own.help else 2)
    logging.basicConfig(format="%(asctime)s | %(levelname)s | %(name)s | %(message)s",
                        level=logging.INFO, stream=sys.stdout, force=True)
    init_checkpoint(own, rest)


def cli_main() -> None:
    run_reporting_user_errors(main, "fairseq-bt-init-checkpoint")


if __name__ == "__main__":
    cli_main()
