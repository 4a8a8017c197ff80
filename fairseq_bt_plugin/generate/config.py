"""Options of ``fairseq-bt-backtranslate``, ``fairseq-bt-backtranslate merge``,
``fairseq-bt-backtranslate copy`` and ``fairseq-bt-convert``.

Each dataclass is the one place for defaults and help text; :func:`parse` turns it into an
argparse parser (:mod:`fairseq_bt_plugin.options`). The decoding options (model, languages,
beam, batches, backend, device) are :class:`~fairseq_bt_plugin.inference.config.DecodingConfig`,
shared with ``fairseq-bt-evaluate``.
"""
import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Type, TypeVar

from fairseq.dataclass import FairseqDataclass
from omegaconf import MISSING

from ..data.noising import EDUNOV_2018, noise_options
from ..errors import check
from ..inference.config import (DecodingConfig, model_paths, other_default, same_field,
                                validate_decoding)
from ..options import ChoiceEnum, parse_dataclass

MODES = ["beam", "greedy", "sample", "noised_beam"]
MODE_CHOICES = ChoiceEnum(MODES)
WEIGHTS_CHOICES = ChoiceEnum(["auto", "uniform", "sequence", "length_normalized"])
#: modes whose synthetic sources are draws from the reverse model's distribution p(x|y)
SAMPLED_MODES = ("sample",)


@dataclass
class BTWeightsConfig(FairseqDataclass):
    """How PREFIX.weights is computed (every tool that writes it)."""
    weights: WEIGHTS_CHOICES = field(
        default="auto",
        metadata={"help": "per-pair weights for bt_translation --bt-weighted, computed after "
                  "the filters and deduplication, for each input sentence y with kept synthetic "
                  "sources x_1..x_K; they sum to 1 (one kept source: weight 1). uniform: w_k = "
                  "1/K, the Monte Carlo estimate of the expectation over p(x|y) for sources "
                  "drawn from it (--mode sample, with or without top-k / top-p: treated as "
                  "draws from the model); sequence: w_k = exp(s_k) / sum_j exp(s_j) with s = "
                  "log p(x|y), the sum of the token log-probabilities (eos included): the "
                  "reverse model's distribution renormalised over a list that was not drawn "
                  "from it (beam's n-best; noised_beam's too, its noise being drawn "
                  "independently of the model); length_normalized: s = that sum divided by the "
                  "number of tokens. auto: uniform for --mode sample, else sequence. A softmax "
                  "over sampled sources would weight them by p(x|y) twice: an error"})


@dataclass
class BTBinarizeConfig(FairseqDataclass):
    """The binarized corpus (``fairseq-bt-backtranslate`` and ``merge``)."""
    binarize_to: str = field(
        default="",
        metadata={"help": "also write a fairseq mmap corpus here: split 'train' in the forward "
                  "direction TGT_LANG-SRC_LANG with train.weights, ready for bt_translation "
                  "--bt-data DIR"})
    srcdict: str = field(
        default="", metadata={"help": "--binarize-to: forward source dictionary (default: the "
                              "reverse model's target dictionary)"})
    tgtdict: str = field(
        default="", metadata={"help": "--binarize-to: forward target dictionary (default: the "
                              "reverse model's source dictionary)"})
    binarize_spm_model: str = field(
        default="",
        metadata={"help": "--binarize-to: the forward model's sentencepiece model (with "
                  "--srcdict/--tgtdict, required then): a side the reverse model read or wrote "
                  "with another sentencepiece model is binarized as this one encodes its raw "
                  "sentences; a side of the same model (equal but for the files it was "
                  "trained from) keeps the reverse model's pieces"})


