"""``fairseq-bt-filter``: drop the synthetic pairs of a ``fairseq-bt-backtranslate`` output that
the models score worst; writes the kept pairs in the generator's format (a corpus for
``bt_translation --bt-data``).

Reads the generator's ``BT_DIR/PREFIX.{SYN,ORIG,scores,summary.json}`` and its binarized
corpus (``--binarize-to``: the exact token ids of the pairs). Writes the same files under
``OUTPUT_DIR`` (weights recomputed over the kept sources of each input sentence, as the
generator computes them), ``OUTPUT_DIR/bin``, and ``PREFIX.filter`` (per input pair: H_f,
H_r, score, kept). Everything is written under temp names and moved into place at the end;
the summary, written last, marks the output finished.
"""
import contextlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from fairseq.dataclass import FairseqDataclass
from omegaconf import MISSING

from ..atomic import atomic_open, remove_files, replace_all
from ..errors import check, run_reporting_user_errors
from ..generate.config import BTGenerateConfig, model_data_dir
from ..generate.writer import BinarizeSpec, OutputNames, write_binarized_tokens, write_scores
from ..inference.config import DecodingConfig, absolute_model_path, model_paths, same_field
from ..options import ChoiceEnum, parse_dataclass
from .scoring import cross_entropies, dual_score, kept_pairs

PROG = "fairseq-bt-filter"
METHOD_CHOICES = ChoiceEnum(["dual", "reverse"])


@dataclass
class BTFilterConfig(FairseqDataclass):
    bt_dir: str = field(
        default=MISSING,
        metadata={"help": "output folder of fairseq-bt-backtranslate (PREFIX.SYN, PREFIX.ORIG, "
                  "PREFIX.scores, PREFIX.summary.json), generated with --binarize-to"})
    prefix: str = same_field(BTGenerateConfig, "prefix")
    bt_bin: str = field(
        default="", metadata={"help": "the generator's binarized corpus (default: its "
                              "--binarize-to folder, from PREFIX.summary.json)"})
    output_dir: str = field(
        default=MISSING,
        metadata={"help": "where the kept pairs go: the generator's files, PREFIX.filter "
                  "(per input pair: H_f, H_r, score, 1 kept / 0 dropped) and bin/ (for "
                  "bt_translation --bt-data)"})
    method: METHOD_CHOICES = field(
        default="dual",
        metadata={"help": "dual: dual conditional cross-entropy (Junczys-Dowmunt 2018), score "
                  "|H_f - H_r| + (H_f + H_r)/2 with H_f the forward model's per-token "
                  "cross-entropy of the original sentence given the synthetic one and H_r the "
                  "reverse model's of the synthetic sentence given the original, both by "
                  "fairseq's forced decoding; reverse: score H_r alone, minus the average "
                  "log-probability in PREFIX.scores (no model is run; noised_beam: of the "
                  "output before the noise)"})
    drop_worst: Optional[float] = field(
        default=None, metadata={"help": "drop this fraction of the pairs, the highest "
                                "scores (floor(F x pairs))"})
    max_score: Optional[float] = field(
        default=None, metadata={"help": "keep the pairs scoring at most this (nats per token)"})
    forward_path: str = field(
        default="", metadata={"help": "dual: the forward model (synthetic language -> "
                              "original), e.g. the baseline; a:b for an ensemble"})
    reverse_path: str = field(
        default="", metadata={"help": "dual: the reverse model (default: the generator's "
                              "--path)"})
    forward_data: str = field(
        default="", metadata={"help": "dual: the folder of the forward model's dict.SRC.txt "
                              "and dict.TGT.txt (default: the corpus's, --bt-bin)"})
    forward_spm_model: str = field(
        default="", metadata={"help": "dual: the forward model's sentencepiece model: with "
                              "dictionaries other than the corpus's, the pairs' text is "
                              "encoded with it and them (else that is an error)"})
    reverse_data: str = field(
        default="", metadata={"help": "dual: the folder of the reverse model's dictionaries "
                              "(default: the generator's --data when the reverse model is the "
                              "generator's, else the corpus's)"})
    reverse_spm_model: str = field(
        default="", metadata={"help": "dual: the reverse model's sentencepiece model, as "
                              "--forward-spm-model (default: the generator's --spm-model when "
                              "--reverse-data is the generator's too)"})
    max_tokens: Optional[int] = same_field(DecodingConfig, "max_tokens")
    batch_size: Optional[int] = same_field(DecodingConfig, "batch_size")
    cpu: bool = same_field(DecodingConfig, "cpu")
    cpu_threads: int = same_field(DecodingConfig, "cpu_threads")


