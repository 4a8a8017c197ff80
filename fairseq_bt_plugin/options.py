"""Command-line options of the plugin's own tools, from their FairseqDataclass configs.

Each dataclass is the one place for defaults and help text; :func:`parse_dataclass` turns it
into an argparse parser with fairseq's own ``gen_parser_from_dataclass``.
"""
import argparse
import dataclasses
from typing import List, Type, TypeVar

from fairseq.dataclass import FairseqDataclass
from fairseq.dataclass.utils import gen_parser_from_dataclass
from omegaconf import MISSING

C = TypeVar("C", bound=FairseqDataclass)


def build_parser(cls: Type[FairseqDataclass], prog: str, description: str
                 ) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    gen_parser_from_dataclass(parser, cls())
    for action in parser._actions:  # fairseq marks required fields with omegaconf's "???"
        if action.default == MISSING:
            action.required, action.default = True, None
    return parser


def parse_dataclass(cls: Type[C], argv: List[str], prog: str, description: str) -> C:
    """``cls`` filled from ``argv`` (``--help`` shows every field's help text)."""
    args = build_parser(cls, prog, description).parse_args(argv)
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in vars(args).items() if k in names})


def to_argv(cfg: FairseqDataclass) -> List[str]:
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
