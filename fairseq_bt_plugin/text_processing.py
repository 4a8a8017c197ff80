"""The one place where raw text becomes model input and model output becomes raw text.

Training-data preparation, back-translation and evaluation all use :class:`TextProcessor`,
so they cannot disagree: Moses punctuation normalisation (sacremoses), then a sentencepiece
model; decoding joins the pieces back into detokenised text.
"""
import gzip
import os
from typing import Callable, Iterable, Iterator, List, Optional, Sequence, Tuple

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
        self.normalize = moses_normalizer(lang) if normalize else str.strip

    def encode(self, line: str) -> str:
        """Raw sentence -> space-separated pieces (what fairseq-preprocess binarizes)."""
        return " ".join(self.sp.EncodeAsPieces(self.normalize(line)))

    def decode(self, pieces: str) -> str:
        """Space-separated pieces -> detokenised sentence."""
        return self.sp.DecodePieces(pieces.split())

    def decode_keeping(self, pieces: str, keep: Sequence[str]) -> str:
        """Like :meth:`decode`, but pieces in ``keep`` (e.g. a noise filler ``<unk>``) are
        written as they are instead of being decoded (sentencepiece turns ``<unk>`` into ⁇)."""
        out, run = [], []
        for piece in pieces.split():
            if piece in keep:
                if run:
                    out.append(self.sp.DecodePieces(run))
                    run = []
                out.append(piece)
            else:
                run.append(piece)
        if run:
            out.append(self.sp.DecodePieces(run))
        return " ".join(x for x in out if x)


def moses_normalizer(lang: str) -> Callable[[str], str]:
    """Moses punctuation normalisation (sacremoses) of one stripped line."""
    from sacremoses import MosesPunctNormalizer

    normalizer = MosesPunctNormalizer(lang=lang)
    return lambda line: normalizer.normalize(line.strip()).strip()


def open_binary(path: str):
    """A plain or gzip-compressed (by the ``.gz`` suffix) file, opened for reading bytes."""
    check(os.path.isfile(path), f"{path}: input file not found")
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def read_raw_lines(path: str) -> Iterator[Tuple[int, Optional[str]]]:
    """``(line number from 1, text)`` of each line of a plain or ``.gz`` text file, without
    the line end; text is ``None`` for a line that is not valid UTF-8 (report it with
    :func:`invalid_utf8_error`)."""
    with open_binary(path) as f:
        try:
            for n, raw in enumerate(f, start=1):
                try:
                    yield n, raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError:
                    yield n, None
        except (OSError, EOFError) as e:  # truncated or corrupt .gz
            raise BTUserError(f"{path}: cannot read ({e})") from None


def invalid_utf8_error(path: str, line: int) -> BTUserError:
    return BTUserError(f"{path}:{line}: invalid UTF-8 (use --skip-invalid to skip such lines)")


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
        hard_vocab_limit=False,  # small corpora: a smaller vocabulary instead of an error
    )
    if user_symbols:
        options["user_defined_symbols"] = ",".join(user_symbols)
    spm.SentencePieceTrainer.Train(**options)
    for ext in ("model", "vocab"):
        os.replace(f"{tmp}.{ext}", f"{model_prefix}.{ext}")
    return model_prefix + ".model"