@dataclass
class GeneratorOutput:
    """What the filter reads of a fairseq-bt-backtranslate output."""
    names: OutputNames
    summary: Dict
    bin: str
    rows: List[List[str]]  # PREFIX.scores: line, logprob, avg_logprob, weight

    @classmethod
    def read(cls, cfg: BTFilterConfig) -> "GeneratorOutput":
        path = os.path.join(cfg.bt_dir, f"{cfg.prefix}.summary.json")
        check(os.path.isfile(path), f"{path} not found: not a finished fairseq-bt-backtranslate "
              "output (--bt-dir, --prefix)")
        with open(path, encoding="utf-8") as f:
            summary = json.load(f)
        options = summary["options"]
        names = OutputNames(cfg.bt_dir, cfg.prefix, options["target_lang"],
                            options["source_lang"])
        bin_dir = cfg.bt_bin or summary.get("binarized") or ""
        check(bool(bin_dir), f"{path}: generated without --binarize-to; the filter reads the "
              "pairs' token ids from that corpus (--bt-bin)")
        with open(names.path("scores"), encoding="utf-8") as f:
            rows = [line.rstrip("\n").split("\t") for line in f]
        check(len(rows) == summary["output_pairs"],
              f"{names.path('scores')}: {len(rows)} rows, {path} says {summary['output_pairs']}")
        return cls(names, summary, bin_dir, rows)

    def tokens(self, lang: str):
        """The pairs' token ids in ``lang`` (eos included), from the binarized corpus."""
        from fairseq.data import data_utils

        syn, orig = self.names.synthetic_lang, self.names.original_lang
        prefix = os.path.join(self.bin, f"train.{syn}-{orig}.{lang}")
        check(os.path.exists(prefix + ".idx"), f"{prefix}.idx not found (--bt-bin)")
        data = data_utils.load_indexed_dataset(prefix, None, "mmap")
        check(len(data) == len(self.rows), f"{prefix}.idx holds {len(data)} pairs, "
              f"{self.names.path('scores')} {len(self.rows)}: not the same generator output")
        return data

    def encoded(self, lang: str, spm_model: str, dictionary):
        """The pairs' text in ``lang`` (PREFIX.LANG) as token ids (eos included) of
        ``dictionary``, encoded with ``spm_model`` as the generator's ``--binarize-to``
        encodes it (the synthetic side keeps the noise filler a piece of its own)."""
        import numpy as np
        from fairseq.data import ListDataset

        from ..text_processing import TextProcessor

        tp = TextProcessor(spm_model, lang)
        keep = {self.summary["options"]["noise_filler"]}
        with open(self.names.path(lang), encoding="utf-8") as f:
            ids = [dictionary.encode_line(tp.encode_keeping(line.rstrip("\n"), keep)
                                          if lang == self.names.synthetic_lang else
                                          tp.encode(line.rstrip("\n")),
                                          add_if_not_exist=False, append_eos=True).long()
                   for line in f]
        check(len(ids) == len(self.rows), f"{self.names.path(lang)}: {len(ids)} lines, "
              f"{self.names.path('scores')} {len(self.rows)}: not the same generator output")
        return ListDataset(ids, np.array([len(x) for x in ids]))


def validate(cfg: BTFilterConfig) -> None:
    check((cfg.drop_worst is None) != (cfg.max_score is None),
          "give one of --drop-worst and --max-score")
    check(cfg.drop_worst is None or 0.0 <= cfg.drop_worst < 1.0,
          f"--drop-worst must be in [0, 1), got {cfg.drop_worst}")
    check(cfg.method != "dual" or bool(cfg.forward_path),
          "--method dual needs --forward-path (the forward model, e.g. the baseline)")
    check(os.path.abspath(cfg.output_dir) != os.path.abspath(cfg.bt_dir),
          "--output-dir must not be --bt-dir (the generator's output is the input)")


