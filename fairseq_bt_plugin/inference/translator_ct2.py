"""``--backend ctranslate2``: the same chunks, batches, seeds and outputs as
:class:`~.translator.Translator`, decoded by CTranslate2 from a once-converted checkpoint.

The conversion (CTranslate2's own ``FairseqConverter``) goes to a temp directory that is
moved into place, so an interrupted conversion is redone, never half-used; it is redone
too when the checkpoint or a dictionary changed since (fingerprints in
``converted_from.json``). Scores are log-probabilities of the output by CTranslate2's forced
decoding (``score_batch``: eos included, as fairseq's; the model at temperature 1).
Batches run in parallel on ``--ct2-inter-threads`` threads (one thread each: on small models
that beats intra-op threads). Sampling loads a one-thread translator per batch, seeded from
the batch's first line (see :meth:`CT2Translator._seeded_translator`).
"""
import functools
import json
import math
import os
import shutil
import time
from collections import deque
from typing import AbstractSet, Iterator, List, Optional, Sequence, Tuple

from ..errors import BTUserError, check
from ..fingerprint import fingerprint, same_contents
from .config import is_ct2_model_dir
from .translator import (Hypothesis, Translator, language_symbols, mismatch_error,
                         multilingual_settings)

SOURCES = "converted_from.json"  # fingerprints of the checkpoint and dictionaries converted
MULTILINGUAL = "multilingual.json"  # a multilingual model's language-token settings (or null)


