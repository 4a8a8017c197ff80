"""The one place where raw text becomes model input and model output becomes raw text.

Training-data preparation, back-translation and evaluation all use :class:`TextProcessor`,
so they cannot disagree: Moses punctuation normalisation (sacremoses), then a sentencepiece
model; decoding joins the pieces back into detokenised text.
"""
import os
from typing import Iterable, List, Optional

from .errors import BTUserError, check


class TextProcessor:
    """Raw text <-> sentencepiece pieces, for one language.

    Args:
        spm_model: path of a trained sentencepiece ``.model`` file.
        lang: language code for the Moses punctuation normaliser.
        normalize: apply Moses punctuation normalisation before encoding.
    """

    def __init__(self, spm_model: str, lang: str, normalize: bool = True):
        import sentencepiece as spm

        check(os.path.isfile(spm_model), f"{spm_model}: sentencepiece model not found")
        self.sp = spm.SentencePieceProcessor()
        try:
            self.sp.Load(spm_model)
        except Exception as e:  # sentencepiece raises OSError/RuntimeError on bad files
            raise BTUserError(f"{spm_model}: not a sentencepiece model ({e})") from None
        self.lang = lang
        self.normalizer = None
        if normalize:
            from sacremoses import MosesPunctNormalizer

            self.normalizer = MosesPunctNormalizer(lang=lang)

    def normalize(self, line: str) -> str:
        line = line.strip()
        return self.normalizer.normalize(line).strip() if self.normalizer else line

    def encode(self, line: str) -> str:
        """Raw sentence -> space-separated pieces (what fairseq-preprocess binarizes)."""
        return " ".join(self.sp.EncodeAsPieces(self.normalize(line)))

    def decode(self, pieces: str) -> str:
        """Space-separated pieces -> detokenised sentence."""
        return self.sp.DecodePieces(pieces.split())


def train_sentencepiece(inputs: Iterable[str], model_prefix: str, vocab_size: int,
                        character_coverage: float = 1.0, model_type: str = "unigram",
                        input_sentence_size: int = 2_000_000,
                        user_symbols: Optional[List[str]] = None) -> str:
    """Train a (joint) sentencepiece model on already-normalised text files; returns the path
    of the ``.model`` file. Written under a temporary prefix and moved into place."""
    import sentencepiece as spm

    tmp = model_prefix + ".tmp"
    options = dict(
        input=",".join(inputs), model_prefix=tmp, vocab_size=vocab_size,
        character_coverage=character_coverage, model_type=model_type,
        input_sentence_size=input_sentence_size, shuffle_input_sentence=True,
        bos_id=-1, eos_id=-1, pad_id=-1, unk_id=0, minloglevel=2,
    )
    if user_symbols:
        options["user_defined_symbols"] = ",".join(user_symbols)
    spm.SentencePieceTrainer.Train(**options)
    for ext in ("model", "vocab"):
        os.replace(f"{tmp}.{ext}", f"{model_prefix}.{ext}")
    return model_prefix + ".model"