@dataclass
class ScoringModel:
    """One model of ``--method dual``, with its vocabulary: its dictionaries' folder and the
    sentencepiece model that encodes the pairs' text for it ("" where none is known)."""
    flag: str  # forward / reverse: the options' prefix
    path: str
    data: str
    spm_model: str
    source_lang: str
    target_lang: str

    @classmethod
    def both(cls, cfg: BTFilterConfig, out: GeneratorOutput) -> List["ScoringModel"]:
        syn, orig = out.names.synthetic_lang, out.names.original_lang
        generator = out.summary["options"]
        reverse = cfg.reverse_path or out.summary["model"]
        # the generator's model with the generator's files: its own vocabulary, as it decoded
        own = absolute_model_path(reverse) == out.summary["model"] and not cfg.reverse_data
        return [cls("forward", cfg.forward_path, cfg.forward_data or out.bin,
                    cfg.forward_spm_model, syn, orig),
                cls("reverse", reverse,
                    cfg.reverse_data or (model_data_dir(generator) if own else out.bin),
                    cfg.reverse_spm_model or (generator["spm_model"] if own and not
                                              generator.get("target_spm_model") else ""),
                    orig, syn)]

    def corpus_ids(self, out: GeneratorOutput) -> bool:
        """Whether the model's dictionaries are the corpus's, so that the corpus's ids are
        its (symbols added after them, e.g. a tag, change no id); if not, the pairs' text is
        encoded with its sentencepiece model, and without one that is an error: never ids of
        another vocabulary."""
        from fairseq.data import Dictionary

        langs = (self.source_lang, self.target_lang)
        same = True
        for lang in langs:
            path = os.path.join(self.data, f"dict.{lang}.txt")
            check(os.path.isfile(path), f"{path}: dictionary not found (--{self.flag}-data)")
            model, corpus = (Dictionary.load(p).symbols for p in
                             (path, os.path.join(out.bin, f"dict.{lang}.txt")))
            same = same and model[:len(corpus)] == corpus
        check(same or bool(self.spm_model), f"--{self.flag}-path {self.path}: its "
              f"dictionaries ({self.data}/dict.{{{','.join(langs)}}}.txt) are not the "
              f"corpus's ({out.bin}): give --{self.flag}-spm-model (its sentencepiece model) "
              "to score the pairs in its own vocabulary")
        return same

    def tokens(self, out: GeneratorOutput, task) -> Tuple[object, object]:
        """The pairs' source and target token ids in the model's dictionaries (``task``'s):
        the corpus's (:meth:`corpus_ids`), or the pairs' text encoded with the model's
        sentencepiece model, as the generator binarizes it."""
        if self.corpus_ids(out):
            return out.tokens(self.source_lang), out.tokens(self.target_lang)
        return (out.encoded(self.source_lang, self.spm_model, task.source_dictionary),
                out.encoded(self.target_lang, self.spm_model, task.target_dictionary))


def model_scores(cfg: BTFilterConfig, out: GeneratorOutput) -> List[List[float]]:
    """``[H_f, H_r]`` per pair (``reverse``: ``[nan, H_r]`` from PREFIX.scores), each model
    scoring the pairs in its own vocabulary (:meth:`ScoringModel.tokens`)."""
    if cfg.method == "reverse":
        return [[math.nan, -float(r[2])] for r in out.rows]
    import torch

    from ..inference.translator import DEFAULT_MAX_TOKENS, load_models

    use_cuda = torch.cuda.is_available() and not cfg.cpu
    if cfg.cpu_threads > 0:
        torch.set_num_threads(cfg.cpu_threads)
    max_tokens = cfg.max_tokens or (None if cfg.batch_size else DEFAULT_MAX_TOKENS)
    scoring = ScoringModel.both(cfg, out)
    for model in scoring:  # a vocabulary error before any model is loaded
        model.corpus_ids(out)
    loaded = []
    for model in scoring:
        models, task = load_models(model_paths(model.path), model.data, model.source_lang,
                                   model.target_lang)
        loaded.append((models, task, model.tokens(out, task)))
    columns = []
    for models, task, (src, tgt) in loaded:
        for m in models:
            m.eval()
            if use_cuda:
                m.cuda()
        columns.append(cross_entropies(models, task, src, tgt, max_tokens, cfg.batch_size,
                                       use_cuda))
    return [list(pair) for pair in zip(*columns)]