class CT2Translator(Translator):
    """:class:`~.translator.Translator` with CTranslate2; the converted model is kept in
    ``model_dir``."""

    def __init__(self, cfg, model_dir: str, **kwargs):
        self.model_dir = model_dir
        super().__init__(cfg, **kwargs)

    def _setup(self) -> None:
        ctranslate2 = self._import_ctranslate2()
        from fairseq.data import Dictionary

        cfg = self.cfg
        self.src_dict = Dictionary.load(os.path.join(self.data, f"dict.{cfg.source_lang}.txt"))
        self.tgt_dict = Dictionary.load(os.path.join(self.data, f"dict.{cfg.target_lang}.txt"))
        if self._converted_from_these_files(self.model_dir):
            self.convert_seconds = 0.0
        else:
            t0 = time.perf_counter()
            self._convert(self.model_dir)
            self.convert_seconds = round(time.perf_counter() - t0, 3)
        settings = model_multilingual_settings(self.model_dir)
        if settings is not None:
            # fairseq's multilingual task adds the language tokens to the dictionaries: the
            # converted model's vocabularies have them
            self.src_dict, self.tgt_dict = (vocabulary_dictionary(v)
                                            for v in ct2_vocabularies(self.model_dir))
        self.target_symbols = frozenset(self.tgt_dict.symbols)
        self._load_translator(ctranslate2)
        self._language_prefixes(settings)

    def _language_prefixes(self, settings: Optional[dict]) -> None:
        """The pieces put before each source and forced at the start of each output: a
        multilingual model's language tokens for -s -> -t (``settings``, its
        ``multilingual.json``), else none."""
        src, tgt = language_symbols(settings, self.cfg.source_lang, self.cfg.target_lang)
        self.source_prefix, self.target_prefix = [src] if src else [], [tgt] if tgt else []

    def _import_ctranslate2(self):
        """The ctranslate2 module, after checking the compute type on this device."""
        try:
            import ctranslate2
        except ImportError:
            raise BTUserError("--backend ctranslate2 needs the ctranslate2 package "
                              "(pip install ctranslate2)") from None
        supported = ctranslate2.get_supported_compute_types(self.device)
        check(self.compute_type in supported,
              f"--ct2-compute-type {self.compute_type}: not supported on {self.device} by this "
              f"CTranslate2 (supported: {', '.join(sorted(supported))})")
        return ctranslate2

    def _load_translator(self, ctranslate2) -> None:
        self.translator = self._translator(self.num_threads)
        if self.use_cuda:  # CUDA libraries load at the first translation: fail before output
            try:
                self.translator.translate_batch([["<unk>"]], beam_size=1, max_decoding_length=1)
            except RuntimeError as e:
                raise BTUserError(
                    f"--backend ctranslate2 on the GPU: {str(e).splitlines()[0]} (ctranslate2 "
                    f"{ctranslate2.__version__} needs the CUDA libraries it was built for, e.g. "
                    "pip install nvidia-cublas-cu12; or use --cpu or --backend fairseq)") from None
        self.max_source_positions = 1024  # CTranslate2's default max_input_length

    def _sources(self) -> List[str]:
        """The files a conversion is made from."""
        return [self.cfg.path] + [os.path.join(self.data, f"dict.{lang}.txt")
                                  for lang in (self.cfg.source_lang, self.cfg.target_lang)]

    def _converted_from_these_files(self, model_dir: str) -> bool:
        """A finished conversion of the checkpoint and dictionaries as they are now (not of a
        checkpoint since retrained at the same path), with its language-token settings (a
        conversion without them predates them: made again)."""
        stamp = os.path.join(model_dir, SOURCES)
        if not all(os.path.exists(os.path.join(model_dir, name))
                   for name in ("model.bin", SOURCES, MULTILINGUAL)):
            return False
        with open(stamp, encoding="utf-8") as f:
            old = json.load(f)
        new = [fingerprint(p) for p in self._sources()]
        return len(old) == len(new) and all(map(same_contents, old, new))

    @property
    def num_threads(self) -> int:
        """Batches decoded at the same time (``--ct2-inter-threads``)."""
        if self.use_cuda:
            return 1
        return self.cfg.ct2_inter_threads or len(os.sched_getaffinity(0))

    @property
    def device(self) -> str:
        return "cuda" if self.use_cuda else "cpu"

    @property
    def compute_type(self) -> str:
        if self.cfg.ct2_compute_type != "auto":
            return self.cfg.ct2_compute_type
        return "float16" if self.use_cuda else "int8"

    def _translator(self, inter_threads: int):
        import ctranslate2

        return ctranslate2.Translator(
            self.model_dir, device=self.device, compute_type=self.compute_type,
            inter_threads=inter_threads, intra_threads=self.cfg.ct2_intra_threads)

    def _convert(self, model_dir: str) -> None:
        cfg = self.cfg
        self._load_state()  # a clear error for a wrong checkpoint or languages
        convert_checkpoint(cfg.path, self.data, cfg.source_lang, cfg.target_lang, model_dir,
                           sources=self._sources())

    def _seeded_translator(self, seed: int):
        """A one-thread translator whose sampling is seeded with ``seed``: CTranslate2 seeds a
        thread's generator from the global seed when the thread first samples, so the
        translator samples one token right away."""
        import ctranslate2

        ctranslate2.set_random_seed(seed)
        translator = self._translator(1)
        translator.translate_batch([["<unk>"]], beam_size=1, sampling_topk=0,
                                   max_decoding_length=1)
        return translator

    def _options(self, max_source_len: int) -> dict:
        """CTranslate2's options for fairseq's search options ``self.search``."""
        search = self.search
        opts = dict(num_hypotheses=search.nbest, length_penalty=search.lenpen,
                    max_decoding_length=max(1, int(search.max_len_a * max_source_len
                                                   + search.max_len_b))
                    + len(self.target_prefix), max_batch_size=0)
        if search.sampling:
            opts.update(beam_size=1, sampling_topk=max(search.sampling_topk, 0),
                        sampling_topp=search.sampling_topp if search.sampling_topp > 0
                        else 1.0, sampling_temperature=search.temperature)
        else:
            opts.update(beam_size=search.beam)
        return opts

    def _translate_batches(self, batches) -> Iterator[Tuple[List[Hypothesis], float]]:
        """Up to ``num_threads`` batches decoded at the same time, returned in order. Beam
        search: one translator with that many threads; sampling: one seeded translator per
        batch (:meth:`batch_seed`), so the samples do not depend on the threads."""
        depth = self.num_threads if self.search.sampling else 2 * self.num_threads
        pending: deque = deque()
        last = time.perf_counter()

        def done():
            nonlocal last
            out = self._collect(*pending.popleft())
            now = time.perf_counter()
            seconds, last = now - last, now
            return out, seconds

        for batch in batches:
            pending.append(self._submit(batch))
            if len(pending) >= depth:
                yield done()
        while pending:
            yield done()

    def _submit(self, items):
        """Start decoding a batch: (items, source pieces, translator, async results)."""
        sources = [self.source_prefix + x[2].split() for x in items]
        translator = (self._seeded_translator(self.batch_seed(items)) if self.search.sampling
                      else self.translator)
        prefix = [self.target_prefix] * len(items) if self.target_prefix else None
        return items, sources, translator, translator.translate_batch(
            sources, target_prefix=prefix, asynchronous=True,
            **self._options(max(len(x[3]) for x in items)))

    def _collect(self, items, sources, translator, pending) -> List[Hypothesis]:
        results = [r.result() for r in pending]
        out = []
        pairs = [(source, hyp) for source, result in zip(sources, results)
                 for hyp in result.hypotheses[: self.search.nbest]]
        # log p(hypothesis | source) by forced decoding: translate_batch's scores are
        # normalised by length^lenpen and leave out the end-of-sentence token
        scored = iter(translator.score_batch([p[0] for p in pairs], [p[1] for p in pairs])
                      if pairs and self.scores else [])
        forced = len(self.target_prefix)  # the forced language token: not output, not scored
        for (line, text, pieces, _), result in zip(items, results):
            for k, hyp in enumerate(result.hypotheses[: self.search.nbest]):
                # one per token, end of sentence included
                log_probs = next(scored).log_probs[forced:] if self.scores else [math.nan]
                score, logprob = sum(log_probs) / max(len(log_probs), 1), sum(log_probs)
                if self.noise is None:
                    out.append(self._hypothesis_of_pieces(
                        line, k, text, pieces, output_pieces(hyp[forced:], self.target_symbols),
                        score, logprob))
                else:  # the noise works on the dictionary's token ids
                    tokens = self.tgt_dict.encode_line(" ".join(hyp[forced:]),
                                                       add_if_not_exist=False,
                                                       append_eos=True).long()
                    out.append(self._hypothesis(line, k, text, pieces, tokens, score, logprob))
        return out

    def _source(self, pieces: str) -> List[str]:
        """CTranslate2 reads the pieces themselves (:meth:`_submit`); this list counts them as
        fairseq's token ids do, end of sentence included."""
        return pieces.split() + ["</s>"]


