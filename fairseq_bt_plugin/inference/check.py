"""``fairseq-bt-check-model --path CKPT --data DIR --spm-model SPM -s S -t T``: load a model
as every tool that translates does (on CPU) and stop with one line when it cannot translate ``-s`` into ``-t``: checkpoint not found or not a translation model, other
languages, a dictionary missing or not matching the checkpoint, a sentencepiece model that
does not belong to the dictionaries. ``--path`` a CTranslate2 model directory (with
``--backend ctranslate2``): its vocabularies against the sentencepiece models, and its languages
where it records them. The pipeline checks a reused reverse model with it before any work
(``reverse_model``)."""
import sys
from typing import List, Optional

from ..errors import run_reporting_user_errors
from ..options import parse_dataclass
from .config import DecodingConfig
from .config import is_ct2_model_dir
from .translator import Translator
from .translator_ct2 import CT2ModelTranslator

PROG = "fairseq-bt-check-model"


def main(argv: Optional[List[str]] = None) -> None:
    def run() -> None:
        cfg = parse_dataclass(DecodingConfig, sys.argv[1:] if argv is None else argv, PROG,
                              __doc__.split("\n\n")[0])
        cfg.cpu = True
        if cfg.backend == "ctranslate2" and is_ct2_model_dir(cfg.path):
            model = CT2ModelTranslator(cfg)
        else:  # a checkpoint: loaded with fairseq (never converted here)
            model = Translator(cfg)
        print(f"{cfg.path}: translates {cfg.source_lang}->{cfg.target_lang} with the "
              f"dictionaries of {model.data} and {cfg.spm_model}")

    run_reporting_user_errors(run, PROG)


if __name__ == "__main__":
    main()