def filter_corpus(cfg: BTFilterConfig) -> Dict:
    """Score every pair, write the kept ones; returns the summary."""
    validate(cfg)
    start = time.time()
    out = GeneratorOutput.read(cfg)
    h = model_scores(cfg, out)
    scores = [dual_score(f, r) if cfg.method == "dual" else r for f, r in h]
    keep = kept_pairs(scores, cfg.drop_worst, cfg.max_score)
    names = OutputNames(cfg.output_dir, cfg.prefix, out.names.synthetic_lang,
                        out.names.original_lang)
    write_outputs(out, names, h, scores, keep)
    kept_scores = [s for s, k in zip(scores, keep) if k]
    summary = {
        "command": "filter", "method": cfg.method, "drop_worst": cfg.drop_worst,
        "max_score": cfg.max_score, "input": os.path.abspath(out.names.path("summary.json")),
        "forward_model": absolute_model_path(cfg.forward_path) if cfg.method == "dual" else None,
        "reverse_model": (absolute_model_path(cfg.reverse_path or out.summary["model"])
                          if cfg.method == "dual" else out.summary["model"]),
        "input_pairs": len(keep), "output_pairs": sum(keep), "dropped": len(keep) - sum(keep),
        "unscored": sum(not math.isfinite(s) for s in scores),
        "highest_kept_score": round(max(kept_scores), 6) if kept_scores else None,
        "weights": out.summary["weights"], "seconds": round(time.time() - start, 3),
        "files": {k: f"{cfg.prefix}.{v}" for k, v in (
            ("synthetic_source", names.synthetic_lang), ("original_target", names.original_lang),
            ("scores", "scores"), ("weights", "weights"), ("filter_scores", "filter"))},
        "binarized": os.path.join(cfg.output_dir, "bin"),
    }
    with atomic_open(names.path("summary.json")) as f:
        json.dump(summary, f, indent=1, ensure_ascii=False)
    return summary


def write_outputs(out: GeneratorOutput, names: OutputNames, h: List[List[float]],
                  scores: List[float], keep: List[bool]) -> None:
    """The kept pairs' files and binarized corpus, moved into place together."""
    os.makedirs(names.output_dir, exist_ok=True)
    remove_files([names.path("summary.json")])  # unfinished until the new one is written
    syn, orig = names.synthetic_lang, names.original_lang
    finals = [names.path(s) for s in (syn, orig, "scores", "weights", "filter")]
    parts = {p: p + ".part" for p in finals}
    raw = names.path("scores.raw.part")
    try:
        with contextlib.ExitStack() as stack:
            inputs = [stack.enter_context(open(out.names.path(lang), encoding="utf-8"))
                      for lang in (syn, orig)]
            outputs = [stack.enter_context(atomic_open(parts[names.path(lang)]))
                       for lang in (syn, orig)]
            raw_rows = stack.enter_context(atomic_open(raw))
            detail = stack.enter_context(atomic_open(parts[names.path("filter")]))
            for i, (x, y, row) in enumerate(zip(*inputs, out.rows)):
                detail.write(f"{h[i][0]:.6f}\t{h[i][1]:.6f}\t{scores[i]:.6f}\t{int(keep[i])}\n")
                if keep[i]:
                    outputs[0].write(x)
                    outputs[1].write(y)
                    raw_rows.write("\t".join(row[:3]) + "\n")
        with atomic_open(parts[names.path("scores")]) as sf, \
                atomic_open(parts[names.path("weights")]) as wf, \
                open(raw, encoding="utf-8") as rf:
            write_scores(rf, sf, wf, out.summary["weights"])
        spec = BinarizeSpec(os.path.join(names.output_dir, "bin"),
                            os.path.join(out.bin, f"dict.{syn}.txt"),
                            os.path.join(out.bin, f"dict.{orig}.txt"))
        kept = [i for i, k in enumerate(keep) if k]
        tokens = tuple([data[i] for i in kept] for data in (out.tokens(syn), out.tokens(orig)))
        write_binarized_tokens(tokens, parts[names.path("weights")], names, spec)
        replace_all(parts)
    finally:
        remove_files(list(parts.values()) + [raw])


def main(argv: Optional[List[str]] = None) -> None:
    def run() -> None:
        import fairseq_bt_plugin  # noqa: F401  (bt_* archs, torch.load fix)

        cfg = parse_dataclass(BTFilterConfig, sys.argv[1:] if argv is None else argv, PROG,
                              __doc__.split("\n\n")[0])
        s = filter_corpus(cfg)
        print(f"{PROG}: {s['output_pairs']} of {s['input_pairs']} pairs kept ({cfg.method}; "
              f"dropped {s['dropped']}, highest kept score {s['highest_kept_score']}) in "
              f"{cfg.output_dir}", file=sys.stderr)

    run_reporting_user_errors(run, PROG)