@dataclass
class BTGenerateConfig(DecodingConfig, BTWeightsConfig, BTBinarizeConfig,
                       noise_options("noise_", EDUNOV_2018, "noised_beam: ")):
    target_lang: str = other_default(DecodingConfig, "target_lang", "")
    target_langs: str = field(
        default="",
        metadata={"help": "instead of -t: a multilingual reverse model (bt_multilingual or "
                  "fairseq's translation_multi_simple_epoch) back-translates the input into "
                  "each of these comma-separated languages, one after the other, each as its "
                  "own run in OUTPUT_DIR/LANG/ (resumable and shardable as one -t run); "
                  "--binarize-to gets every language's pair, with train.LANG-SRC.weights, for "
                  "bt_multilingual --extra-data '{\"bt\": DIR}'"})
    input: str = field(
        default=MISSING,
        metadata={"help": "target-language monolingual text, one raw sentence per line; plain "
                  "or .gz; several files separated by commas are read in order"})
    output_dir: str = field(
        default=MISSING,
        metadata={"help": "where PREFIX.TGT_LANG (synthetic source), PREFIX.SRC_LANG (input), "
                  "PREFIX.scores (input line index, log p(x|y), its average per token, weight), "
                  "PREFIX.weights (--weights), PREFIX.summary.json and the resume state "
                  "PREFIX.work/ are written"})
    prefix: str = field(default="bt", metadata={"help": "file name prefix of the outputs"})
    mode: MODE_CHOICES = field(
        default="beam",
        metadata={"help": "beam: beam search (--beam); greedy: beam 1; sample: sampling from "
                  "the model (restrict with --sampling-topk/--sampling-topp, sharpen or flatten "
                  "with --temperature); noised_beam: beam search, then word deletion, filler "
                  "and local shuffle (Edunov et al. 2018, --noise-*)"})
    nbest: int = field(
        default=1,
        metadata={"help": "synthetic sentences per input sentence: the best N of the beam, or "
                  "N independent samples", "argparse_alias": "--samples-per-sentence"})
    sampling_topk: int = field(
        default=-1, metadata={"help": "sample mode: sample from the K most likely tokens "
                              "(-1: all)"})
    sampling_topp: float = field(
        default=-1.0, metadata={"help": "sample mode: nucleus sampling, smallest token set with "
                                "probability >= P (-1: off)"})
    temperature: float = field(
        default=1.0, metadata={"help": "divide the logits by this before search or sampling"})
    chunk_size: int = field(
        default=10000,
        metadata={"help": "input lines read, decoded and saved at a time; each chunk is sorted "
                  "by length into batches and is the unit of resuming and sharding"})
    seed: int = field(
        default=1, metadata={"help": "random seed; sampling and noise depend only on the seed "
                             "and the chunk / line index"})
    num_shards: int = field(
        default=1, metadata={"help": "split the work into this many shards (chunk i belongs "
                             "to shard i mod N); join them with 'fairseq-bt-backtranslate merge'"})
    shard_id: int = field(default=0, metadata={"help": "which shard to decode, 0..N-1"})
    max_input_chars: int = field(
        default=1000, metadata={"help": "skip (and count) input lines longer than this many "
                                "characters (0: off)"})
    skip_invalid: bool = field(
        default=False, metadata={"help": "skip (and count) lines that are not text (invalid "
                                 "UTF-8, NUL bytes) instead of stopping with an error"})
    max_len_ratio: float = field(
        default=3.0, metadata={"help": "drop pairs whose token-length ratio (either way) "
                               "exceeds this (0: off)"})
    max_output_tokens: int = field(
        default=250, metadata={"help": "drop synthetic sentences longer than this many tokens "
                               "(0: off)"})
    keep_identical: bool = field(
        default=False, metadata={"help": "keep pairs whose synthetic sentence equals the input"})
    keep_duplicates: bool = field(
        default=False, metadata={"help": "keep repeated (synthetic, input) pairs"})
    log_interval: float = field(
        default=30.0, metadata={"help": "seconds between progress log lines when stderr is "
                                "not a terminal (a terminal gets a tqdm bar)"})


# Options that change where files go or how progress is shown, not what is generated.
NOT_HASHED = ("output_dir", "binarize_to", "srcdict", "tgtdict", "binarize_spm_model",
              "shard_id", "log_interval", "cpu", "cpu_threads", "ct2_model_dir",
              "ct2_inter_threads", "ct2_intra_threads", "workers", "_name")


