"""The translator of every tool that translates: a fairseq model loaded with fairseq's
checkpoint utilities, decoded with the task's own generator (``task.build_generator`` +
``task.inference_step``), batches built here.

Batches are made from one chunk at a time, sorted by length; no sentence is ever dropped
(fairseq-generate rounds ``--batch-size`` batches to multiples of 8 and loses the rest).
Beam search by default; a caller may ask for another search (fairseq's ``GenerationConfig``
fields: sampling, nbest, temperature) and noise the output tokens. Randomness (sampling,
noise) depends only on the seed and the line index (sampling: of the batch's first line), never
on the process that decodes it: ``--workers N`` decode a chunk's batches in N processes.
"""
import dataclasses
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, FrozenSet, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..errors import BTUserError, check, checkpoint_error
from ..text_processing import TextProcessor
from .config import DecodingConfig, model_paths, validate_decoding
from .reader import Chunk

logger = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 4000


@dataclass
class Hypothesis:
    line: int  # input line index
    k: int  # which of the nbest / samples
    synthetic: str  # raw (detokenised) synthetic source
    original: str  # raw input sentence
    synthetic_pieces: str
    original_pieces: str
    score: float  # average log-probability per token (eos included)
    logprob: float  # log p(synthetic | original): sum of the token log-probabilities (eos too)


def derived_seed(*values: int) -> int:
    """A 32-bit seed that depends only on ``values`` (never on process or batch)."""
    return int(np.random.SeedSequence([int(v) for v in values]).generate_state(1)[0])


