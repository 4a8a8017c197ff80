"""Settings checked before any work against the tools that will use them (``fairseq-bt-experiment
settings --configs``, which ``scripts/pipeline.sh`` runs first).

- The generator's flags (``BT_ARGS``) parsed by ``fairseq-bt-backtranslate``'s own parser and
  checks.
- Every hydra override list a model of the run trains with, composed as
  ``fairseq-bt-hydra-train`` composes it (the profile, fairseq's schema) and each key checked
  against fairseq's groups and the dataclass (or the options) of the task, model (architecture),
  criterion, optimizer and lr scheduler the composed config selects, the plugin's ``bt_*``
  included: fairseq's ``++`` adds an unknown key without a word, so a typo
  (``++optimization.max_updat=100``) trained with the default, and a task key fails only when
  that model starts training.

An error is one line naming where the value came from (the experiment file's key, its
environment variable or its ``KEY=VALUE``) and, for an unknown key, the closest valid one.
"""
import argparse
import contextlib
import dataclasses
import difflib
import io
import logging
import os
import warnings
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..errors import BTUserError, check
from .config import ExperimentConfig

#: (where it came from: None for the pipeline's own, override)
Override = Tuple[Optional[str], str]
#: a placeholder for the paths the drivers pass (checked where they are used)
PATH = "/work"
GENERATOR = "fairseq-bt-backtranslate"
OWN = "the pipeline's own override"  # (a bug: tests/ compose every one the drivers pass)


def bt_train_overrides(exp: ExperimentConfig, upsample: str = "upsample_primary"
                       ) -> List[Tuple[str, str]]:
    """``(experiment key, override)`` of the +BT model's own hydra overrides: the bt keys that
    are set (bt.patience after the experiment's patience: the later value wins), then
    bt.train_args (``upsample``: the task's name of bt.upsample_primary;
    bt_multilingual's is bt_upsample_primary)."""
    bt = exp.bt
    tasks = (("bt.synthetic_fraction", "bt_synthetic_fraction", bt.synthetic_fraction),
             ("bt.upsample_primary", upsample, bt.upsample_primary),
             ("bt.weights", "bt_weighted", "true" if bt.weights is not None else None))
    patience = [] if bt.patience is None else [("bt.patience", f"checkpoint.patience={bt.patience}")]
    return [(key, f"++task.{name}={value}") for key, name, value in tasks if value is not None] \
        + patience + [("bt.train_args", a) for a in bt.train_args.split()]


# ---- the generator's flags ---------------------------------------------------------------

def check_generate_args(exp: ExperimentConfig, flags: str, origin: Callable[[str], str]) -> None:
    """``flags`` (BT_ARGS) as ``scripts/stages/backtranslate.sh`` passes them, parsed and
    checked by fairseq-bt-backtranslate (``origin(key)``: where an experiment key's value came
    from). The shell splits them at spaces, as here."""
    from ..generate.config import BTGenerateConfig, parse
    from ..options import build_parser

    bt = exp.bt
    if str(bt.mode) == "copy":  # no generator runs: its flags are not read
        return
    where = origin("bt.generate_args") if bt.generate_args else origin("bt")
    langs = list(exp.pairs) or [exp.source_lang]
    runs = [(str(bt.backend), ["-t", langs[0]])]  # a bilingual reverse model
    if exp.pairs:  # the multilingual reverse model: one fairseq generator
        runs.append(("fairseq", ["--target-langs", ",".join(langs)]))
    shards = ["--num-shards", str(bt.shards), "--shard-id", "0"] if bt.shards > 1 else []
    for backend, target in runs:
        argv = ["--input", PATH, "--path", PATH, "--data", PATH, "--spm-model", PATH,
                "-s", exp.target_lang, *target, "--mode", str(bt.mode), "--beam", str(bt.beam),
                "--backend", backend, *flags.split(), *shards, "--output-dir", PATH]
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                parse(BTGenerateConfig, argv, GENERATOR, "")
        except SystemExit:  # argparse's own error (or --help)
            lines = err.getvalue().strip().splitlines() or ["--help: not a generation flag"]
            message = lines[-1].split(": error: ", 1)[-1]
            options = build_parser(BTGenerateConfig, GENERATOR, "")._option_string_actions
            close = [c for a in flags.split() if a.startswith("-") and a not in options
                     for c in difflib.get_close_matches(a, list(options), n=1)]
            raise BTUserError(f"{where}: {GENERATOR} {flags}: {message}"
                              + (f" (did you mean {', '.join(close)}?)" if close else "")) from None
        except BTUserError as e:
            raise BTUserError(f"{where}: {GENERATOR} {flags}: {e}") from None


