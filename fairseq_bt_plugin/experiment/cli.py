"""``fairseq-bt-experiment``: the experiment file's settings for ``scripts/pipeline.sh``, its
raw data, and the example file with every key.

  settings FILE [KEY=VALUE ...]   check the file; print the pipeline's settings as shell
                                  assignments, then SETTING_NAMES (their names, for
                                  export; environment variables override the file,
                                  KEY=VALUE both); --save writes the result to
                                  WORK/experiments/SHA.yaml (EXPERIMENT_FILE)
  raw FILE [KEY=VALUE ...] --out DIR [--origin FILE]
                                  write the raw data (train, valid, test_NAME, mono) to DIR
  example                         print configs/experiments/example.yaml (every key, its help)
  common-mono FILE... --out FILE  the lines every FILE has (a multilingual run's monolingual
                                  text, cleaned per pair)
"""
import argparse
import dataclasses
import functools
import hashlib
import json
import os
import shlex
import sys
import textwrap
from typing import Any, Dict, List, Optional

import yaml
from omegaconf import OmegaConf

from ..atomic import atomic_open
from ..errors import run_reporting_user_errors
from ..options import to_argv
from . import loader, preflight
from .config import DERIVED, ExperimentConfig, FileConfig, ParallelConfig, shell_only
from .raw import common_lines, materialise

PROG = "fairseq-bt-experiment"


def as_dict(exp: ExperimentConfig) -> Dict:
    """Every key of ``exp`` as plain YAML values (fairseq's ``_name`` left out)."""
    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != "_name"}
        return [strip(v) for v in node] if isinstance(node, list) else node

    return strip(OmegaConf.to_container(OmegaConf.structured(exp), enum_to_str=True))


def generate_args(exp: ExperimentConfig) -> str:
    """fairseq-bt-backtranslate's flags: the bt keys that are set, then bt.generate_args."""
    bt = exp.bt
    flags = ([f"--nbest {bt.nbest}"] if bt.nbest is not None else []) \
        + ([f"--weights {bt.weights}"] if bt.weights is not None else [])
    return " ".join(flags + ([bt.generate_args] if bt.generate_args else []))


def bt_train_args(exp: ExperimentConfig, upsample: str = "upsample_primary") -> str:
    """The +BT model's hydra overrides (:func:`.preflight.bt_train_overrides`)."""
    return " ".join(item for _, item in preflight.bt_train_overrides(exp, upsample))


#: the experiment's keys that decide the raw data (WORK/raw); where the files are (data_dir)
#: is not one: the data stage records the files it read by their contents
DATA_KEYS = ("source_lang", "target_lang", "allow_any_language", "seed", "bitext", "valid",
             "tests", "pairs", "mono", "mono_source", "cleaning")


def data_settings(exp: ExperimentConfig) -> str:
    """:data:`DATA_KEYS` as one line of JSON (the data stage's recorded setting)."""
    node = as_dict(exp)
    return json.dumps({k: node[k] for k in DATA_KEYS}, sort_keys=True, ensure_ascii=False)