def make_batches(lengths: Sequence[int], batch_size: Optional[int],
                 max_tokens: Optional[int]) -> List[List[int]]:
    """Positions of ``lengths`` grouped into batches, longest first; every position is in
    exactly one batch. A batch holds at most ``batch_size`` sentences and at most
    ``max_tokens`` padded tokens (a longer single sentence gets a batch of its own)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: List[List[int]] = []
    current: List[int] = []
    longest = 0
    for i in order:
        new_longest = max(longest, lengths[i])
        full = current and (
            (batch_size is not None and len(current) + 1 > batch_size)
            or (max_tokens is not None and new_longest * (len(current) + 1) > max_tokens))
        if full:
            batches.append(current)
            current, new_longest = [], lengths[i]
        current.append(i)
        longest = new_longest
    if current:
        batches.append(current)
    return batches


def mismatch_error(path: str, data: str, e: Exception) -> BTUserError:
    lines = [x.strip() for x in str(e).splitlines() if "size mismatch" in x]
    detail = lines[0] if lines else str(e).splitlines()[0]
    return BTUserError(f"{path}: checkpoint does not match the dictionaries in {data} "
                       f"({detail})")


def load_state(path: str, data: str, source_lang: str, target_lang: str) -> Dict:
    """The checkpoint ``path``, after checking that it translates ``source_lang`` into
    ``target_lang``; one-line errors for a file that is not a checkpoint."""
    from .. import setup

    setup()  # bt_* archs, the torch.load fix
    from fairseq import checkpoint_utils

    check(os.path.isfile(path), f"{path}: checkpoint not found (--path)")
    try:
        state = checkpoint_utils.load_checkpoint_to_cpu(path, {"data": data})
    except Exception as e:  # unpickling errors of all kinds
        raise checkpoint_error(path, e) from None
    task_cfg = state["cfg"]["task"] if state.get("cfg") is not None else state.get("args")
    saved = (getattr(task_cfg, "source_lang", None), getattr(task_cfg, "target_lang", None))
    check(None in saved or saved == (source_lang, target_lang),
          f"{path}: the checkpoint translates {saved[0]}->{saved[1]}, but "
          f"-s {source_lang} -t {target_lang} was given (for "
          "fairseq-bt-backtranslate, the reverse model translates the monolingual language into "
          "the synthetic one)")
    if getattr(task_cfg, "lang_pairs", None) and state.get("cfg") is not None:
        # a multilingual model (translation_multi_simple_epoch): fairseq's inference mode
        from fairseq.dataclass.utils import overwrite_args_by_name

        overwrite_args_by_name(state["cfg"], {"source_lang": source_lang,
                                              "target_lang": target_lang})
    return state


def load_models(paths: Sequence[str], data: str, source_lang: str, target_lang: str):
    """``(models, task)``: the checkpoints ``paths`` (one, or an ensemble) with the
    dictionaries of ``data``, through fairseq's ``load_model_ensemble_and_task``; the task is
    the first checkpoint's. A checkpoint whose embeddings do not fit those dictionaries (an
    ensemble member trained with other ones) is a one-line error naming it."""
    from .. import setup

    setup()  # bt_* archs, the torch.load fix
    from fairseq import checkpoint_utils

    models, task = [], None
    for path in paths:
        state = load_state(path, data, source_lang, target_lang)
        try:
            (model,), _, task = checkpoint_utils.load_model_ensemble_and_task(
                [path], arg_overrides={"data": data}, task=task, state=state)
        except RuntimeError as e:
            raise mismatch_error(path, data, e) from None
        except ValueError as e:  # fairseq's multilingual task: a language the model lacks
            check("language dictionary" not in str(e), f"{path}: {e}")
            raise
        check(hasattr(task, "source_dictionary") and task.source_dictionary is not None,
              f"{path}: task {type(task).__name__} is not a translation task")
        models.append(model)
    return models, task


def language_tokens(task) -> Tuple[Optional[int], Optional[int]]:
    """The language tokens of a multilingual task (fairseq's ``translation_multi_simple_epoch``
    and its subclasses, set up for ``-s`` -> ``-t``): the one that starts the source (its
    ``--encoder-langtok``) and the one that starts the output (``--decoder-langtok``, forced by
    ``task.inference_step``); ``(None, None)`` for other tasks."""
    manager = getattr(task, "data_manager", None)
    if manager is None:
        return None, None
    args = task.args
    check(not args.lang_tok_replacing_bos_eos,
          "models trained with --lang-tok-replacing-bos-eos are not supported")
    src_spec, tgt_spec = args.langtoks["main"]
    return (manager.get_encoder_langtok(args.source_lang, args.target_lang, src_spec),
            manager.get_decoder_langtok(args.target_lang, tgt_spec))


def multilingual_settings(task_cfg) -> Optional[Dict[str, Any]]:
    """How a multilingual model's task (fairseq's ``translation_multi_simple_epoch`` and its
    subclasses: a ``lang_pairs`` setting) marks languages: ``lang_pairs`` (a list),
    ``encoder_langtok`` (None, ``src`` or ``tgt``), ``decoder_langtok`` and ``lang_tok_style``;
    None for other tasks (``task_cfg``: the checkpoint's task config or a task's args)."""
    pairs = getattr(task_cfg, "lang_pairs", None)
    if not pairs:
        return None
    check(not getattr(task_cfg, "lang_tok_replacing_bos_eos", False),
          "models trained with --lang-tok-replacing-bos-eos are not supported")
    return {"lang_pairs": pairs.split(",") if isinstance(pairs, str) else list(pairs),
            "encoder_langtok": getattr(task_cfg, "encoder_langtok", None),
            "decoder_langtok": bool(getattr(task_cfg, "decoder_langtok", False)),
            "lang_tok_style": getattr(task_cfg, "lang_tok_style", None) or "multilingual"}


def language_symbols(settings: Optional[Dict[str, Any]], source_lang: str,
                     target_lang: str) -> Tuple[Optional[str], Optional[str]]:
    """The tokens (as text, e.g. ``__de__``) that start the source and the output of
    ``source_lang`` -> ``target_lang`` for a model of :func:`multilingual_settings`, made as
    fairseq's multilingual data manager makes them; ``(None, None)`` for other models. A pair
    the model was not trained on is a one-line error."""
    if settings is None:
        return None, None
    from fairseq.data.multilingual.multilingual_utils import get_lang_tok

    pair = f"{source_lang}-{target_lang}"
    check(pair in settings["lang_pairs"], f"the multilingual model translates "
          f"{', '.join(settings['lang_pairs'])}, not {pair} (-s {source_lang} -t {target_lang})")
    style, spec = settings["lang_tok_style"], settings["encoder_langtok"]
    source = None if spec is None else get_lang_tok(
        source_lang if spec.startswith("src") else target_lang, style, spec)
    return source, get_lang_tok(target_lang, style) if settings["decoder_langtok"] else None


@dataclass
class Search:
    """The search of both backends: these fields of fairseq's ``GenerationConfig``, with its
    defaults (a test compares them), given to fairseq's generator as one."""
    beam: int = 5
    nbest: int = 1
    lenpen: float = 1.0
    max_len_a: float = 0.0
    max_len_b: int = 200
    sampling: bool = False
    sampling_topk: int = -1
    sampling_topp: float = -1.0
    temperature: float = 1.0


