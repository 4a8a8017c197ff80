"""Initialisation: copy a parent checkpoint's parameters into a freshly built model, part
by part, remapping the rows of vocabulary-sized parameters between the two dictionaries (see
:mod:`fairseq_bt_plugin.transfer`)."""
import argparse
import logging
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch
from fairseq.data import Dictionary
from omegaconf import OmegaConf

from ..errors import BTUserError, check
from .config import TransferConfig, parse_parts

logger = logging.getLogger(__name__)

#: vocabulary-sized parameters of fairseq's transformer and the side of their dictionary
TRANSFORMER_VOCAB_PARAMETERS = {
    "encoder.embed_tokens.weight": "source",
    "decoder.embed_tokens.weight": "target",
    "decoder.output_projection.weight": "target",
}


@dataclass
class TransferResult:
    """What :func:`init_from_parent` did."""

    loaded: List[str]
    #: parameter name -> rows to keep fixed (the rows copied from the parent; None: all)
    frozen: Dict[str, Optional[List[int]]]
    freeze_updates: int
    coverage: Dict[str, float]
    skipped: List[str]


def parameter_part(name: str, latent_prefixes=()) -> Optional[str]:
    """The part a parameter belongs to (None: none of them)."""
    if any(name.startswith(p) for p in latent_prefixes):
        return "latent"
    if name in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight"):
        return "embeddings"
    if name.startswith("decoder.output_projection."):
        return "output_projection"
    if name.startswith("encoder."):
        return "encoder"
    if name.startswith("decoder."):
        return "decoder"
    return None


def vocab_parameters(model) -> Dict[str, str]:
    return {**TRANSFORMER_VOCAB_PARAMETERS, **dict(getattr(model, "bt_vocab_parameters", {}))}


def strip_wrappers(name: str) -> str:
    while name.startswith("module."):
        name = name[len("module."):]
    return name