def shell_text(value: Any) -> str:
    """A key's value as its shell variable holds it: read back as the environment variable, it
    gives the same value (a run started by another reads its exported settings again)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    return str(value)


def shell_settings(exp: ExperimentConfig, saved: str) -> Dict[str, str]:
    """The variables ``scripts/pipeline.sh`` and its stages read (every one exported): each
    setting's own variable (:data:`.loader.ENV`, :func:`.config.shell_only`), then
    :data:`.config.DERIVED`."""
    node = OmegaConf.create(as_dict(exp))
    values = {var: shell_text(OmegaConf.select(node, keys[0]))
              for var, keys in loader.ENV.items() if "*" not in keys[0]}
    values.update({var: shell_text(OmegaConf.select(node, key))
                   for var, key in shell_only().items()})
    method, fraction = loader.filter_parts(exp.bt.filter) or ("", "")
    derived = {
        "EXPERIMENT_FILE": saved,
        "PAIRS": " ".join(f"{lang}-{exp.target_lang}" for lang in exp.pairs),
        "SRC_LANGS": " ".join(exp.pairs),
        "TEST_SETS": " ".join(exp.tests or dict.fromkeys(
            name for pair in exp.pairs.values() for name in pair.tests)),
        "BT_GENERATE_FLAGS": generate_args(exp), "BT_OVERRIDES": bt_train_args(exp),
        "MULTI_BT_OVERRIDES": bt_train_args(exp, "bt_upsample_primary"),
        "BT_FILTER_METHOD": method, "BT_FILTER_FRACTION": fraction,
        "CLEAN_ARGS": " ".join(to_argv(exp.cleaning)), "DATA_SETTINGS": data_settings(exp),
    }
    values.update(derived)
    return values


def save(exp: ExperimentConfig, origin: str) -> str:
    """Write the experiment as this run applies it (overrides included) to
    ``WORK/experiments/SHA.yaml``, named by its contents, so runs of other settings in one WORK
    never rewrite each other's file; the pipeline copies it to ``WORK/experiment.yaml`` once
    the run reaches its report. Returns the path."""
    text = f"# {os.path.abspath(origin)} as the pipeline ran it (overrides applied)\n" \
        + yaml.safe_dump(as_dict(exp), sort_keys=False, allow_unicode=True)
    body = text.split("\n", 1)[1]
    saved = os.path.join(exp.work, "experiments",
                         hashlib.sha256(body.encode("utf-8")).hexdigest()[:12] + ".yaml")
    if not os.path.isfile(saved):  # a re-run leaves the run directory as it was
        os.makedirs(os.path.dirname(saved), exist_ok=True)
        with atomic_open(saved) as f:
            f.write(text)
    return saved


def settings(args: argparse.Namespace) -> None:
    exp = loader.load(args.file, args.overrides, os.environ)
    if args.configs:  # the pipeline's settings step: checked by the tools that use them
        loader.check_profile(exp, args.configs, args.file)
        origin = functools.partial(loader.origin, args.file, overrides=args.overrides,
                                   env=os.environ)
        preflight.check_generate_args(exp, generate_args(exp), origin)
        preflight.check_overrides(exp, args.configs, origin)
    saved = save(exp, args.file) if args.save else ""
    values = shell_settings(exp, saved)
    for var, value in values.items():
        print(f"{var}={shlex.quote(value)}")
    print(f"SETTING_NAMES={shlex.quote(' '.join(values))}")


def common_mono(args: argparse.Namespace) -> None:
    n = common_lines(args.files, args.out)
    print(f"{PROG} common-mono: {args.out}: {n} lines (of {len(args.files)} files)",
          file=sys.stderr)


def raw(args: argparse.Namespace) -> None:
    exp = loader.load(args.file, args.overrides)
    summary = materialise(exp, args.origin or args.file, args.out)
    parts = []
    for k, v in summary.items():  # with pairs: the counts of each pair's files
        items = [(k, v)] if "kept" in v else [(f"{k} {n}", x) for n, x in v.items()]
        parts += [f"{n} {x['kept']}" for n, x in items]
    kept = ", ".join(parts)
    print(f"{PROG} raw: {args.out}: {kept}", file=sys.stderr)


#: the example experiment: a user's own files (configs/experiments/example.yaml)
EXAMPLE = """
name: my_experiment
source_lang: de
target_lang: en
data_dir: corpus
bitext: {source: [train.de.gz, more/train2.de], target: [train.en.gz, more/train2.en],
         max_pairs: 100000}
valid: {source: [dev.de], target: [dev.en]}
tests:
  news: {source: [test.de], target: [test.en]}
  web: {source: [{url: "https://example.org/web.de.gz", md5: 0123456789abcdef0123456789abcdef}],
        target: [{url: "https://example.org/web.en.gz", md5: fedcba9876543210fedcba9876543210}]}
