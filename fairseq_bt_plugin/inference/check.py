"""``fairseq-bt-check-model --path CKPT --data DIR --spm-model SPM -s S -t T``: load a model
as every tool that translates does (on CPU) and stop with one line when it cannot translate ``-s`` into ``-t``: checkpoint not found or not a translation model, other
languages, a dictionary missing or not matching the checkpoint, a sentencepiece model that
does not belong to the dictionaries. The pipeline checks a reused reverse model with it
before any work (``REVERSE_CHECKPOINT``)."""
import sys
from typing import List, Optional

from ..errors import run_reporting_user_errors
from ..options import parse_dataclass
from .config import DecodingConfig
from .translator import Translator

PROG = "fairseq-bt-check-model"


def main(argv: Optional[List[str]] = None) -> None:
    def run() -> None:
        cfg = parse_dataclass(DecodingConfig, sys.argv[1:] if argv is None else argv, PROG,
                              __doc__.split("\n\n")[0])
        cfg.cpu = True
        model = Translator(cfg)
        print(f"{cfg.path}: translates {cfg.source_lang}->{cfg.target_lang} with the "
              f"dictionaries of {model.data} and {cfg.spm_model}")

    run_reporting_user_errors(run, PROG)


if __name__ == "__main__":
    main()