@dataclass
class BTMergeConfig(BTBinarizeConfig):
    shards: str = field(
        default=MISSING,
        metadata={"help": "comma-separated --output-dir of every shard, finished"})
    output_dir: str = field(default=MISSING,
                            metadata={"help": "where the merged outputs are written"})
    prefix: str = field(default="bt", metadata={"help": "file name prefix of the shards' "
                                                "and the merged outputs"})


@dataclass
class BTCopyConfig(BTBinarizeConfig):
    input: str = same_field(BTGenerateConfig, "input")
    output_dir: str = field(
        default=MISSING, metadata={"help": "where the aligned files are written (as "
                                   "fairseq-bt-backtranslate writes them)"})
    prefix: str = same_field(BTGenerateConfig, "prefix")
    source_lang: str = field(
        default=MISSING, metadata={"help": "language of the input (the forward target)",
                                   "argparse_alias": "-s"})
    target_lang: str = field(
        default=MISSING,
        metadata={"help": "language the copies stand in for (the forward source)",
                  "argparse_alias": "-t"})
    spm_model: str = field(
        default=MISSING, metadata={"help": "sentencepiece model that encodes the input (both "
                                   "sides get the same pieces)"})
    chunk_size: int = same_field(BTGenerateConfig, "chunk_size")
    max_input_chars: int = same_field(BTGenerateConfig, "max_input_chars")
    skip_invalid: bool = same_field(BTGenerateConfig, "skip_invalid")
    keep_duplicates: bool = same_field(BTGenerateConfig, "keep_duplicates")


@dataclass
class BTConvertConfig(BTWeightsConfig):
    log: str = field(
        default=MISSING,
        metadata={"help": "stdout of fairseq-generate or fairseq-interactive run with the "
                  "reverse model ('-' reads stdin)"})
    output_dir: str = field(default=MISSING,
                            metadata={"help": "where the aligned files are written"})
    prefix: str = field(default="bt", metadata={"help": "file name prefix of the outputs"})
    source_lang: str = field(
        default=MISSING,
        metadata={"help": "source language of the reverse model (of the S- lines)",
                  "argparse_alias": "-s"})
    target_lang: str = field(
        default=MISSING,
        metadata={"help": "target language of the reverse model (of the H-/D- lines)",
                  "argparse_alias": "-t"})
    spm_model: str = field(
        default="", metadata={"help": "decode sentencepiece pieces of S-/H- lines with this "
                              "model (when the log has no D- lines or was not post-processed)"})
    expected: int = field(
        default=-1, metadata={"help": "number of input sentences: ids 0..N-1 must all be there "
                              "(default: ids up to the largest one seen)"})
    nbest: int = field(default=1, metadata={"help": "hypotheses kept per id (the first N)"})
    allow_missing: bool = field(
        default=False, metadata={"help": "write what is there when ids are missing, instead of "
                                 "failing"})


C = TypeVar("C", bound=FairseqDataclass)


def parse(cls: Type[C], argv: List[str], prog: str, description: str) -> C:
    cfg = parse_dataclass(cls, argv, prog, description)
    if isinstance(cfg, BTGenerateConfig):
        validate(cfg)
    if isinstance(cfg, BTConvertConfig):
        check(cfg.nbest >= 1, f"--nbest must be >= 1, got {cfg.nbest}")
    if isinstance(cfg, BTCopyConfig):
        check(cfg.source_lang != cfg.target_lang, f"-s and -t are both {cfg.source_lang!r}")
        check(cfg.chunk_size >= 1, f"--chunk-size must be >= 1, got {cfg.chunk_size}")
        check(cfg.max_input_chars >= 0,
              f"--max-input-chars must be >= 0 (0: off), got {cfg.max_input_chars}")
        check(not cfg.binarize_to or (cfg.srcdict and cfg.tgtdict),
              "--binarize-to needs --srcdict and --tgtdict (no reverse model to take them from)")
    return cfg


def resolved_weights(weights: str, mode: Optional[str]) -> str:
    """``--weights`` as computed: ``auto`` is ``uniform`` for sampled sources
    (:data:`SAMPLED_MODES`), ``sequence`` otherwise (``mode`` None: a list of unknown origin,
    e.g. fairseq-bt-convert's)."""
    weights = str(weights)
    if weights != "auto":
        return weights
    return "uniform" if str(mode) in SAMPLED_MODES else "sequence"


