"""The one place where raw text becomes model input and model output becomes raw text.

Training-data preparation, back-translation and evaluation all use :class:`TextProcessor`,
so they cannot disagree: Moses punctuation normalisation (sacremoses), then a sentencepiece
model; decoding joins the pieces back into detokenised text.
"""
import gzip
import os
import re
from collections import Counter
from typing import BinaryIO, Callable, Iterable, Iterator, List, Optional, Sequence, Tuple

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

    def encode_keeping(self, line: str, keep: Sequence[str]) -> str:
        """Like :meth:`encode`, but words in ``keep`` (written by :meth:`decode_keeping`) stay
        one piece each instead of being encoded."""
        words = line.split()
        if not any(w in keep for w in words):
            return self.encode(line)
        out, run = [], []
        for word in words:
            if word in keep:
                out += [self.encode(" ".join(run))] if run else []
                out.append(word)
                run = []
            else:
                run.append(word)
        if run:
            out.append(self.encode(" ".join(run)))
        return " ".join(x for x in out if x)

    def decode(self, pieces: str) -> str:
        """Space-separated pieces -> detokenised sentence (on one line: see
        :func:`one_line`)."""
        return one_line(self.sp.DecodePieces(pieces.split()))[0]

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
        return one_line(" ".join(x for x in out if x))[0]

    def check_dictionary(self, dict_path: str, spm_path: str, min_share: float = 0.9) -> None:
        """Stop unless this sentencepiece model (file ``spm_path``) is the one the fairseq
        dictionary ``dict_path`` was built with: at least ``min_share`` of the dictionary's
        symbols must be pieces of the model (not counting fairseq's own symbols: ``<...>``
        special symbols and tags, and the ``madeupwordNNNN`` padding). A dictionary built from
        this model's output has all of them (tested); one of another sentencepiece model
        shares only the common pieces (61% for a model trained on other lines of the same
        corpus with the same vocabulary size, in the tests' data)."""
        symbols = []
        with open(dict_path, encoding="utf-8") as f:
            for line in f:
                symbol = line.rstrip("\n").rsplit(" ", 1)[0]
                if symbol and not (symbol.startswith("<") and symbol.endswith(">")) \
                        and not re.fullmatch(r"madeupword\d{4}", symbol):
                    symbols.append(symbol)
        if not symbols:
            return
        unk = self.sp.unk_id()
        known = sum(1 for s in symbols if self.sp.PieceToId(s) != unk)
        check(known >= min_share * len(symbols),
              f"{spm_path}: sentencepiece model does not belong to the dictionary {dict_path} "
              f"(only {known} of its {len(symbols)} symbols are pieces of the model, "
              f"{min_share:.0%} needed): pass the model the dictionary was made with")

    def check_pieces_known(self, symbols: List[str], name: str, spm_path: str,
                           min_share: float = 0.9) -> None:
        """Stop unless the vocabulary ``symbols`` (``name`` in the error) knows this
        sentencepiece model's pieces: at least ``min_share`` of them (control, unknown and byte
        pieces aside). The check of a model made elsewhere, whose vocabulary may be joint
        (OPUS-MT's holds the pieces of both languages' sentencepiece models)."""
        vocabulary = set(symbols)
        sp = self.sp
        pieces = [sp.IdToPiece(i) for i in range(sp.GetPieceSize())
                  if not (sp.IsControl(i) or sp.IsUnknown(i) or sp.IsByte(i))]
        known = sum(1 for p in pieces if p in vocabulary)
        check(known >= min_share * len(pieces),
              f"{spm_path}: sentencepiece model does not belong to {name} (only {known} of "
              f"its {len(pieces)} pieces are in the vocabulary, {min_share:.0%} needed): pass "
              "the model's own sentencepiece model")


def same_sentencepiece_model(a: str, b: str) -> bool:
    """Whether the sentencepiece model files ``a`` and ``b`` are one model: the same path, or
    equal but for the training input and output names recorded in them (a model trained again
    on the same text elsewhere). Without protobuf (which reads them): only the same path."""
    if os.path.abspath(a) == os.path.abspath(b):
        return True
    try:
        from sentencepiece import sentencepiece_model_pb2
    except ImportError:
        return False
    models = []
    for path in (a, b):
        model = sentencepiece_model_pb2.ModelProto()
        with open(path, "rb") as f:
            model.ParseFromString(f.read())
        for name in ("input", "model_prefix"):
            model.trainer_spec.ClearField(name)
        models.append(model.SerializeToString(deterministic=True))
    return models[0] == models[1]


