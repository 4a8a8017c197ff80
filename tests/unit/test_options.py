"""The tools' option parser (options.py, which imports no fairseq) makes for every tool's config
the parser fairseq's own ``gen_parser_from_dataclass`` makes: the same flags, aliases, defaults,
types, choices, required options, bool actions and help. Its ``ChoiceEnum`` behaves as
fairseq's; a field it cannot make an option of is an error naming it."""
import argparse
import dataclasses
from typing import List

import pytest
from fairseq.dataclass import ChoiceEnum as FairseqChoiceEnum
from fairseq.dataclass import FairseqDataclass
from fairseq.dataclass.utils import gen_parser_from_dataclass
from omegaconf import MISSING, OmegaConf

from fairseq_bt_plugin.average import AverageConfig
from fairseq_bt_plugin.cleaning.clean import CleanCommandConfig
from fairseq_bt_plugin.evaluate import EvaluateConfig
from fairseq_bt_plugin.export import ExportConfig
from fairseq_bt_plugin.filtering.cli import BTFilterConfig
from fairseq_bt_plugin.generate.config import BTConvertConfig, BTCopyConfig, BTGenerateConfig, \
    BTMergeConfig
from fairseq_bt_plugin.inference.config import DecodingConfig
from fairseq_bt_plugin.options import ChoiceEnum, build_parser
from fairseq_bt_plugin.prepare import PrepareConfig
from fairseq_bt_plugin.report import ReportConfig
from fairseq_bt_plugin.translate import TranslateConfig

TOOL_CONFIGS = [AverageConfig, CleanCommandConfig, EvaluateConfig, ExportConfig, BTFilterConfig,
                BTGenerateConfig, BTMergeConfig, BTCopyConfig, BTConvertConfig, DecodingConfig,
                PrepareConfig, ReportConfig, TranslateConfig]


def fairseqs_parser(cls) -> argparse.ArgumentParser:
    """The parser fairseq makes of ``cls`` (a FairseqDataclass of it where it is none), with
    omegaconf's MISSING as options.build_parser treats it: required, no default."""
    if not issubclass(cls, FairseqDataclass):
        cls = dataclasses.make_dataclass(cls.__name__, [], bases=(cls, FairseqDataclass))
    parser = argparse.ArgumentParser(prog="tool", description="d",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    gen_parser_from_dataclass(parser, cls())
    for action in parser._actions:
        if action.default == MISSING:
            action.required, action.default = True, None
    return parser


def described(parser: argparse.ArgumentParser) -> List[tuple]:
    return [(type(a).__name__, tuple(a.option_strings), a.dest, a.default, a.type, a.choices,
             a.required, a.nargs, a.const, a.help) for a in parser._actions]


@pytest.mark.parametrize("cls", TOOL_CONFIGS, ids=lambda c: c.__name__)
def test_every_tools_parser_is_fairseqs(cls):
    ours = build_parser(cls, "tool", "d")
    assert described(ours) == described(fairseqs_parser(cls))
    assert ours.format_help() == fairseqs_parser(cls).format_help()


def test_choices_behave_as_fairseqs():
    ours, theirs = ChoiceEnum(["a", "b_c"]), FairseqChoiceEnum(["a", "b_c"])
    for enum in (ours, theirs):
        member = enum["b_c"]
        assert str(member) == repr(member) == "b_c" and member == "b_c" and f"{member}" == "b_c"
        assert hash(member) == hash("b_c") and [m.value for m in enum] == ["a", "b_c"]

    @dataclasses.dataclass
    class Config:
        choice: ours = "a"

    cfg = OmegaConf.structured(Config)
    cfg.choice = "b_c"
    assert cfg.choice == "b_c" and str(cfg.choice) == "b_c"
    with pytest.raises(Exception):
        cfg.choice = "d"


def test_a_field_that_is_no_option_is_an_error():
    @dataclasses.dataclass
    class Config:
        names: List[str] = dataclasses.field(default_factory=list)

    with pytest.raises(TypeError, match="--names"):
        build_parser(Config, "tool", "d")
