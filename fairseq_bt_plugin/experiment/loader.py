"""Read an experiment file: schema check (omegaconf struct mode), overrides, validation.

Precedence, lowest first: the schema's defaults (:class:`.config.ExperimentConfig`), the
file, the environment variables of :data:`ENV` (set, even empty), ``key=value`` arguments.
Every error is one line naming the file and the key (or variable) at fault.
"""
import difflib
import os
import re
from typing import Any, Dict, List, Mapping, Optional, Tuple

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..errors import BTUserError, check
from .config import DERIVED, ExperimentConfig, FileConfig, ParallelConfig, environment, shell_only

#: environment variable -> the key(s) it overrides (``tests.*``: every test set), declared with
#: the keys (:func:`.config.environment`). Paths in them are relative to the current directory.
ENV = environment()
#: a variable that starts like a setting (BT_, MULTI_, ...: the first word of :data:`ENV`'s
#: names of two words or more) but is none is a typo (BT_UPDATE=3): an error
SETTING_PREFIXES = tuple(sorted({var.split("_")[0] + "_" for var in ENV if "_" in var}))
#: ... unless it is one of these, which the tests, benchmarks and scripts read themselves
NOT_SETTINGS = {
    "BT_SHARED_DATA": "tests/, benchmarks/: the folder of the optional corpora",
    "BT_TRACE_DIR": "tests/bt_trace: where a traced training writes",
    "PROGRESS_PLAIN": "scripts/stages/train.sh: plain progress lines (no live line)",
}
#: keys holding a path: relative to the current directory when they come from an override,
#: to this file's folder when they come from the file (work, cache_dir: always the former)
INPUT_PATHS = ["data_dir", "reverse_model.checkpoint", "reverse_model.data", "reverse_model.spm",
               "reverse_model.ct2_dir", "reverse_model.target_spm"]
#: keys holding a list of corpus files (``*``: any name)
PARALLEL_LISTS = ["bitext.source", "bitext.target", "valid.source", "valid.target",
                  "tests.*.source", "tests.*.target"]
FILE_LISTS = PARALLEL_LISTS + [f"pairs.*.{key}" for key in PARALLEL_LISTS] + [
    "mono.files", "mono.exclude", "mono_source.files", "mono_source.exclude"]
#: keys whose variable may be empty: null
OPTIONAL = ["baseline_parallel"]
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
LANG_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


class ExperimentLoader(yaml.SafeLoader):
    """YAML 1.2's booleans (``true``/``false`` only: a language code ``no``, ``on`` or ``yes``
    stays a string, where YAML 1.1 makes it a bool; a bool key still accepts them, as
    omegaconf converts) and a key given twice in one mapping is an error, not the last
    one winning."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Dict:
        seen = set()
        for key_node, _ in node.value:  # the mapping's own keys (not those merged in by <<)
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = self.construct_object(key_node)
                check(key not in seen, f"{self.name}:{key_node.start_mark.line + 1}: duplicate "
                      f"key {key!r}")
                seen.add(key)
        return super().construct_mapping(node, deep)


ExperimentLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
ExperimentLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def yaml_value(text: str, name: str = "<override>") -> Any:
    """``text`` read as the experiment file reads a value (:class:`ExperimentLoader`)."""
    loader = ExperimentLoader(text)
    loader.name = name
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _select(node: Any, path: str) -> List[Tuple[str, Any, str]]:
    """``(full key, parent container, last key)`` for each match of ``path`` in plain
    containers (``*`` matches every key of a mapping)."""
    parts = path.split(".")
    found = [("", node)]
    for part in parts[:-1]:
        nxt = []
        for key, n in found:
            if isinstance(n, dict):
                names = list(n) if part == "*" else [part] if part in n else []
                nxt += [(f"{key}{name}.", n[name]) for name in names]
        found = nxt
    return [(f"{key}{parts[-1]}", n, parts[-1]) for key, n in found
            if isinstance(n, dict) and parts[-1] in n]


def _files_as_mappings(data: Dict) -> None:
    """A file given as a string (or a list given as one file) becomes ``{path: ...}``."""
    for path in FILE_LISTS:
        for _, parent, last in _select(data, path):
            files = parent[last]
            files = [files] if isinstance(files, (str, dict)) else files
            if isinstance(files, list):
                parent[last] = [{"path": f} if isinstance(f, str) else f for f in files]


def _schema_error(where: str, e: OmegaConfBaseException) -> BTUserError:
    first = str(e).splitlines()[0]
    key = getattr(e, "full_key", None)
    return BTUserError(f"{where}: {key + ': ' if key else ''}{first}")


def _merge(cfg: DictConfig, data: Dict, where: str) -> DictConfig:
    _files_as_mappings(data)
    try:
        return OmegaConf.merge(cfg, data)
    except OmegaConfBaseException as e:
        raise _schema_error(where, e) from None


def _set(cfg: DictConfig, key: str, value: Any, where: str) -> DictConfig:
    data: Dict = {}
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return _merge(cfg, data, where)


def _expand(cfg: DictConfig, key: str) -> List[str]:
    """The keys that ``key`` names (``*``: every name of that mapping in ``cfg``)."""
    head, star, rest = key.partition(".*.")
    if not star:
        return [key]
    return [k for name in OmegaConf.select(cfg, head) for k in _expand(cfg, f"{head}.{name}.{rest}")]


def from_data(data: Dict, where: str) -> DictConfig:
    """The schema with a file's keys ``data`` merged in (unknown keys: an error)."""
    cfg = OmegaConf.structured(ExperimentConfig)
    OmegaConf.set_struct(cfg, True)
    OmegaConf.set_struct(cfg.tests, False)  # any names; each set's keys stay checked
    OmegaConf.set_struct(cfg.pairs, False)
    OmegaConf.set_struct(cfg.vars, False)
    return _merge(cfg, data, where)


