"""Command-line options of the plugin's own tools, from their dataclass configs.

Each dataclass is the one place for defaults and help text; :func:`parse_dataclass` turns it
into an argparse parser as fairseq's ``gen_parser_from_dataclass`` does for fairseq's own
configs (the same flags, defaults, choices and help; a test compares the two for every tool),
without importing fairseq: a tool that does not need fairseq (``fairseq-bt-translate --model``)
starts without it.
"""
import argparse
import dataclasses
import enum
import typing
from typing import Any, Dict, List, Tuple, Type, TypeVar

from omegaconf import MISSING

C = TypeVar("C")


class StrEnum(enum.Enum):
    """A choice that prints and compares as its text, as fairseq's ``StrEnum`` does."""

    def __str__(self):
        return self.value

    def __eq__(self, other):
        return self.value == other

    def __repr__(self):
        return self.value

    def __hash__(self):
        return hash(str(self))


def ChoiceEnum(choices: List[str]) -> Type[StrEnum]:  # noqa: N802  (fairseq's name)
    """The type of a tool's option that takes one of ``choices``: fairseq's ``ChoiceEnum``
    without importing fairseq (the configs fairseq itself reads, of tasks, models and criteria,
    use fairseq's)."""
    return StrEnum("Choices", {c: c for c in choices})


def _argument(f: dataclasses.Field) -> Tuple[List[str], Dict[str, Any]]:
    """The flags and ``add_argument`` keywords of one field, by fairseq's rules: ``Optional[X]``
    is X, an enum gives its values as choices, a bool flag flips its default, omegaconf's
    MISSING makes the option required; ``argparse_alias`` / ``argparse_const`` metadata."""
    kind = str if f.type is Any else f.type
    args = typing.get_args(kind)
    if typing.get_origin(kind) is typing.Union and len(args) == 2 and type(None) in args:
        kind = args[0]
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING \
        else f.default
    if not isinstance(kind, type) or issubclass(kind, (list, tuple)) or \
            (isinstance(default, str) and default.startswith("${")) or default is \
            dataclasses.MISSING or dataclasses.is_dataclass(kind):
        raise TypeError(f"option --{f.name}: a field of type {kind} (default {default!r}) is "
                        "not a command-line option this parser makes")
    kwargs: Dict[str, Any] = {"help": f.metadata.get("help")}
    if issubclass(kind, enum.Enum):
        kwargs.update(type=str, choices=[c.value for c in kind],
                      default=default.value if isinstance(default, enum.Enum) else default)
    elif kind is bool:
        kwargs.update(action="store_false" if default is True else "store_true",
                      default=default)
    else:
        kwargs.update(type=kind, default=default)
    if kwargs["default"] == MISSING:
        kwargs.update(required=True, default=None)
    if f.metadata.get("argparse_const") is not None:
        kwargs.update(const=f.metadata["argparse_const"], nargs="?")
    flags = ["--" + f.name.replace("_", "-")]
    if f.metadata.get("argparse_alias") is not None:
        flags.append(f.metadata["argparse_alias"])
    return flags, kwargs


def build_parser(cls: Type, prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for f in dataclasses.fields(cls):
        if not f.name.startswith("_"):  # fairseq's _name
            flags, kwargs = _argument(f)
            parser.add_argument(*flags, **kwargs)
    return parser


def parse_dataclass(cls: Type[C], argv: List[str], prog: str, description: str) -> C:
    """``cls`` filled from ``argv`` (``--help`` shows every field's help text)."""
    args = build_parser(cls, prog, description).parse_args(argv)
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in vars(args).items() if k in names})


def to_argv(cfg: Any) -> List[str]:
    """The flags that :func:`parse_dataclass` turns back into ``cfg``: one for each field whose
    value is not its default (a bool flag flips the default, as fairseq's parser does)."""
    argv = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING \
            else f.default
        if f.name.startswith("_") or value == default:
            continue
        flag = "--" + f.name.replace("_", "-")
        argv += [flag] if isinstance(default, bool) else [flag, str(value)]
    return argv
