"""Decoding options shared by every tool that translates (``fairseq-bt-backtranslate``,
``fairseq-bt-evaluate``): the one place for their defaults and help text. A tool's config
inherits :class:`DecodingConfig`; a tool that needs another default for one of them states it
once with :func:`other_default`.
"""
import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, List, Optional, Type

from omegaconf import MISSING

from ..errors import check
from ..options import ChoiceEnum

BACKEND_CHOICES = ChoiceEnum(["fairseq", "ctranslate2"])
CT2_COMPUTE_TYPES = ChoiceEnum(["auto", "float32", "int8", "int8_float32", "float16",
                                "int8_float16", "bfloat16", "int8_bfloat16"])


@dataclass
class DecodingConfig:
    path: str = field(
        default=MISSING,
        metadata={"help": "fairseq checkpoint that translates --source-lang into --target-lang "
                  "(fairseq-bt-backtranslate: the reverse, target->source model); several "
                  "separated by ':' decode as an ensemble (fairseq's convention: their "
                  "probabilities averaged at each step; --backend fairseq only); or a "
                  "CTranslate2 model directory with --backend ctranslate2 (exported by "
                  "fairseq-bt-export, or converted by CTranslate2's converters, e.g. an OPUS-MT "
                  "model: its vocabularies replace --data; the sentencepiece models are given)"})
    data_dir: str = field(
        default="",
        metadata={"help": "directory with the model's dict.SRC.txt and dict.TGT.txt "
                  "(default: the checkpoint's directory)", "argparse_alias": "--data"})
    spm_model: str = field(
        default=MISSING,
        metadata={"help": "sentencepiece model that encodes the input and decodes the output"})
    target_spm_model: str = field(
        default="",
        metadata={"help": "sentencepiece model of the model's target side (the output) when it "
                  "is not the joint --spm-model"})
    source_lang: str = field(
        default=MISSING,
        metadata={"help": "source language of the model: the language of the input "
                  "(fairseq-bt-backtranslate: the forward model's target)", "argparse_alias": "-s"})
    target_lang: str = field(
        default=MISSING,
        metadata={"help": "target language of the model: the language of the output "
                  "(fairseq-bt-backtranslate: the synthetic sentences, the forward model's source)",
                  "argparse_alias": "-t"})
    beam: int = field(
        default=5, metadata={"help": "beam size (fairseq-bt-backtranslate: modes beam and "
                             "noised_beam)"})
    lenpen: float = field(default=1.0, metadata={"help": "length penalty of beam search"})
    max_len_a: float = field(
        default=0.0, metadata={"help": "maximum output length is a*input_length + b tokens "
                               "(input_length: the longest input of the batch, padded)"})
    max_len_b: int = field(default=200, metadata={"help": "see --max-len-a"})
    batch_size: Optional[int] = field(
        default=None, metadata={"help": "maximum sentences per batch; every line is translated "
                                "whatever the value (no multiple-of-8 rounding)"})
    max_tokens: Optional[int] = field(
        default=None, metadata={"help": "maximum padded input tokens per batch (default 4000 "
                                "when --batch-size is not set either)"})
    backend: BACKEND_CHOICES = field(
        default="fairseq",
        metadata={"help": "fairseq: fairseq's own generator; ctranslate2: convert the "
                  "checkpoint once (standard transformer architectures) and decode with "
                  "CTranslate2 (pip install ctranslate2); outputs differ slightly"})
    ct2_model_dir: str = field(
        default="", metadata={"help": "--backend ctranslate2: where the converted model is "
                              "kept (default: fairseq-bt-backtranslate: PREFIX.work/ct2_model in "
                              "--output-dir; fairseq-bt-evaluate: OUTPUT_PREFIX.ct2_model)"})
    ct2_compute_type: CT2_COMPUTE_TYPES = field(
        default="auto",
        metadata={"help": "--backend ctranslate2: weights and arithmetic (CTranslate2's "
                  "compute_type); auto: int8 on CPU (faster than float32 at the same held-out "
                  "BLEU: README, Benchmarks), float16 on GPU"})
    ct2_inter_threads: int = field(
        default=0,
        metadata={"help": "--backend ctranslate2: batches decoded at the same time, each by "
                  "its own thread (0: one per available CPU core; 1 on "
                  "GPU); sampling gives the same samples for any number"})
    ct2_intra_threads: int = field(
        default=1,
        metadata={"help": "--backend ctranslate2: threads that share the work of one batch "
                  "(more pay off only for large models)"})
    workers: int = field(
        default=0,
        metadata={"help": "fairseq backend on CPU: processes of one torch thread each that "
                  "decode a chunk's batches at the same time, merged in order (the output is "
                  "the same for any number); 0: one per available CPU core; 1: this process "
                  "alone, with --cpu-threads"})
    cpu: bool = field(default=False, metadata={"help": "decode on CPU even if CUDA is there"})
    fp16: bool = field(default=False, metadata={"help": "decode in half precision (GPU)"})
    cpu_threads: int = field(
        default=0, metadata={"help": "torch CPU threads of a process that decodes alone "
                             "(--workers 1, GPU; 0: torch's default); --workers 1 "
                             "--cpu-threads 1 when running one shard per core"})


