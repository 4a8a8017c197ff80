"""``fairseq-bt-evaluate``: translate a raw test set and score it with sacrebleu.

Decodes with the translator and decoding options of ``fairseq-bt-backtranslate``
(:mod:`fairseq_bt_plugin.inference`: every line, in order; an input line that cannot be
translated gives an empty hypothesis, never a shifted one), detokenises, and scores BLEU and
chrF and chrF++ against the raw references. Writes ``PREFIX.hyp`` and ``PREFIX.json`` (scores with
their sacrebleu signatures) atomically; the JSON file marks the stage as finished. Line-break
characters inside a line (``\\r``, ``\\u2028``, ...) become spaces, counted in the JSON file.
"""
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from omegaconf import MISSING

from .atomic import atomic_open
from .errors import check, run_reporting_user_errors
from .inference.config import DecodingConfig, absolute_model_path, model_paths, other_default
from .inference.reader import Chunk
from .inference.factory import build_translator
from .options import parse_dataclass
from .progress_line import TRANSLATED
from .text_processing import LINE_BREAKS_KEY, read_text_lines

PROG = "fairseq-bt-evaluate"
CHUNK = 1000  # lines given to the translator at a time (it sorts each into batches)


@dataclass
class EvaluateConfig(DecodingConfig):
    # evaluation's own output length limit (test sentences are short; the generator's default
    # is a fixed 200 tokens)
    max_len_a: float = other_default(DecodingConfig, "max_len_a", 1.5)
    max_len_b: int = other_default(DecodingConfig, "max_len_b", 10)
    input: str = field(default=MISSING, metadata={"help": "raw source sentences (test set)"})
    reference: str = field(default=MISSING, metadata={"help": "raw reference translations"})
    output_prefix: str = field(default=MISSING,
                               metadata={"help": "writes PREFIX.hyp and PREFIX.json"})
    system: str = field(default="", metadata={"help": "system name stored in the JSON"})
    log_interval: float = field(
        default=0.0, metadata={"help": "seconds between progress lines on stderr ('N of M "
                               "sentences translated, R sentences/s'); 0: none"})


class SentenceProgress:
    """'N of M sentences translated, R sentences/s' on stderr at most every ``interval``
    seconds and at the end (``interval`` 0: silent); the pipeline's status line reads it."""

    def __init__(self, total: int, interval: float, prog: str = PROG):
        self.total, self.interval, self.done, self.prog = total, interval, 0, prog
        self.start = self.last = time.time()

    def batch(self, n: int) -> None:
        self.done += n
        now = time.time()
        if self.interval > 0 and (now - self.last >= self.interval or self.done >= self.total):
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            print(TRANSLATED.format(self.prog, done=self.done, total=self.total, rate=rate),
                  file=sys.stderr, flush=True)


def translate_lines(cfg: DecodingConfig, lines: List[str], ct2_dir: str, nbest: int = 1,
                    log_interval: float = 0.0, prog: str = PROG) -> List[List[str]]:
    """The ``nbest`` translations of each of ``lines`` (raw, one sentence each), in order; an
    empty line, or one longer than the model takes (a warning), gets empty translations.
    ``fairseq-bt-translate`` uses it too: the same batches, hence the same output."""
    model = build_translator(cfg, ct2_dir, search={"nbest": nbest} if nbest > 1 else None,
                             scores=False)
    progress = SentenceProgress(sum(1 for x in lines if x), log_interval, prog)
    out: Dict[int, List[str]] = {}
    too_long = 0
    try:
        for start in range(0, len(lines), CHUNK):
            chunk = Chunk(start // CHUNK, [(i, lines[i]) for i in range(
                start, min(start + CHUNK, len(lines))) if lines[i]])
            hyps, skipped, _ = model.translate_chunk(chunk, on_batch=progress.batch)
            for h in hyps:
                out.setdefault(h.line, []).append(h.synthetic)
            too_long += sum(skipped.values())
    finally:
        model.close()
    if too_long:
        print(f"{prog}: warning: {too_long} lines are longer than the model's "
              f"{model.max_source_positions} tokens: empty translations", file=sys.stderr)
    return [(out.get(i, []) + [""] * nbest)[:nbest] for i in range(len(lines))]


def evaluate(cfg: EvaluateConfig) -> Dict:
    import sacrebleu

    breaks = {"input": Counter(), "reference": Counter()}
    inputs = read_text_lines(cfg.input, breaks["input"])  # every line text, first
    num_inputs = len(inputs)
    refs = read_text_lines(cfg.reference, breaks["reference"])
    check(num_inputs == len(refs),
          f"{cfg.input} has {num_inputs} lines but {cfg.reference} has {len(refs)}")
    check(num_inputs > 0, f"{cfg.input}: empty file")
    start = time.time()
    hyps = [t[0] for t in translate_lines(cfg, inputs, cfg.output_prefix + ".ct2_model",
                                          log_interval=cfg.log_interval)]
    seconds = time.time() - start
    bleu = sacrebleu.metrics.BLEU()
    chrf = sacrebleu.metrics.CHRF()
    chrfpp = sacrebleu.metrics.CHRF(word_order=2)  # chrF++: word bigrams too
    b, c = bleu.corpus_score(hyps, [refs]), chrf.corpus_score(hyps, [refs])
    cpp = chrfpp.corpus_score(hyps, [refs])
    result = {
        "system": cfg.system or os.path.basename(os.path.dirname(
            os.path.abspath(model_paths(cfg.path)[0]))),
        "checkpoint": absolute_model_path(cfg.path), "source_lang": cfg.source_lang,
        "target_lang": cfg.target_lang, "input": os.path.abspath(cfg.input),
        "reference": os.path.abspath(cfg.reference), "sentences": len(hyps),
        "bleu": round(b.score, 2), "chrf": round(c.score, 2), "chrfpp": round(cpp.score, 2),
        "bleu_signature": str(bleu.get_signature()), "chrf_signature": str(chrf.get_signature()),
        "chrfpp_signature": str(chrfpp.get_signature()),
        "beam": cfg.beam, "decode_seconds": round(seconds, 1),
        LINE_BREAKS_KEY: {k: v[LINE_BREAKS_KEY] for k, v in breaks.items()},
    }
    os.makedirs(os.path.dirname(os.path.abspath(cfg.output_prefix)), exist_ok=True)
    with atomic_open(cfg.output_prefix + ".hyp") as f:
        f.writelines(h + "\n" for h in hyps)
    with atomic_open(cfg.output_prefix + ".json") as f:  # last: marks the stage finished
        f.write(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: Optional[List[str]] = None) -> None:
    def run() -> None:
        cfg = parse_dataclass(EvaluateConfig, sys.argv[1:] if argv is None else argv, PROG,
                    __doc__.split("\n\n")[0])
        r = evaluate(cfg)
        print(f"{r['system']}: BLEU {r['bleu']} chrF {r['chrf']} chrF++ {r['chrfpp']} "
              f"({r['sentences']} sentences; "
              f"{r['bleu_signature']})")

    run_reporting_user_errors(run, PROG)


if __name__ == "__main__":
    main()