def moses_normalizer(lang: str) -> Callable[[str], str]:
    """Moses punctuation normalisation (sacremoses) of one stripped line."""
    from sacremoses import MosesPunctNormalizer

    normalizer = MosesPunctNormalizer(lang=lang)
    return lambda line: normalizer.normalize(line.strip()).strip()


def open_binary(path: str):
    """A plain or gzip-compressed (by the ``.gz`` suffix) file, opened for reading bytes."""
    check(os.path.isfile(path), f"{path}: input file not found")
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


#: lines that are not text: summary key -> what the error says
BAD_LINES = {"invalid_utf8": "invalid UTF-8", "nul_byte": "contains a NUL byte"}

#: characters other than ``\\n`` that end a line for ``str.splitlines``, Python's
#: universal-newline reading (``open()`` in text mode: ``\\r``) and other readers
LINE_BREAKS = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_TO_SPACE = str.maketrans({c: " " for c in LINE_BREAKS})
#: summary key: lines in which such characters were replaced by a space
LINE_BREAKS_KEY = "line_breaks_replaced"


def one_line(text: str) -> Tuple[str, bool]:
    """``text`` with each character of :data:`LINE_BREAKS` replaced by a space, so that every
    reader sees one line; and whether there was any."""
    out = text.translate(_TO_SPACE)
    return out, out != text


def decode_lines(f: BinaryIO, path: str, counts: Optional[Counter] = None
                 ) -> Iterator[Tuple[int, Optional[str], Optional[str]]]:
    """``(line number from 1, text, problem)`` of each line of the binary stream ``f`` (named
    ``path`` in errors). The text is without its line end, ``\\n`` or Windows ``\\r\\n`` (both
    accepted everywhere), on one line (:func:`one_line`; each line changed is counted in
    ``counts[LINE_BREAKS_KEY]``), without the byte-order mark that starts a file written by
    some Windows editors; for a line that is not text, text is None and problem a key of
    :data:`BAD_LINES` (report it with :func:`bad_line_error`)."""
    try:
        for n, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError:
                yield n, None, "invalid_utf8"
                continue
            text, changed = one_line(text.rstrip("\r\n"))
            if changed and counts is not None:
                counts[LINE_BREAKS_KEY] += 1
            if "\x00" in text:
                yield n, None, "nul_byte"
            else:
                yield n, text, None
    except (OSError, EOFError) as e:  # truncated or corrupt .gz
        raise BTUserError(f"{path}: cannot read ({e})") from None


def read_raw_lines(path: str, counts: Optional[Counter] = None
                   ) -> Iterator[Tuple[int, Optional[str], Optional[str]]]:
    """:func:`decode_lines` of a plain or ``.gz`` text file."""
    with open_binary(path) as f:
        yield from decode_lines(f, path, counts)


def bad_line_error(path: str, line: int, problem: str, hint: str = "") -> BTUserError:
    return BTUserError(f"{path}:{line}: {BAD_LINES[problem]}{hint}")


def read_text_lines(path: str, counts: Optional[Counter] = None) -> List[str]:
    """Every line of a plain or ``.gz`` text file, stripped and on one line (counted in
    ``counts``: :func:`decode_lines`); a line that is not text is an error naming the file
    and line."""
    lines = []
    for n, text, problem in read_raw_lines(path, counts):
        if problem:
            raise bad_line_error(path, n, problem)
        lines.append(text.strip())
    return lines


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
    try:
        spm.SentencePieceTrainer.Train(**options)
    except RuntimeError as e:  # bad options, no text
        raise BTUserError(f"{model_prefix}: sentencepiece training failed "
                          f"({(str(e).splitlines() or [''])[0]})") from None
    try:  # sentencepiece does not check its writes: a full disk leaves a truncated model
        spm.SentencePieceProcessor(model_file=f"{tmp}.model")
    except (OSError, RuntimeError):
        for ext in ("model", "vocab"):
            if os.path.exists(f"{tmp}.{ext}"):
                os.remove(f"{tmp}.{ext}")
        raise BTUserError(f"{model_prefix}.model: sentencepiece could not write the whole "
                          "model (no space left on the device, or a file size limit)") from None
    for ext in ("model", "vocab"):
        os.replace(f"{tmp}.{ext}", f"{model_prefix}.{ext}")
    return model_prefix + ".model"