# ---- hydra overrides ---------------------------------------------------------------------

def training_runs(exp: ExperimentConfig, origin: Callable[[str], str]
                  ) -> Dict[str, List[Override]]:
    """Each kind of model the drivers train -> its hydra overrides after the profile, as
    ``scripts/stages/train.sh`` passes them (paths: :data:`PATH`); the experiment's own
    entries with where they came from. The shell splits each list at spaces, as here."""
    def own(items: List[str]) -> List[Override]:
        return [(None, a) for a in items]

    def user(key: str, text: str) -> List[Override]:
        return [(origin(key), a) for a in text.split()]

    src = next(iter(exp.pairs), exp.source_lang)
    base = own([f"task.data={PATH}", f"task.source_lang={src}", f"task.target_lang="
                f"{exp.target_lang}", f"checkpoint.save_dir={PATH}",
                f"common.tensorboard_logdir={PATH}"]) + user("train_args", exp.train_args)
    if exp.average_last > 1:
        base += own([f"checkpoint.keep_interval_updates={exp.average_last}"])
    if exp.patience is not None:
        base += own([f"checkpoint.patience={exp.patience}"])
    tag = own([f"++task.bt_tag='{exp.bt.tag}'"] if exp.bt.tag else [])
    init = [f"checkpoint.finetune_from_model={PATH}"] if str(exp.bt.init) == "baseline" else []
    runs = {
        "reverse, baseline": base,
        "bt": base + own([f"++task.bt_data={PATH}"]) + tag + own(init)
        + own(["optimization.max_update=1"])
        + [(origin(k), a) for k, a in bt_train_overrides(exp)],
        "bt_ft": base + tag + own([f"checkpoint.continue_once={PATH}",
                                   "checkpoint.reset_dataloader=true",
                                   "checkpoint.reset_meters=true", "optimization.max_update=1"]),
    }
    if exp.pairs:  # scripts/pipeline_multi.sh: bt_multilingual over every pair
        pairs = ",".join(f"{lang}-{exp.target_lang}" for lang in exp.pairs)
        multi = base + own(["task._name=bt_multilingual", "~task.source_lang",
                            "~task.target_lang", "++task.decoder_langtok=true",
                            "++task.sampling_method=temperature",
                            f"++task.sampling_temperature={exp.multilingual.sampling_temperature}",
                            f"++task.lang_pairs='{pairs}'", "++task.encoder_langtok=src"])
        multi_args = user("multilingual.train_args", exp.multilingual.train_args)
        runs["multi, multi_reverse"] = multi + own(["optimization.max_update=1"]) + multi_args
        runs["multi_bt"] = multi + tag + own([
            f"++task.extra_data='{{\"bt\": \"{PATH}\"}}'",
            f"++task.extra_lang_pairs='{{\"bt\": \"{pairs}\"}}'", "optimization.max_update=1"]) \
            + [(origin(k), a) for k, a in bt_train_overrides(exp, "bt_upsample_primary")] \
            + multi_args
    return runs


def _options(add_args: Callable[[argparse.ArgumentParser], None]) -> Set[str]:
    parser = argparse.ArgumentParser(allow_abbrev=False)
    add_args(parser)
    return {a.dest for a in parser._actions if a.dest != "help"}


def _fields(dc: Any) -> Set[str]:
    return {f.name for f in dataclasses.fields(dc)}