def validate(cfg: BTGenerateConfig) -> None:
    check(bool(cfg.target_lang) != bool(cfg.target_langs),
          "give the synthetic language(s): -t LANG or --target-langs LANG,LANG,... (not both)")
    langs = target_languages(cfg)
    check(len(set(langs)) == len(langs) and all(langs) and cfg.source_lang not in langs,
          f"--target-langs: empty, repeated or source language in {cfg.target_langs!r}")
    check(not cfg.target_langs or cfg.backend == "fairseq",
          "--target-langs (a multilingual model) needs --backend fairseq")
    validate_decoding(cfg)
    check(cfg.nbest >= 1, f"--nbest must be >= 1, got {cfg.nbest}")
    check(cfg.mode not in ("beam", "noised_beam") or cfg.nbest <= cfg.beam,
          f"--nbest {cfg.nbest} is larger than --beam {cfg.beam}")
    check(cfg.mode != "greedy" or cfg.nbest == 1, "--mode greedy gives one output: --nbest 1")
    check(str(cfg.mode) not in SAMPLED_MODES or str(cfg.weights) in ("auto", "uniform"),
          f"--weights {cfg.weights} with --mode {cfg.mode}: sampled sources are already drawn "
          "from p(x|y), so their weights are uniform (--weights uniform or auto); a softmax of "
          "their scores would weight them by p(x|y) twice")
    check(cfg.mode == "sample" or (cfg.sampling_topk < 0 and cfg.sampling_topp < 0),
          "--sampling-topk/--sampling-topp need --mode sample")
    check(cfg.sampling_topk == -1 or cfg.sampling_topk >= 1,
          f"--sampling-topk must be >= 1 (or -1: off), got {cfg.sampling_topk}")
    check(cfg.sampling_topp < 0 or 0 < cfg.sampling_topp <= 1,
          f"--sampling-topp must be in (0, 1], got {cfg.sampling_topp}")
    check(cfg.temperature > 0, f"--temperature must be > 0, got {cfg.temperature}")
    check(cfg.chunk_size >= 1, f"--chunk-size must be >= 1, got {cfg.chunk_size}")
    check(cfg.num_shards >= 1, f"--num-shards must be >= 1, got {cfg.num_shards}")
    check(0 <= cfg.shard_id < cfg.num_shards,
          f"--shard-id must be in 0..{cfg.num_shards - 1}, got {cfg.shard_id}")
    for flag, value in (("--max-len-ratio", cfg.max_len_ratio),
                        ("--max-output-tokens", cfg.max_output_tokens),
                        ("--max-input-chars", cfg.max_input_chars)):
        check(value >= 0, f"{flag} must be >= 0 (0: off), got {value}")
    check(cfg.backend != "ctranslate2" or cfg.mode == "sample" or cfg.temperature == 1.0,
          "--backend ctranslate2 applies --temperature only in --mode sample")


def target_languages(cfg: BTGenerateConfig) -> List[str]:
    """The synthetic languages: ``[-t]``, or those of ``--target-langs``."""
    if cfg.target_langs:
        return [x.strip() for x in cfg.target_langs.split(",")]
    return [cfg.target_lang]


def model_data_dir(options: Dict[str, Any]) -> str:
    """The folder of the dictionaries a generator's model decoded with, from its options
    (``--data``, default: the checkpoint's folder)."""
    return options["data_dir"] or os.path.dirname(os.path.abspath(
        model_paths(options["path"])[0]))


def options_dict(cfg: FairseqDataclass) -> Dict[str, Any]:
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name != "_name"}


def options_hash(cfg: BTGenerateConfig) -> str:
    """Hash of every option that changes the generated text."""
    return hashlib.sha1(json.dumps(hashed_options(cfg), sort_keys=True).encode()).hexdigest()[:16]


def hashed_options(cfg: BTGenerateConfig) -> Dict[str, Any]:
    # without --target-langs, the options (and hash) of runs made before it existed
    return {k: v for k, v in options_dict(cfg).items()
            if k not in NOT_HASHED and not (k == "target_langs" and not v)}