#: Output noise: (output token ids, input line index, k) -> noised token ids.
Noise = Callable[[torch.Tensor, int, int], torch.Tensor]


class Translator:
    """A model that translates chunks of raw sentences (the fairseq backend).

    ``search``: fields of fairseq's ``GenerationConfig`` that replace beam search with
    ``cfg.beam`` (``beam``, ``nbest``, ``sampling``, ``sampling_topk``, ...); ``seed``: seeds
    each batch's randomness (with the batch's first line index, :meth:`batch_seed`);
    ``noise`` (built from the loaded dictionaries: ``noise(translator)``) changes each
    output's tokens, and detokenisation keeps the pieces ``keep``. ``scores=False``: the
    hypotheses' scores are not needed (NaN where they would cost time: CTranslate2's forced
    decoding)."""

    convert_seconds: Optional[float] = None  # time spent converting the model (CTranslate2)

    def __init__(self, cfg: DecodingConfig, search: Optional[Dict[str, Any]] = None,
                 seed: Optional[int] = None,
                 noise: Optional[Callable[["Translator"], Optional[Noise]]] = None,
                 keep: FrozenSet[str] = frozenset(), scores: bool = True):
        validate_decoding(cfg)
        self.cfg, self.seed, self.keep, self.scores = cfg, seed, keep, scores
        self.search = Search(**{
            "beam": cfg.beam, "lenpen": cfg.lenpen, "max_len_a": cfg.max_len_a,
            "max_len_b": cfg.max_len_b, **(search or {})})
        self.paths = model_paths(cfg.path)
        self.data = cfg.data_dir or os.path.dirname(os.path.abspath(self.paths[0]))
        self._check_model_files()
        self.src_proc = TextProcessor(cfg.spm_model, cfg.source_lang)
        self.tgt_proc = TextProcessor(cfg.target_spm_model or cfg.spm_model, cfg.target_lang)
        self._check_pieces()
        self.use_cuda = torch.cuda.is_available() and not cfg.cpu
        check(not cfg.fp16 or self.use_cuda, "--fp16 needs a CUDA GPU (and no --cpu)")
        if cfg.cpu_threads > 0:
            torch.set_num_threads(cfg.cpu_threads)
        self.src_langtok = self.tgt_langtok = None  # multilingual models: see language_tokens
        self._pool = None  # worker processes (--workers), started with the first chunk
        self._setup()
        self.noise = noise(self) if noise is not None else None

    def _check_model_files(self) -> None:
        """The checkpoints and both dictionaries exist (one-line errors)."""
        for path in self.paths:
            check(os.path.isfile(path), f"{path}: checkpoint not found (--path)")
        for lang in (self.cfg.source_lang, self.cfg.target_lang):
            d = os.path.join(self.data, f"dict.{lang}.txt")
            check(os.path.isfile(d), f"{d}: dictionary not found (set --data to the directory "
                  "holding the model's dictionaries)")

    def model_files(self) -> List[str]:
        """The files the model is read from (a tool records their fingerprints)."""
        return [*self.paths, *(os.path.join(self.data, f"dict.{lang}.txt")
                               for lang in (self.cfg.source_lang, self.cfg.target_lang))]

    def _check_pieces(self) -> None:
        """Each side's sentencepiece model is the one its dictionary was made with."""
        cfg = self.cfg
        for proc, spm_path in ((self.src_proc, cfg.spm_model),
                               (self.tgt_proc, cfg.target_spm_model or cfg.spm_model)):
            proc.check_dictionary(os.path.join(self.data, f"dict.{proc.lang}.txt"), spm_path)

    def _setup(self) -> None:
        """Load the model(s) and build the generator (the fairseq backend)."""
        self.models, self.task = self._load()
        self.src_dict, self.tgt_dict = self.task.source_dictionary, self.task.target_dictionary
        for m in self.models:
            m.eval()
            if self.cfg.fp16:
                m.half()
            if self.use_cuda:
                m.cuda()
        from fairseq import utils

        self.max_source_positions = utils.resolve_max_positions(
            self.task.max_positions(), *[m.max_positions() for m in self.models])[0]
        from fairseq.dataclass.configs import GenerationConfig

        self.generator = self.task.build_generator(
            self.models, GenerationConfig(**dataclasses.asdict(self.search)))
        self.src_langtok, self.tgt_langtok = language_tokens(self.task)

    def _load_state(self) -> Dict:
        """The (single) checkpoint, after checking that it translates -s into -t."""
        return load_state(self.cfg.path, self.data, self.cfg.source_lang, self.cfg.target_lang)

    def _load(self):
        return load_models(self.paths, self.data, self.cfg.source_lang, self.cfg.target_lang)

    @property
    def batch_limits(self) -> Tuple[Optional[int], Optional[int]]:
        bs, mt = self.cfg.batch_size, self.cfg.max_tokens
        return bs, (DEFAULT_MAX_TOKENS if bs is None and mt is None else mt)

    # ------------------------------------------------------------------------------------
    def translate_chunk(self, chunk: Chunk, on_batch: Optional[Callable[[int], None]] = None
                        ) -> Tuple[List[Hypothesis], Dict[str, int], float]:
        """Hypotheses of every line of ``chunk`` ordered by (line, k), counts of lines skipped
        here (too long for the model), and the seconds spent in fairseq's generator.
        ``on_batch(n)`` is called after each batch of ``n`` lines (progress)."""
        skipped: Dict[str, int] = {}
        items = []  # (line index, raw text, pieces, the model's input: see _source)
        for line, text in chunk.lines:
            pieces = self.src_proc.encode(text)
            ids = self._source(pieces)
            if len(ids) > self.max_source_positions:
                skipped["input_too_long"] = skipped.get("input_too_long", 0) + 1
                continue
            items.append((line, text, pieces, ids))
        out: List[Hypothesis] = []
        generate_seconds = 0.0
        batches = [[items[i] for i in batch] for batch in make_batches(
            [len(x[3]) for x in items], *self.batch_limits)]
        for batch, (hypotheses, seconds) in zip(batches, self._translate_batches(batches)):
            out.extend(hypotheses)
            generate_seconds += seconds
            if on_batch is not None:
                on_batch(len(batch))
        out.sort(key=lambda h: (h.line, h.k))
        return out, skipped, generate_seconds

    def _source(self, pieces: str) -> torch.Tensor:
        """The model's input for ``pieces``: their token ids, end of sentence included (after
        a multilingual model's source language token)."""
        ids = self.src_dict.encode_line(pieces, add_if_not_exist=False, append_eos=True).long()
        if self.src_langtok is not None:
            ids = torch.cat([ids.new_tensor([self.src_langtok]), ids])
        return ids

    def batch_seed(self, batch) -> Optional[int]:
        """The seed of a batch's randomness: from ``seed`` and the batch's first input line,
        so the same whichever process or thread decodes the batch."""
        return None if self.seed is None else derived_seed(self.seed, batch[0][0])

    def _translate_batches(self, batches) -> Iterator[Tuple[List[Hypothesis], float]]:
        """:meth:`_translate_batch` of each batch, in order: in this process, or with
        ``--workers N`` in N processes (forked from this one, one torch thread each)."""
        workers = self.num_workers
        if workers <= 1 or len(batches) <= 1:
            yield from map(self._translate_seeded, batches)
            return
        if self._pool is None:
            import multiprocessing

            global _FORKED
            _FORKED = self
            torch.set_num_threads(1)  # this process only reads, encodes and writes now
            # a worker exits when this process dies (end of its task queue)
            self._pool = multiprocessing.get_context("fork").Pool(
                workers, initializer=torch.set_num_threads, initargs=(1,))
        yield from self._pool.imap(_translate_in_worker, batches)

    @property
    def num_workers(self) -> int:
        """Processes that decode (``--workers``; the fairseq backend on CPU)."""
        if self.use_cuda:
            return 1
        return self.cfg.workers or len(os.sched_getaffinity(0))

    def close(self) -> None:
        """Stop the worker processes (``--workers``), if any."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None

    def _translate_seeded(self, batch) -> Tuple[List[Hypothesis], float]:
        seed = self.batch_seed(batch)
        if seed is not None:
            torch.manual_seed(seed)  # fairseq's sampling draws from torch's global generator
        return self._translate_batch(batch)

    def _translate_batch(self, items) -> Tuple[List[Hypothesis], float]:
        from fairseq.data import data_utils
        from fairseq import utils

        tokens = [x[3] for x in items]
        src_tokens = data_utils.collate_tokens(
            tokens, self.src_dict.pad(), self.src_dict.eos(),
            left_pad=getattr(self.task.cfg, "left_pad_source", True))
        sample = {
            "id": torch.arange(len(items)),
            "nsentences": len(items),
            "ntokens": sum(len(t) for t in tokens),
            "net_input": {"src_tokens": src_tokens,
                          "src_lengths": torch.tensor([len(t) for t in tokens])},
        }
        if self.use_cuda:
            sample = utils.move_to_cuda(sample)
        t0 = time.perf_counter()
        results = self.task.inference_step(self.generator, self.models, sample)
        if self.use_cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        out = []
        for (line, text, pieces, _), hypos in zip(items, results):
            for k, hypo in enumerate(hypos[: self.search.nbest]):
                # fairseq's token log-probabilities (of the temperature-scaled model, and
                # before the noise)
                scores, tokens = hypo["positional_scores"].float(), hypo["tokens"].cpu()
                if self.tgt_langtok is not None and tokens[0] == self.tgt_langtok:
                    scores, tokens = scores[1:], tokens[1:]  # the forced language token
                out.append(self._hypothesis(line, k, text, pieces, tokens,
                                            float(scores.mean()), float(scores.sum())))
        return out, seconds

    def _hypothesis(self, line: int, k: int, text: str, pieces: str, tokens: torch.Tensor,
                    score: float, logprob: float) -> Hypothesis:
        """A :class:`Hypothesis` from output token ids (noised, with ``noise``)."""
        if self.noise is not None:
            out_pieces = self.tgt_dict.string(self.noise(tokens, line, k))
            synthetic = self.tgt_proc.decode_keeping(out_pieces, self.keep)
            return Hypothesis(line, k, synthetic, text, out_pieces, pieces, score, logprob)
        return self._hypothesis_of_pieces(line, k, text, pieces, self.tgt_dict.string(tokens),
                                          score, logprob)

    def _hypothesis_of_pieces(self, line: int, k: int, text: str, pieces: str,
                              out_pieces: str, score: float, logprob: float) -> Hypothesis:
        """A :class:`Hypothesis` from the output's pieces (not noised)."""
        return Hypothesis(line, k, self.tgt_proc.decode(out_pieces), text, out_pieces, pieces,
                          score, logprob)


_FORKED: Optional[Translator] = None  # the translator of the process that forked the workers


def _translate_in_worker(batch) -> Tuple[List[Hypothesis], float]:
    return _FORKED._translate_seeded(batch)