class CT2ModelTranslator(CT2Translator):
    """:class:`CT2Translator` of a CTranslate2 model directory made elsewhere (``--path DIR``:
    ``fairseq-bt-export``'s, or an OPUS-MT / Marian model converted by CTranslate2's own
    converters): its vocabularies stand for the fairseq dictionaries; the sentencepiece models
    are given (``--spm-model``, and ``--target-spm-model`` where the output has its own)."""

    def __init__(self, cfg, **kwargs):
        super().__init__(cfg, model_dir=cfg.path, **kwargs)

    def _check_model_files(self) -> None:
        check(is_ct2_model_dir(self.cfg.path),
              f"{self.cfg.path}: not a CTranslate2 model directory (no model.bin)")
        self.data = self.cfg.path  # its vocabularies stand for the dictionaries
        self.vocabularies = ct2_vocabularies(self.cfg.path)
        self.multilingual = settings = model_multilingual_settings(self.cfg.path)
        symbols = language_symbols(settings, self.cfg.source_lang, self.cfg.target_lang)
        for symbol, vocabulary, side in zip(symbols, self.vocabularies, ("source", "target")):
            check(symbol is None or symbol in vocabulary, f"{self.cfg.path}: the language "
                  f"token {symbol} is not in its {side} vocabulary")
        langs = None if settings else exported_languages(self.cfg.path)
        check(langs is None or langs == (self.cfg.source_lang, self.cfg.target_lang),
              f"{self.cfg.path}: the model translates {langs and langs[0]}->"
              f"{langs and langs[1]}, but -s {self.cfg.source_lang} -t {self.cfg.target_lang} "
              "was given")

    def model_files(self) -> List[str]:
        return sorted(os.path.join(self.cfg.path, name) for name in os.listdir(self.cfg.path)
                      if name in ("model.bin", MULTILINGUAL)
                      or name.endswith(("vocabulary.json", "vocabulary.txt")))

    def _check_pieces(self) -> None:
        cfg = self.cfg
        for proc, spm_path, symbols, side in (
                (self.src_proc, cfg.spm_model, self.vocabularies[0], "source"),
                (self.tgt_proc, cfg.target_spm_model or cfg.spm_model, self.vocabularies[1],
                 "target")):
            proc.check_pieces_known(symbols, f"the {side} vocabulary of {cfg.path}", spm_path)

    @functools.cached_property
    def src_dict(self):
        return vocabulary_dictionary(self.vocabularies[0])

    @functools.cached_property
    def tgt_dict(self):  # for the noise alone: the output's pieces come from target_symbols
        return vocabulary_dictionary(self.vocabularies[1])

    def _setup(self) -> None:
        ctranslate2 = self._import_ctranslate2()
        self.target_symbols = frozenset(FAIRSEQ_SYMBOLS) | frozenset(self.vocabularies[1])
        self.convert_seconds = 0.0  # converted already
        self._load_translator(ctranslate2)
        self._language_prefixes(self.multilingual)