def _schema(group: str, name: Any) -> Tuple[Optional[Set[str]], Optional[Any]]:
    """The keys of ``group`` (task, model, ...) when its ``_name`` is ``name`` (None: any key,
    the group is off) and its dataclass (None: a legacy component's argparse options).
    Raises KeyError for a name nothing is registered as."""
    from fairseq.models import (ARCH_CONFIG_REGISTRY, ARCH_MODEL_NAME_REGISTRY,
                                MODEL_DATACLASS_REGISTRY, MODEL_REGISTRY)
    from fairseq.registry import REGISTRIES
    from fairseq.tasks import TASK_DATACLASS_REGISTRY, TASK_REGISTRY

    if name is None:
        return None, None
    if group == "task":
        dcs, classes = TASK_DATACLASS_REGISTRY, TASK_REGISTRY
    elif group == "model":
        model = ARCH_MODEL_NAME_REGISTRY.get(name, name)
        if model not in MODEL_REGISTRY:
            raise KeyError(sorted(set(MODEL_REGISTRY) | set(ARCH_MODEL_NAME_REGISTRY)))
        if model in MODEL_DATACLASS_REGISTRY:
            dc = MODEL_DATACLASS_REGISTRY[model]
            return _fields(dc), dc
        keys = _options(MODEL_REGISTRY[model].add_args)
        if name in ARCH_CONFIG_REGISTRY:  # what its architecture sets (getattr defaults)
            args = argparse.Namespace()
            with contextlib.suppress(Exception):
                ARCH_CONFIG_REGISTRY[name](args)
            keys |= set(vars(args))
        return keys | {"_name"}, None
    else:
        dcs, classes = REGISTRIES[group]["dataclass_registry"], REGISTRIES[group]["registry"]
    if name in dcs:
        return _fields(dcs[name]), dcs[name]
    if name not in classes:
        raise KeyError(sorted(classes))
    add_args = getattr(classes[name], "add_args", None)
    return (_options(add_args) | {"_name"} if add_args else None), None


def _schemas(cfg: DictConfig) -> Tuple[Dict[str, Optional[Set[str]]], List[Tuple[str, str]]]:
    """The keys of each group of ``cfg`` (None: any key) as training reads them, and
    ``(key, message)`` for each group whose ``_name`` nothing is registered as or whose values
    do not fit its dataclass."""
    from fairseq.dataclass.configs import FairseqConfig

    schemas: Dict[str, Optional[Set[str]]] = {}
    bad = []
    for f in dataclasses.fields(FairseqConfig):
        group, node = f.name, cfg.get(f.name)
        default = f.default_factory if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default):
            schemas[group] = _fields(default)
        elif isinstance(node, (DictConfig, str)):
            name = node if isinstance(node, str) else node.get("_name")
            try:
                schemas[group], dc = _schema(group, name)
            except KeyError as e:
                close = difflib.get_close_matches(str(name), e.args[0], n=1)
                bad.append((f"{group}._name", f"unknown {group} {name!r}"
                            + (f" (did you mean {close[0]!r}?)" if close else "")))
                continue
            if dc is not None and isinstance(node, DictConfig):  # values of the right types
                known = {k: node[k] for k in node if k in schemas[group]}
                try:
                    OmegaConf.merge(OmegaConf.structured(dc), known)
                except OmegaConfBaseException as e:
                    bad.append((f"{group}.{e.full_key}", _first_line(e)))
        else:
            schemas[group] = None
    return schemas, bad


def _valid(schemas: Dict[str, Optional[Set[str]]]) -> List[str]:
    return sorted(f"{g}.{k}" for g, keys in schemas.items() for k in keys or ()
                  if not k.startswith("_")) + sorted(schemas)


def _leaves(key: str, node: Any) -> Iterator[str]:
    if isinstance(node, DictConfig) and len(node):
        for k in node:
            yield from _leaves(f"{key}.{k}", node[k])
    else:
        yield key


def _unknown(cfg: DictConfig) -> Iterator[Tuple[str, str]]:
    """``(key, message)`` for each key of ``cfg`` that training would ignore or reject."""
    schemas, bad = _schemas(cfg)
    yield from bad
    for group in cfg:
        keys = schemas.get(group, set())
        node = cfg[group]
        for k in (node if keys is not None and isinstance(node, DictConfig) else [None]):
            if k is None and group not in schemas:
                yield from ((leaf, _unknown_key(leaf, schemas)) for leaf in _leaves(group, node))
            elif k is not None and k not in keys:
                yield from ((leaf, _unknown_key(leaf, schemas))
                            for leaf in _leaves(f"{group}.{k}", node[k]))


