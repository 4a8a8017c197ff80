"""``fairseq-bt-average``: average the parameters of a training's last N saved states into
one checkpoint (``checkpoint_avg.pt``), for decoding.

fairseq's own tool for this, ``scripts/average_checkpoints.py``, is not part of the installed
package (fairseq-fixed 0.12.3.1 installs ``fairseq/`` and ``fairseq_cli/`` only), so its two
steps are here with its semantics: the checkpoints are chosen among the interval checkpoints
``checkpoint_E_U.pt`` by update number (fairseq's ``checkpoint_utils.checkpoint_paths``);
the new checkpoint is the newest one's state (config, training state) with ``model`` replaced
by the element-wise mean of the parameters (floating point, fp16 averaged in fp32 as fairseq
does; other tensors are the newest's). One difference: ``checkpoint_last.pt`` is one of the
states when it is newer than every interval checkpoint (a training that stopped between two
``save_interval_updates``, or at an epoch's end, where fairseq saves no interval checkpoint).
"""
import os
import sys
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
from fairseq.dataclass import FairseqDataclass
from omegaconf import MISSING

from .atomic import atomic_open
from .errors import BTUserError, check, checkpoint_error, run_reporting_user_errors
from .options import parse_dataclass

PROG = "fairseq-bt-average"
INTERVAL_CHECKPOINT = r"checkpoint_\d+_(\d+)\.pt"


@dataclass
class AverageConfig(FairseqDataclass):
    checkpoint_dir: str = field(
        default=MISSING, metadata={"help": "a training's checkpoint.save_dir"})
    last: int = field(
        default=MISSING,
        metadata={"help": "average the last N saved states: the interval checkpoints "
                  "checkpoint_E_U.pt (checkpoint.save_interval_updates; keep N of them: "
                  "checkpoint.keep_interval_updates >= N), with checkpoint_last.pt when it is "
                  "newer than all of them"})
    output: str = field(
        default="", metadata={"help": "the averaged checkpoint (default: "
                              "CHECKPOINT_DIR/checkpoint_avg.pt), written atomically"})
    skip_if_fewer: bool = field(
        default=False,
        metadata={"help": "fewer than N states saved (a short fine-tuning, say): write nothing, "
                  "say so and exit 0 instead of stopping with an error"})


def num_updates(state: Dict) -> int:
    history = state.get("optimizer_history") or [{}]
    return int(history[-1].get("num_updates", -1))


def load(path: str) -> Dict:
    from fairseq import checkpoint_utils

    try:
        return checkpoint_utils.load_checkpoint_to_cpu(path)
    except Exception as e:  # unpickling errors of all kinds
        raise checkpoint_error(path, e) from None


def last_states(checkpoint_dir: str, n: int) -> List[Tuple[str, int]]:
    """``(path, update)`` of the last ``n`` (or fewer) saved states, newest first."""
    from fairseq import checkpoint_utils

    check(os.path.isdir(checkpoint_dir), f"{checkpoint_dir}: no such folder (--checkpoint-dir)")
    found = [(p, int(u)) for p, u in checkpoint_utils.checkpoint_paths(
        checkpoint_dir, pattern=INTERVAL_CHECKPOINT, keep_match=True)]
    last = os.path.join(checkpoint_dir, "checkpoint_last.pt")
    if os.path.exists(last):
        update = num_updates(load(last))
        if not found or update > found[0][1]:
            found.insert(0, (last, update))
    return found[:n]


def check_same_shapes(first: Dict, first_path: str, params: Dict, path: str) -> None:
    """Each tensor of ``params`` (checkpoint ``path``) has the shape and dtype of the one of
    the same name in ``first`` (``first_path``): a one-line error naming both otherwise (a
    model of another size, which the mean would either stop on or silently broadcast)."""
    for k, p in params.items():
        f = first[k]
        if torch.is_tensor(p) and torch.is_tensor(f) and (p.shape, p.dtype) != (f.shape, f.dtype):
            raise BTUserError(
                f"{path}: parameter {k} is {tuple(p.shape)} {p.dtype} but {tuple(f.shape)} "
                f"{f.dtype} in {first_path} (a model of another size or precision): cannot "
                "average them")


def average_checkpoints(paths: List[str]) -> Dict:
    """The first checkpoint's state with ``model`` the mean of the checkpoints' parameters
    (floating-point tensors, accumulated in float64, stored as float32 or the dtype they had
    if wider; other tensors: the first checkpoint's)."""
    check(len(paths) >= 1, "no checkpoint to average")
    new_state, sums = None, None
    for path in paths:
        state = load(path)
        params = state["model"]
        if new_state is None:
            new_state, sums = state, OrderedDict((k, None) for k in params)
        elif list(params) != list(sums):
            raise BTUserError(f"{path}: its parameters are not those of {paths[0]} (another "
                              "architecture): cannot average them")
        else:
            check_same_shapes(new_state["model"], paths[0], params, path)
        for k, p in params.items():
            if p.is_floating_point():
                sums[k] = p.double() if sums[k] is None else sums[k] + p.double()
    averaged = OrderedDict()
    for k, p in new_state["model"].items():
        if p.is_floating_point():
            dtype = p.dtype if p.dtype in (torch.float32, torch.float64) else torch.float32
            averaged[k] = (sums[k] / len(paths)).to(dtype)
        else:
            averaged[k] = p
    new_state["model"] = averaged
    return new_state


def average(cfg: AverageConfig) -> Optional[Dict]:
    """Write the average of ``cfg.last`` states; returns what was averaged (None: skipped)."""
    check(cfg.last >= 1, f"--last must be >= 1, got {cfg.last}")
    states = last_states(cfg.checkpoint_dir, cfg.last)
    output = cfg.output or os.path.join(cfg.checkpoint_dir, "checkpoint_avg.pt")
    if len(states) < cfg.last:
        message = (f"{cfg.checkpoint_dir}: {len(states)} saved state(s) (interval checkpoints "
                   f"checkpoint_E_U.pt, checkpoint_last.pt), --last {cfg.last} needs "
                   f"{cfg.last}: save more often (checkpoint.save_interval_updates) or keep "
                   "more (checkpoint.keep_interval_updates)")
        check(cfg.skip_if_fewer, message)
        print(f"{PROG}: not averaged: {message}", file=sys.stderr)
        return None
    paths = [p for p, _ in states]
    state = average_checkpoints(paths)
    state["bt_averaged_from"] = [os.path.basename(p) for p in paths]
    with atomic_open(output, "wb") as f:
        torch.save(state, f)
    return {"output": output, "checkpoints": paths, "updates": [u for _, u in states]}


def main(argv: Optional[List[str]] = None) -> None:
    def run() -> None:
        import fairseq_bt_plugin  # noqa: F401  (bt_* archs, torch.load fix)

        cfg = parse_dataclass(AverageConfig, sys.argv[1:] if argv is None else argv, PROG,
                              __doc__.split("\n\n")[0])
        r = average(cfg)
        if r is not None:
            print(f"{PROG}: {r['output']}: the average of {len(r['checkpoints'])} checkpoints "
                  f"(updates {', '.join(map(str, r['updates']))}): "
                  f"{', '.join(map(os.path.basename, r['checkpoints']))}", file=sys.stderr)

    run_reporting_user_errors(run, PROG)


if __name__ == "__main__":
    main()