def ct2_vocabularies(model_dir: str) -> Tuple[List[str], List[str]]:
    """The source and target vocabularies of a CTranslate2 model directory
    (``shared_vocabulary``, or ``source_`` and ``target_vocabulary``; ``.json`` as CTranslate2
    writes them, or ``.txt``, one token per line, as older versions did)."""
    def read(name: str) -> Optional[List[str]]:
        for ext in ("json", "txt"):
            path = os.path.join(model_dir, f"{name}_vocabulary.{ext}")
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as f:
                    try:
                        tokens = json.load(f) if ext == "json" else f.read().splitlines()
                    except (ValueError, UnicodeDecodeError) as e:
                        raise BTUserError(f"{path}: not a vocabulary ({e})") from None
                check(isinstance(tokens, list) and all(isinstance(t, str) for t in tokens),
                      f"{path}: not a vocabulary (a list of tokens)")
                return tokens
        return None

    shared = read("shared")
    source, target = read("source") or shared, read("target") or shared
    check(bool(source and target), f"{model_dir}: no vocabulary (shared_vocabulary.json, or "
          "source_vocabulary.json and target_vocabulary.json)")
    return source, target


#: the symbols that start every fairseq dictionary: bos, pad, eos, unk
FAIRSEQ_SYMBOLS = ("<s>", "<pad>", "</s>", "<unk>")


def output_pieces(tokens: Sequence[str], symbols: AbstractSet[str]) -> str:
    """CTranslate2's output ``tokens`` as fairseq's ``Dictionary.string`` gives them from their
    ids in a dictionary of ``symbols``: ``<s>`` and ``</s>`` left out, a token it lacks
    ``<unk>`` (without fairseq: a test compares the two)."""
    return " ".join(t if t in symbols else "<unk>" for t in tokens if t not in ("<s>", "</s>"))


def vocabulary_dictionary(tokens: Sequence[str]):
    """A fairseq dictionary of ``tokens`` (fairseq's special symbols first): the pieces a
    CTranslate2 model outputs as token ids, for the noise and the output's pieces."""
    from fairseq.data import Dictionary

    d = Dictionary()
    for token in tokens:
        d.add_symbol(token)
    return d