#: characters a work directory's path cannot hold: training gets WORK's paths as hydra
#: overrides, whose grammar takes none of them in an unquoted value (``{`` also starts an
#: interpolation), and fairseq splits a data path at ':'
WORK_PATH_CHARACTERS = "!\"#&'(),:;<=>[]^`{}~"


def check_work_path(work: str, where: str) -> None:
    """A one-line error, before any work, for a work directory that training cannot use."""
    bad = [c for c in WORK_PATH_CHARACTERS if c in work]
    check(not bad, f"{where}: work (WORK): {work}: a work directory's path cannot hold "
          f"{' '.join(bad)} (training passes it to hydra, which takes none of "
          f"{WORK_PATH_CHARACTERS} there, and fairseq): choose another folder")


def load(path: str, overrides: Optional[List[str]] = None,
         env: Optional[Mapping[str, str]] = None) -> ExperimentConfig:
    """The experiment of file ``path`` with ``env`` (:data:`ENV`'s variables) and
    ``key=value`` ``overrides`` applied, checked (:func:`validate`); paths made absolute."""
    check(os.path.isfile(path), f"{path}: experiment file not found")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml_value(f.read(), path)
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise BTUserError(f"{path}: not a YAML file ({str(e).splitlines()[0]})") from None
    check(isinstance(data, dict), f"{path}: an experiment file is a mapping of keys (see "
          "configs/experiments/example.yaml)")
    cfg = from_data(data, path)
    here = os.path.dirname(os.path.abspath(path))
    for key in INPUT_PATHS:  # relative to this file's folder
        value = OmegaConf.select(cfg, key)
        if value or key == "data_dir":
            value = os.path.join(here, os.path.expanduser(value))
            OmegaConf.update(cfg, key, os.path.abspath(value))
    check_environment(env or {}, path)
    for var, keys in ENV.items():
        if env is None or var not in env:
            continue
        value: Any = env[var]
        for key in keys:
            if key in INPUT_PATHS and value:
                value = os.path.abspath(os.path.expanduser(value))
            if key in OPTIONAL and value == "":
                value = None  # empty: unset (the default)
            for k in _expand(cfg, key):
                cfg = _set(cfg, k, value, f"{path}: environment variable {var}={env[var]}")
    for item in overrides or []:
        check("=" in item, f"{item}: an override is KEY=VALUE, e.g. bitext.max_pairs=1000")
        key, _, text = item.partition("=")
        try:
            value = yaml_value(text) if text else ""
        except yaml.YAMLError as e:
            raise BTUserError(f"{path}: override {item}: not a YAML value ("
                              f"{str(e).splitlines()[0]})") from None
        if key in INPUT_PATHS and value:
            value = os.path.abspath(os.path.expanduser(str(value)))
        for k in _expand(cfg, key):
            cfg = _set(cfg, k, value, f"{path}: override {item}")
    try:
        exp = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as e:  # a required key missing, a bad interpolation
        raise _schema_error(path, e) from None
    exp.work = os.path.abspath(os.path.expanduser(exp.work))
    exp.cache_dir = os.path.abspath(os.path.expanduser(exp.cache_dir))
    check_work_path(exp.work, path)
    validate(exp, path)
    return exp