def _unknown_key(key: str, schemas: Dict[str, Optional[Set[str]]]) -> str:
    close = difflib.get_close_matches(key, _valid(schemas), n=1)
    return f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _origin(key: str, overrides: List[Override], profile: str) -> str:
    """Where ``key``'s value came from, for an error: the last override that sets it (and the
    override), else the profile."""
    for source, item in reversed(overrides):
        k = _key(item)
        if key == k or key.startswith(k + ".") or k.startswith(key + "."):
            return f"{source or OWN}: {item}"
    return profile


@contextlib.contextmanager
def _hydra(configs: str, profile: str) -> Iterator[Callable[[List[str]], DictConfig]]:
    """``compose(overrides)``: the profile with ``overrides``, as fairseq-bt-hydra-train
    composes it (``fairseq_cli.hydra_train``: the profile validated against FairseqConfig)."""
    from fairseq.dataclass.initialize import hydra_init
    from hydra import compose, initialize_config_dir
    from hydra.version import VersionBase

    hydra_init(profile)
    quiet = logging.getLogger("hydra")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    # hydra's version base is process-wide: fairseq composes with 1.1's semantics (it gives
    # none) and its hydra.experimental calls fail under 1.2 or later; kept as it was after
    base = VersionBase.instance().version_base
    try:
        with warnings.catch_warnings():  # hydra's note on matching the profile to the schema
            warnings.simplefilter("ignore")
            with initialize_config_dir(config_dir=os.path.abspath(configs), version_base="1.1"):
                yield lambda overrides: compose(config_name=profile, overrides=overrides)
    finally:
        quiet.setLevel(level)
        VersionBase.instance().version_base = base


def _first_line(e: Exception) -> str:
    """hydra's and omegaconf's message on one line (without their full_key/object_type
    details)."""
    text = str(e.__cause__ or e)  # hydra's "Error merging override X": the cause says why
    lines = [x.strip() for x in text.strip().splitlines()]
    lines = [x for x in lines if x and not x.startswith(("full_key:", "object_type=",
                                                         "reference_type="))]
    return "; ".join(lines[:2]) or type(e).__name__


def check_overrides(exp: ExperimentConfig, configs: str, origin: Callable[[str], str],
                    every_run: bool = False) -> None:
    """Compose each of :func:`training_runs` (those with overrides of the experiment's own,
    and the first: the profile; ``every_run``: all) and check its keys (:func:`_unknown`)."""
    profile = os.path.join(configs, f"{exp.profile}.yaml")
    runs = list(training_runs(exp, origin).items())
    runs = [r for i, r in enumerate(runs) if every_run or i == 0 or any(s for s, _ in r[1])]
    with _hydra(configs, exp.profile) as compose:
        for models, overrides in runs:
            cfg = _compose(compose, overrides, profile, models)
            for key, message in _unknown(cfg):
                raise BTUserError(f"{_origin(key, overrides, profile)} (models {models}): "
                                  f"{message}")


def _compose(compose: Callable[[List[str]], DictConfig], overrides: List[Override],
             profile: str, models: str) -> DictConfig:
    """The composed config; else one line naming the override that fails it (the first whose
    addition does): an unknown key named as such (without + hydra rejects it), else hydra's
    message."""
    from hydra.errors import HydraException

    errors = (HydraException, OmegaConfBaseException, ValueError)
    try:
        return compose([item for _, item in overrides])
    except errors:
        pass
    cfg = None
    for i in range(len(overrides) + 1):
        try:
            cfg = compose([item for _, item in overrides[:i]])
        except errors as e:
            if cfg is None:
                raise BTUserError(f"{profile} (models {models}): {_first_line(e)}") from None
            source, item = overrides[i - 1]
            where = f"{source or OWN}: {item} (models {models})"
            schemas, _ = _schemas(cfg)
            key = _key(item)
            group = key.split(".")[0]
            field = key.split(".")[1] if "." in key else None
            if not item.startswith("+") and (group not in schemas or (
                    field and schemas[group] is not None and field not in schemas[group])):
                raise BTUserError(f"{where}: {_unknown_key(key, schemas)}") from None
            raise BTUserError(f"{where}: {_first_line(e)}") from None
    raise AssertionError("composes in parts but not whole")