def model_multilingual_settings(model_dir: str) -> Optional[dict]:
    """The language-token settings of a multilingual model converted here or exported
    (``multilingual.json``, see :func:`~.translator.multilingual_settings`); None for others
    (``null`` there, or no such file: a model converted elsewhere or before it was written)."""
    path = os.path.join(model_dir, MULTILINGUAL)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def exported_languages(model_dir: str) -> Optional[Tuple[str, str]]:
    """``(source, target)`` of a directory written by ``fairseq-bt-export`` (its
    ``model.json``); None for other CTranslate2 models (they record no languages)."""
    path = os.path.join(model_dir, "model.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        info = json.load(f)
    if not (info.get("source_lang") and info.get("target_lang")):
        return None
    return info["source_lang"], info["target_lang"]

def convert_checkpoint(path: str, data: str, source_lang: str, target_lang: str, model_dir: str,
                       quantization: Optional[str] = None, sources: Sequence[str] = ()) -> None:
    """The fairseq checkpoint ``path`` (dictionaries in ``data``) as a CTranslate2 model in
    ``model_dir``, written under a temporary name and moved into place when complete (weights
    as trained, or ``quantization``, e.g. int8); the fingerprints of ``sources`` in
    ``converted_from.json``."""
    from ctranslate2.converters import FairseqConverter

    import torch

    tmp = f"{model_dir}.tmp{os.getpid()}"
    os.makedirs(os.path.dirname(os.path.abspath(tmp)), exist_ok=True)
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        FairseqConverter(argparse_checkpoint(state, path, tmp + ".ckpt.pt"), data, source_lang,
                         target_lang, unsafe_deserialization=True).convert(
                             tmp, quantization=quantization, force=True)
        with open(os.path.join(tmp, MULTILINGUAL), "w", encoding="utf-8") as f:
            # null for a bilingual model
            json.dump(multilingual_settings(task_config(state)), f, indent=1)
        if sources:
            with open(os.path.join(tmp, SOURCES), "w", encoding="utf-8") as f:
                json.dump([fingerprint(p) for p in sources], f)
    except RuntimeError as e:
        raise mismatch_error(path, data, e) from None
    except ValueError as e:  # unsupported architecture or option
        raise BTUserError(f"{path}: CTranslate2 cannot convert this model "
                          f"({str(e).splitlines()[0]})") from None
    finally:
        if os.path.exists(tmp + ".ckpt.pt"):
            os.remove(tmp + ".ckpt.pt")
        if not os.path.exists(os.path.join(tmp, "model.bin")):
            shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.dirname(os.path.abspath(model_dir)), exist_ok=True)
    shutil.rmtree(model_dir, ignore_errors=True)
    os.replace(tmp, model_dir)


def task_config(state: dict):
    """The task config of a loaded checkpoint (argparse-trained: its args)."""
    if state.get("args") is not None:
        return state["args"]
    task = (state.get("cfg") or {}).get("task")
    if isinstance(task, dict):
        import argparse

        return argparse.Namespace(**task)
    return task


def argparse_checkpoint(state: dict, path: str, scratch: str) -> str:
    """CTranslate2's converter sets attributes on the checkpoint's model config, which only
    works for argparse-trained checkpoints; one from fairseq-hydra-train stores a dict (or,
    written after fairseq's loading, e.g. by fairseq-bt-average, an omegaconf DictConfig). Such
    a checkpoint (``state``, loaded from ``path``) is rewritten to ``scratch`` with the dict as
    a Namespace (else ``path``)."""
    import argparse

    import torch

    from omegaconf import DictConfig, OmegaConf

    if isinstance(state.get("cfg"), DictConfig):  # saved after fairseq's own loading
        state["cfg"] = OmegaConf.to_container(state["cfg"], resolve=True)  # (an average)
    model = (state.get("cfg") or {}).get("model") if state.get("args") is None else None
    if not isinstance(model, dict):
        return path
    task = state["cfg"].get("task") or {}
    # a task fairseq still configures with argparse (its multilingual one) is a Namespace
    task = vars(task) if isinstance(task, argparse.Namespace) else dict(task)
    state["cfg"]["model"] = argparse.Namespace(
        **{**task, **model, "arch": model.get("_name"), "task": task.get("_name")})
    torch.save(state, scratch)
    return scratch