def origin(path: str, key: str, overrides: Optional[List[str]] = None,
           env: Optional[Mapping[str, str]] = None) -> str:
    """Where the value of ``key`` came from, for an error (as :func:`load` applies them): the
    last ``KEY=VALUE`` that sets it, else its environment variable, else the file."""
    for item in reversed(overrides or []):
        if item.partition("=")[0] == key:
            return f"{path}: {key} (KEY=VALUE argument)"
    for var, keys in ENV.items():
        if key in keys and env is not None and var in env:
            return f"{path}: {key} (environment variable {var})"
    return f"{path}: {key}"


def check_environment(env: Mapping[str, str], where: str) -> None:
    """No variable of ``env`` looks like a setting (:data:`SETTING_PREFIXES`) without being one
    (:data:`ENV`, :data:`NOT_SETTINGS`; the pipeline's own, which it exports: read again by a
    nested run, they are computed anew): it would be ignored without a word."""
    for var in sorted(env):
        if var.startswith(SETTING_PREFIXES) and var not in ENV and var not in NOT_SETTINGS \
                and var not in DERIVED and var not in shell_only():
            close = difflib.get_close_matches(var, list(ENV), n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise BTUserError(f"{where}: environment variable {var}={env[var]} is not a setting "
                              f"of the pipeline ({hint}the settings: README, The pipeline; or "
                              "unset it)")


def moses_languages() -> List[str]:
    """Language codes with rules of their own in sacremoses."""
    from sacremoses.corpus import NonbreakingPrefixes

    return sorted(set(NonbreakingPrefixes().available_langs.values()))


def _check_files(files: List[FileConfig], key: str, where: str, required: bool) -> None:
    check(bool(files) or not required, f"{where}: {key}: no files given")
    for i, f in enumerate(files):
        at = f"{where}: {key}[{i}]"
        check(bool(f.path or f.url), f"{at}: give a path or a url")
        check(not f.url or bool(f.md5), f"{at}: url {f.url} needs its md5 (to check the "
              "download)")
        check(not f.md5 or re.fullmatch(r"[0-9a-f]{32}", f.md5) is not None,
              f"{at}: md5 {f.md5!r} is not 32 hexadecimal digits")


def _check_parallel(p: ParallelConfig, key: str, where: str) -> None:
    _check_files(p.source, f"{key}.source", where, True)
    _check_files(p.target, f"{key}.target", where, True)
    for name in ("max_pairs", "skip"):
        check(getattr(p, name) >= 0, f"{where}: {key}.{name} must be >= 0, got "
              f"{getattr(p, name)}")


def _check_lang(exp: ExperimentConfig, key: str, lang: str, where: str) -> None:
    check(LANG_RE.match(lang) is not None, f"{where}: {key}: {lang!r} is not a language code")
    known = moses_languages()
    check(exp.allow_any_language or lang in known,
          f"{where}: {key}: unknown language code {lang!r} for the Moses normaliser "
          f"(known: {' '.join(known)}); allow_any_language: true uses its generic rules")


def _check_sets(bitext: ParallelConfig, valid: ParallelConfig, tests: Dict[str, ParallelConfig],
                key: str, where: str) -> None:
    """A pair's bitext, valid and test sets (``key``: the prefix of their keys)."""
    _check_parallel(bitext, f"{key}bitext", where)
    _check_parallel(valid, f"{key}valid", where)
    check(bool(tests), f"{where}: {key}tests: give at least one named test set")
    for name, test in tests.items():
        check(re.fullmatch(r"[A-Za-z0-9_-]+", name) is not None,
              f"{where}: {key}tests: name {name!r}: use letters, digits, '_' and '-'")
        _check_parallel(test, f"{key}tests.{name}", where)


def _check_pairs(exp: ExperimentConfig, where: str) -> None:
    """An experiment with several source languages (``pairs``)."""
    check(not exp.source_lang, f"{where}: source_lang: an experiment with pairs names its "
          "source languages there (pairs: {SRC: {bitext, valid, tests}, ...}), not both")
    for key in ("bitext", "valid"):
        p = getattr(exp, key)
        check(not (p.source or p.target), f"{where}: {key}: with pairs, give it per pair "
              f"(pairs.SRC.{key})")
    check(not exp.tests, f"{where}: tests: with pairs, give them per pair (pairs.SRC.tests)")
    for lang, pair in exp.pairs.items():
        _check_lang(exp, f"pairs.{lang}", lang, where)
        check(lang != exp.target_lang, f"{where}: pairs.{lang}: the target language "
              f"{exp.target_lang!r} is not a source language")
        _check_sets(pair.bitext, pair.valid, pair.tests, f"pairs.{lang}.", where)
    for key, ok in (("systems.rounds", exp.systems.rounds == 1), ("bt.filter", not exp.bt.filter),
                    ("bt.init", exp.bt.init == "scratch"),
                    ("reverse_model", not (exp.reverse_model.checkpoint or exp.reverse_model.ct2_dir)),
                    ("mono_source", not exp.mono_source.files),
                    ("bt.mode copy", str(exp.bt.mode) != "copy"), ("bt.copies", not exp.bt.copies)):
        check(ok, f"{where}: {key}: an experiment with pairs has no {key} (one pair only)")
    m = exp.multilingual
    for key, value in (("updates", m.updates), ("sampling_temperature", m.sampling_temperature)):
        check(value > 0, f"{where}: multilingual.{key} must be > 0, got {value}")


def filter_parts(text: str) -> Optional[Tuple[str, str]]:
    """bt.filter's ``METHOD:FRACTION`` as ``(METHOD, FRACTION)``; ``None`` when it is not one."""
    m = re.fullmatch(r"(dual|reverse):(0(?:\.\d+)?|\.\d+)", text)
    return (m.group(1), m.group(2)) if m else None


def validate(exp: ExperimentConfig, where: str) -> None:
    """Values the schema's types cannot check. Files are checked when they are read."""
    check(NAME_RE.match(exp.name) is not None,
          f"{where}: name: {exp.name!r}: use letters, digits, '.', '_' and '-'")
    _check_lang(exp, "target_lang", exp.target_lang, where)
    if exp.pairs:
        _check_pairs(exp, where)
    else:
        check(bool(exp.source_lang), f"{where}: source_lang: missing (or pairs: several source "
              "languages)")
        _check_lang(exp, "source_lang", exp.source_lang, where)
        check(exp.source_lang != exp.target_lang,
              f"{where}: source_lang and target_lang are both {exp.source_lang!r}")
        _check_sets(exp.bitext, exp.valid, exp.tests, "", where)
    for key, required in (("mono", True), ("mono_source", exp.systems.rounds > 1)):
        mono = getattr(exp, key)
        _check_files(mono.files, f"{key}.files", where, required)
        _check_files(mono.exclude, f"{key}.exclude", where, False)
        for name in ("max_lines", "skip"):
            check(getattr(mono, name) >= 0, f"{where}: {key}.{name} must be >= 0, got "
                  f"{getattr(mono, name)}")
    bt, sysm = exp.bt, exp.systems
    for key, value, ok, want in (
            ("spm_vocab", exp.spm_vocab, exp.spm_vocab >= 1, ">= 1"),
            ("bt.beam", bt.beam, bt.beam >= 1, ">= 1"),
            ("bt.nbest", bt.nbest, bt.nbest is None or bt.nbest >= 1, ">= 1"),
            ("bt.updates", bt.updates, bt.updates > 0, "> 0"),
            ("bt.shards", bt.shards, bt.shards >= 1, ">= 1"),
            ("bt.synthetic_fraction", bt.synthetic_fraction,
             bt.synthetic_fraction is None or 0 < bt.synthetic_fraction < 1, "in (0, 1)"),
            ("bt.upsample_primary", bt.upsample_primary,
             bt.upsample_primary is None or bt.upsample_primary >= 1, ">= 1"),
            ("systems.finetune", sysm.finetune, sysm.finetune >= 0, ">= 0"),
            ("systems.rounds", sysm.rounds, sysm.rounds >= 1, ">= 1"),
            ("eval_beam", exp.eval_beam, exp.eval_beam >= 1, ">= 1"),
            ("progress_interval", exp.progress_interval, exp.progress_interval >= 1, ">= 1"),
            ("average_last", exp.average_last, exp.average_last >= 0, ">= 0"),
            ("patience", exp.patience, exp.patience is None or exp.patience == -1
             or exp.patience >= 1, ">= 1, or -1 (none)"),
            ("bt.patience", bt.patience, bt.patience is None or bt.patience == -1
             or bt.patience >= 1, ">= 1, or -1 (none)"),
            ("bt.filter", bt.filter, not bt.filter or filter_parts(bt.filter) is not None,
             "METHOD:FRACTION, METHOD dual or reverse (e.g. dual:0.1)")):
        check(ok, f"{where}: {key} must be {want}, got {value}")
    for setting, value, args_key, args in (("patience", exp.patience, "train_args", exp.train_args),
                                           ("bt.patience", bt.patience, "bt.train_args",
                                            bt.train_args)):
        check(value is None or "checkpoint.patience" not in override_keys(args),
              f"{where}: {setting} and {args_key} both set checkpoint.patience: give it once")
    if str(bt.mode) == "copy":  # no model reads the monolingual text
        for key, ok in (("bt.filter", not bt.filter), ("systems.rounds", sysm.rounds == 1),
                        ("bt.copies", not bt.copies),
                        ("reverse_model", not (exp.reverse_model.checkpoint or exp.reverse_model.ct2_dir)),
                        ("bt.weights", bt.weights is None), ("bt.nbest", bt.nbest is None)):
            check(ok, f"{where}: {key} with bt.mode copy (copied text, no reverse model): "
                  f"leave {key} unset")
    beams = str(bt.mode) in ("beam", "noised_beam")
    check(bt.nbest is None or not beams or bt.nbest <= bt.beam, f"{where}: bt.nbest "
          f"{bt.nbest} is larger than bt.beam {bt.beam} (the best bt.nbest of the beam)")
    check(bt.nbest is None or str(bt.mode) != "greedy" or bt.nbest == 1,
          f"{where}: bt.nbest {bt.nbest} with bt.mode greedy (one output per sentence): 1")
    check(not exp.export_system or NAME_RE.match(exp.export_system) is not None,
          f"{where}: export_system: {exp.export_system!r}: best, a system's name (letters, "
          "digits, '.', '_' and '-') or empty (none)")
    check(NAME_RE.match(sysm.bt_name) is not None,
          f"{where}: systems.bt_name: {sysm.bt_name!r}: use letters, digits, '.', '_' and '-'")
    check(not bt.corpus or NAME_RE.match(bt.corpus) is not None,
          f"{where}: bt.corpus: {bt.corpus!r}: use letters, digits, '.', '_' and '-'")
    check(sysm.bt_name == "bt" or sysm.rounds == 1,
          f"{where}: systems.bt_name={sysm.bt_name}: variants are for systems.rounds=1; "
          "iterate in a new work directory")
    rev = exp.reverse_model
    given = [k for k in ("checkpoint", "data", "ct2_dir", "spm", "target_spm") if getattr(rev, k)]
    if rev.ct2_dir:
        check(not (rev.checkpoint or rev.data), f"{where}: reverse_model: give ct2_dir or "
              "checkpoint and data, not both")
        check(bool(rev.spm), f"{where}: reverse_model: ct2_dir needs spm (its sentencepiece "
              "model)")
        check(not bt.filter, f"{where}: bt.filter with reverse_model.ct2_dir: the filter "
              "scores with fairseq checkpoints (leave bt.filter unset)")
    else:
        check(not given or set(given) == {"checkpoint", "data", "spm"},
              f"{where}: reverse_model: give checkpoint, data and spm together (only "
              f"{', '.join(given)} given)" if "target_spm" not in given else
              f"{where}: reverse_model.target_spm is for a ct2_dir")
    for key in given:
        check(os.path.exists(getattr(rev, key)),
              f"{where}: reverse_model.{key}: {getattr(rev, key)}: not found")


def override_keys(args: str) -> List[str]:
    """The keys of a string of hydra overrides (``++a.b=1 c=2 ~d`` -> ``a.b c d``)."""
    return [w.lstrip("+~").split("=", 1)[0] for w in args.split()]


def check_profile(exp: ExperimentConfig, configs: str, where: str) -> None:
    path = os.path.join(configs, f"{exp.profile}.yaml")
    names = sorted(p[:-5] for p in os.listdir(configs) if p.endswith(".yaml") and p[0] != "_")
    check(os.path.isfile(path), f"{where}: profile: no {path} (profiles: {' '.join(names)})")