mono: {files: [news.en.gz], max_lines: 1000000, dedup: true}
"""


def _comment(text: str, indent: str, hang: str = "") -> List[str]:
    return textwrap.wrap(text, 94 - len(indent), initial_indent=f"{indent}# ",
                         subsequent_indent=f"{indent}# {hang}")


def _emit(node: Any, cls: type, indent: str, out: List[str]) -> None:
    for f in dataclasses.fields(cls):
        if f.name.startswith("_"):
            continue
        value = node[f.name]
        env = f.metadata.get("env")
        env = ", ".join(f"{var}: {sub}" if sub else var for sub, var in (
            {"": env} if isinstance(env, str) else env or {}).items())
        out += _comment(f.metadata.get("help", "") + (f" (environment variable {env})"
                                                      if env else ""), indent)
        nested = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(nested):
            out.append(f"{indent}{f.name}:")
            _emit(value, type(nested), indent + "  ", out)
        elif isinstance(nested, dict) and value:  # the named test sets
            out.append(f"{indent}{f.name}:")
            for name, test in value.items():
                out.append(f"{indent}  {name}:")
                _emit(test, ParallelConfig, indent + "    ", out)
        else:
            if isinstance(value, list):  # corpus files: a path alone as a string
                value = [{k: v for k, v in x.items() if v} for x in value]
                value = [x["path"] if list(x) == ["path"] else x for x in value]
            text = yaml.safe_dump({f.name: value}, default_flow_style=True, width=10000,
                                  allow_unicode=True, sort_keys=False).strip()[1:-1]
            out.append(f"{indent}{text}")


def example_text() -> str:
    """configs/experiments/example.yaml: :data:`EXAMPLE` with every other key at its default,
    each with its help."""
    node = as_dict(OmegaConf.to_object(loader.from_data(yaml.safe_load(EXAMPLE), "example")))
    node["work"] = ExperimentConfig.__dataclass_fields__["work"].default  # unresolved
    files = {f.name: f.metadata["help"] for f in dataclasses.fields(FileConfig) if f.name[0] != "_"}
    out = ["# An experiment file with every key (generated by: fairseq-bt-experiment example).",
           "# Run it: bash scripts/pipeline.sh FILE [KEY=VALUE ...]. A key left out keeps the",
           "# value shown here; environment variables (README) and KEY=VALUE override the file.",
           "#", "# A corpus file is a path, or a mapping {path, url, md5}:"]
    for name, help_text in files.items():
        out += _comment(f"  {name}: {help_text}", "", "    ")
    out.append("")
    _emit(node, ExperimentConfig, "", out)
    return "\n".join(out) + "\n"


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("settings", "raw"):
        p = sub.add_parser(name)
        p.add_argument("file", help="the experiment file (YAML)")
        p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                       help="override a key, e.g. bitext.max_pairs=1000")
        if name == "settings":
            p.add_argument("--configs", default="",
                           help="the profiles' folder: check the profile, the hydra overrides "
                           "and the generator's flags against the tools that use them")
            p.add_argument("--save", action="store_true",
                           help="write the settings to WORK/experiments/SHA.yaml, named by their "
                           "contents (EXPERIMENT_FILE)")
        else:
            p.add_argument("--out", required=True, help="the raw data folder (must not exist)")
            p.add_argument("--origin", default="",
                           help="the file to name in errors (FILE was made from it)")
    sub.add_parser("example")
    p = sub.add_parser("common-mono")
    p.add_argument("files", nargs="+", help="the cleaned monolingual text of each pair")
    p.add_argument("--out", required=True, help="the lines every file has, in the first's order")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    def run() -> None:
        if args.command == "example":
            sys.stdout.write(example_text())
        else:
            {"settings": settings, "raw": raw, "common-mono": common_mono}[args.command](args)

    run_reporting_user_errors(run, PROG)


if __name__ == "__main__":
    main()