def other_default(cls: Type, name: str, default: Any) -> dataclasses.Field:
    """The field ``name`` of ``cls`` (its help text and alias) with another default, for a
    subclass: ``max_len_b: int = other_default(DecodingConfig, "max_len_b", 10)``."""
    return field(default=default, metadata=cls.__dataclass_fields__[name].metadata)


def same_field(cls: Type, name: str) -> dataclasses.Field:
    """The field ``name`` of ``cls`` (default, help text, alias) for another tool's config
    that takes the same option without the rest of ``cls``."""
    f = cls.__dataclass_fields__[name]
    return field(default=f.default, metadata=f.metadata)


def model_paths(path: str) -> List[str]:
    """The checkpoints of ``--path`` (fairseq's ``a.pt:b.pt`` ensemble convention, as its
    ``utils.split_paths``: ``|`` separates URLs)."""
    return [p for p in path.split("|" if "://" in path else os.pathsep) if p]


def absolute_model_path(path: str) -> str:
    """``--path`` with every checkpoint made absolute (summaries, results)."""
    return ":".join(os.path.abspath(p) for p in model_paths(path))


def is_ct2_model_dir(path: str) -> bool:
    """Whether ``path`` is a CTranslate2 model directory (a ``model.bin`` in it)."""
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, "model.bin"))


def validate_decoding(cfg: DecodingConfig) -> None:
    check(bool(model_paths(cfg.path)), "--path: no checkpoint given")
    check(cfg.backend == "ctranslate2" or not is_ct2_model_dir(cfg.path),
          f"--path {cfg.path}: a CTranslate2 model directory: give --backend ctranslate2")
    check(cfg.backend != "ctranslate2" or len(model_paths(cfg.path)) == 1,
          f"--path {cfg.path}: --backend ctranslate2 decodes one checkpoint (CTranslate2 has "
          "no ensembles); use --backend fairseq for an ensemble")
    check(cfg.beam >= 1, f"--beam must be >= 1, got {cfg.beam}")
    check(cfg.batch_size is None or cfg.batch_size >= 1, "--batch-size must be >= 1")
    check(cfg.max_tokens is None or cfg.max_tokens >= 1, "--max-tokens must be >= 1")
    check(cfg.workers >= 0, f"--workers must be >= 0 (0: one per CPU core), got {cfg.workers}")
    check(cfg.ct2_inter_threads >= 0, "--ct2-inter-threads must be >= 0 (0: one per CPU core)")
    check(cfg.ct2_intra_threads >= 1, "--ct2-intra-threads must be >= 1")
    check(cfg.source_lang != cfg.target_lang, "--source-lang and --target-lang are the same")