def tied_groups(model) -> List[List[Tuple[str, torch.nn.Parameter]]]:
    """Parameters grouped by identity (tied embeddings share one tensor), in model order."""
    groups: Dict[int, List[Tuple[str, torch.nn.Parameter]]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        groups.setdefault(id(p), []).append((strip_wrappers(name), p))
    return list(groups.values())


# --- parent dictionaries --------------------------------------------------------------------
def _cfg_get(cfg, *keys):
    for key in keys:
        if cfg is None:
            return None
        cfg = cfg.get(key) if hasattr(cfg, "get") else getattr(cfg, key, None)
    return cfg


def parent_dictionaries(state, path: str, dicts_dir: str = "") -> Dict[str, Dictionary]:
    """``{"source": Dictionary, "target": Dictionary}`` of the parent checkpoint."""
    task_cfg = _cfg_get(state.get("cfg"), "task")
    if task_cfg is None and state.get("args") is not None:
        task_cfg = vars(state["args"])
    data = _cfg_get(task_cfg, "data") or ""
    directory = dicts_dir or (data.split(os.pathsep)[0] if data else "")
    check(bool(directory), f"--init-from {path}: the checkpoint records no data directory; "
          "give the parent's dictionaries with --init-parent-dicts DIR")
    if _cfg_get(task_cfg, "lang_pairs"):  # a multilingual parent
        return multilingual_dictionaries(task_cfg, path, directory)
    src, tgt = _cfg_get(task_cfg, "source_lang"), _cfg_get(task_cfg, "target_lang")
    mono = _cfg_get(task_cfg, "mono_langs")
    if not (src and tgt) and mono:
        src = tgt = str(mono).split(",")[0].strip()
    if not (src and tgt):
        found = sorted(f for f in os.listdir(directory) if f.startswith("dict.")
                       and f.endswith(".txt")) if os.path.isdir(directory) else []
        check(len(found) == 1, f"--init-from {path}: cannot tell the parent's languages; "
              f"found {found or 'no dict.*.txt'} in {directory}; use --init-parent-dicts")
        src = tgt = found[0][len("dict."):-len(".txt")]
    out = {}
    for side, lang in (("source", src), ("target", tgt)):
        f = os.path.join(directory, f"dict.{lang}.txt")
        check(os.path.isfile(f), f"--init-from {path}: parent dictionary {f} not found; "
              "give its directory with --init-parent-dicts")
        out[side] = Dictionary.load(f)
    return out


def multilingual_dictionaries(task_cfg, path: str, directory: str) -> Dict[str, Dictionary]:
    """A multilingual parent's dictionaries as its task built them: fairseq's multilingual
    task adds the language tokens (``__en__``) to the files' entries, ``bt_multilingual``
    the BT tag after them, so the files alone have fewer rows than the embeddings."""
    from fairseq import tasks

    check(os.path.isdir(directory), f"--init-from {path}: the parent's data directory "
          f"{directory} (recorded in the checkpoint) not found; give its dictionaries' "
          "directory with --init-parent-dicts")
    if isinstance(task_cfg, argparse.Namespace):  # a legacy task's options, as saved
        cfg = argparse.Namespace(**{**vars(task_cfg), "data": directory})
    else:
        cfg = OmegaConf.merge(task_cfg, {"data": directory})
    task = tasks.setup_task(cfg)
    return {"source": task.source_dictionary, "target": task.target_dictionary}


def row_mapping(child: Dictionary, parent: Dictionary) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(child_rows, parent_rows)``: indices of the tokens present in both dictionaries."""
    pairs = [(i, parent.indices[sym]) for i, sym in enumerate(child.symbols)
             if sym in parent.indices]
    c, p = zip(*pairs) if pairs else ((), ())
    return torch.tensor(c, dtype=torch.long), torch.tensor(p, dtype=torch.long)


def coverage(child: Dictionary, parent: Dictionary) -> float:
    """Share of the child's real tokens (no specials, no padding ``madeupword``) in parent."""
    real = [s for s in child.symbols[child.nspecial:] if not s.startswith("madeupword")]
    return sum(s in parent.indices for s in real) / max(len(real), 1)


# --- the initialisation ---------------------------------------------------------------------
def init_from_parent(model, cfg: TransferConfig, source_dictionary: Dictionary,
                     target_dictionary: Dictionary) -> Optional[TransferResult]:
    """Copy the parent's parameters into ``model`` in place (see the module docstring).
    Returns None when ``cfg.init_from`` is empty."""
    path = getattr(cfg, "init_from", "") or ""
    if not path:
        return None
    from fairseq import checkpoint_utils

    check(os.path.isfile(path), f"--init-from {path}: checkpoint not found")
    parts, is_all = parse_parts(cfg.init_parts)
    check(cfg.init_freeze_updates >= 0,
          f"--init-freeze-updates must be >= 0, got {cfg.init_freeze_updates}")
    state = checkpoint_utils.load_checkpoint_to_cpu(path)
    parent_sd = state["model"]
    parent_arch = _cfg_get(state.get("cfg"), "model", "_name") or _cfg_get(
        state.get("cfg"), "model", "arch")
    child_arch = getattr(getattr(model, "args", None), "arch", None) or type(model).__name__
    from ..models.bt_transformer_vae import BTTransformerVAEModel

    # the parent may be a VAE while the child is not: classify its latent modules as such
    latent_prefixes = tuple(dict.fromkeys(tuple(getattr(model, "bt_latent_prefixes", ()))
                                          + BTTransformerVAEModel.bt_latent_prefixes))
    child_dicts = {"source": source_dictionary, "target": target_dictionary}
    vocab = vocab_parameters(model)
    parent_dicts = None

    def mismatch(msg):
        return BTUserError(f"--init-from {path}: {msg} (parent arch {parent_arch}, this model "
                           f"{child_arch}); choose other --init-parts or a matching --arch")

    groups = tied_groups(model)
    child_keys = {strip_wrappers(k) for k in model.state_dict()}
    if is_all:
        present = {parameter_part(k, latent_prefixes) for k in parent_sd}
        parts = [p for p in parts if p in present]
    loaded, skipped = [], []
    copied_rows: Dict[str, Optional[List[int]]] = {}  # only the copied rows of vocab parameters
    for group in groups:
        names = [n for n, _ in group]
        selected = [n for n in names if parameter_part(n, latent_prefixes) in parts]
        if not selected:
            continue
        param = group[0][1]
        key = next((n for n in selected if n in parent_sd), None)
        if key is None:
            key = next((n for n in names if n in parent_sd), None)
        if key is None:
            if all(parameter_part(n, latent_prefixes) == "latent" for n in selected):
                skipped.append(selected[0])
                continue
            raise mismatch(f"the parent has no parameter {selected[0]}")
        value = parent_sd[key]
        side = vocab.get(key) or next((vocab[n] for n in names if n in vocab), None)
        with torch.no_grad():
            if side is not None:
                if parent_dicts is None:
                    parent_dicts = parent_dictionaries(state, path, cfg.init_parent_dicts)
                pdict, cdict = parent_dicts[side], child_dicts[side]
                check(value.size(0) == len(pdict),
                      f"--init-from {path}: parameter {key} has {value.size(0)} rows but the "
                      f"parent's {side} dictionary has {len(pdict)} entries; give the "
                      "dictionaries the parent was trained with (--init-parent-dicts)")
                if tuple(value.shape[1:]) != tuple(param.shape[1:]):
                    raise mismatch(f"parameter {key} has rows of shape {tuple(value.shape[1:])} "
                                   f"in the parent but {tuple(param.shape[1:])} in this model")
                c_rows, p_rows = row_mapping(cdict, pdict)
                param.data[c_rows] = value.to(param.dtype)[p_rows]
                copied_rows[selected[0]] = (None if len(c_rows) == param.size(0)
                                            else c_rows.tolist())
            else:
                if tuple(value.shape) != tuple(param.shape):
                    raise mismatch(f"parameter {key} has shape {tuple(value.shape)} in the "
                                   f"parent but {tuple(param.shape)} in this model")
                param.data.copy_(value)
        loaded.append(selected[0])
        others = [n for n in names if n not in selected]
        if others:
            logger.info(f"init: {selected[0]} is tied to {', '.join(others)}: loaded with it")
    if "latent" in parts and not is_all and skipped and not any(
            parameter_part(n, latent_prefixes) == "latent" for n in loaded):
        raise mismatch("--init-parts latent: the parent has none of this model's latent "
                       f"parameters (e.g. {skipped[0]})")
    # parent parameters of the chosen parts that this model lacks (e.g. more layers)
    for k in parent_sd:
        part = parameter_part(k, latent_prefixes)
        if part in parts and part != "latent" and k not in child_keys:
            raise mismatch(f"the parent parameter {k} has no counterpart in this model")

    cov = {}
    if parent_dicts is not None:
        for side in ("source", "target"):
            cov[side] = coverage(child_dicts[side], parent_dicts[side])
    frozen = ({n: copied_rows.get(n) for n in loaded} if cfg.init_freeze_updates > 0
              else {})
    by_part: Dict[str, int] = {}
    for n in loaded:
        part = parameter_part(n, latent_prefixes)
        by_part[part] = by_part.get(part, 0) + 1
    logger.info(f"init from {path}: loaded {len(loaded)} parameter tensors "
                f"({', '.join(f'{p} {c}' for p, c in sorted(by_part.items()))})"
                + (f"; vocabulary coverage " + ", ".join(f"{s} {v:.1%}" for s, v in cov.items())
                   if cov else "")
                + (f"; frozen for {cfg.init_freeze_updates} updates" if frozen else ""))
    if skipped:
        logger.info(f"init: latent parameters not in the parent, left as initialised: "
                    f"{', '.join(skipped)}")
    return TransferResult(loaded=loaded, frozen=frozen, freeze_updates=cfg.init_freeze_updates,
                          coverage=cov, skipped=skipped)
