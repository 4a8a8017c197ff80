"""Options of fairseq-bt-clean: the one place for their defaults and help text.

The experiment file's ``cleaning:`` section is this dataclass (the pipeline passes it to
fairseq-bt-clean as flags).
"""
from dataclasses import dataclass, field

from fairseq.dataclass import FairseqDataclass


@dataclass
class CleanConfig(FairseqDataclass):
    normalise: bool = field(
        default=True,
        metadata={"help": "Moses punctuation normalisation and whitespace squeezing of every "
                  "line before it is compared or kept (the normaliser prepare uses)"})
    max_chars: int = field(
        default=1000,
        metadata={"help": "drop monolingual lines and bitext pairs with a side longer than this "
                  "many characters"})
    dedup: bool = field(
        default=True,
        metadata={"help": "drop exact duplicates (monolingual lines; bitext pairs)"})
    contamination: bool = field(
        default=True,
        metadata={"help": "drop monolingual lines, and bitext pairs with a side, that occur in "
                  "the valid or a test set (either side, after normalisation)"})
    langid: bool = field(
        default=True,
        metadata={"help": "drop monolingual lines that language identification assigns to "
                  "another language"})
    langid_threshold: float = field(
        default=0.5,
        metadata={"help": "a line is dropped when its language is not the expected one with at "
                  "least this confidence"})
    bitext_max_len_ratio: float = field(
        default=0.0,
        metadata={"help": "drop bitext pairs whose longer side has more than this many times "
                  "the characters of the shorter one (0: off)"})
