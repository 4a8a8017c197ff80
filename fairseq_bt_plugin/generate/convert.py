"""``fairseq-bt-convert``: the stdout of a plain ``fairseq-generate`` / ``fairseq-interactive``
run with a reverse model -> the aligned files of ``fairseq-bt-backtranslate``.

Pairs are matched by the sentence id of the ``S-``, ``H-`` and ``D-`` lines, never by the order
of the log lines (fairseq prints batches in length order, and workers interleave). Ids with no
hypothesis are reported (how many, which); that is an error unless ``--allow-missing``. A log
of more than one run (an id's source twice, or more hypotheses for some ids than for the others)
is an error naming the line, before anything is written.
"""
import math
import os
import re
import shutil
import sys
from collections import Counter
from typing import Dict, Iterable, List, Optional, Tuple

from ..errors import BTUserError, check, run_reporting_user_errors
from ..text_processing import LINE_BREAKS_KEY, bad_line_error, decode_lines, read_raw_lines
from .config import BTConvertConfig, options_dict, parse, resolved_weights
from ..inference.translator import Hypothesis
from .writer import ChunkHeader, OutputNames, WorkStore, assemble

PROG = "fairseq-bt-convert"
LINE = re.compile(r"^([SHDP])-(\d+)\t(.*)$")
SP_SPACE = "\u2581"


class ParsedLog:
    """Sources (S-), hypotheses (H-) and detokenised hypotheses (D-) by sentence id; each
    hypothesis is ``(score, text)`` in the order printed (best first)."""

    def __init__(self):
        self.sources: Dict[int, str] = {}
        self.hyps: Dict[int, List[Tuple[float, str]]] = {}
        self.detoks: Dict[int, List[Tuple[float, str]]] = {}
        self.positional: Dict[int, List[List[float]]] = {}  # P- lines: log2 per token
        self.line_numbers: Dict[Tuple[str, int], List[int]] = {}  # (S/H/D/P, id): its lines


def parse_log(lines: Iterable[Tuple[int, Optional[str], Optional[str]]], path: str
              ) -> ParsedLog:
    """The log from :func:`~fairseq_bt_plugin.text_processing.decode_lines`; a line that is not
    text (invalid UTF-8, NUL byte) is an error naming ``path`` and the line."""
    log = ParsedLog()
    for n, raw, problem in lines:
        if problem:
            raise bad_line_error(path, n, problem)
        m = LINE.match(raw)
        if not m:
            continue
        kind, i, rest = m.group(1), int(m.group(2)), m.group(3)
        if kind == "S":
            if i in log.sources:
                raise BTUserError(f"{path}:{n}: sentence id {i} repeated (S-{i} also on line "
                                  f"{log.line_numbers[('S', i)][0]}): one log per run, never "
                                  "several concatenated (their ids repeat); convert each on "
                                  "its own")
            log.sources[i] = rest
            log.line_numbers[("S", i)] = [n]
            continue
        if kind == "P":
            try:
                log.positional.setdefault(i, []).append([float(x) for x in rest.split()])
            except ValueError:
                continue
            log.line_numbers.setdefault((kind, i), []).append(n)
            continue
        score, _, text = rest.partition("\t")
        try:
            value = float(score)
        except ValueError:
            continue
        (log.hyps if kind == "H" else log.detoks).setdefault(i, []).append((value, text))
        log.line_numbers.setdefault((kind, i), []).append(n)
    check_consistent(log, path)
    return log


def check_consistent(log: ParsedLog, path: str) -> None:
    """Every sentence with hypotheses has as many as the others (fairseq prints --nbest for
    each) and as many D- and P- lines as H- lines: else the log holds the lines of more than
    one run, and ids would pair one run's sources with another's hypotheses. The error names
    the first line that does not fit."""
    per_id = {i: len(log.hyps.get(i) or log.detoks.get(i) or []) for i in
              set(log.hyps) | set(log.detoks)}
    if not per_id:
        return
    nbest = Counter(per_id.values()).most_common(1)[0][0]
    for i in sorted(per_id):
        for kind in "HDP":
            lines = log.line_numbers.get((kind, i), [])
            if lines and len(lines) != nbest:
                at = lines[nbest] if len(lines) > nbest else lines[0]
                raise BTUserError(
                    f"{path}:{at}: sentence id {i} has {len(lines)} {kind}- lines, the log's "
                    f"other sentences {nbest}: the lines of more than one run (logs "
                    "concatenated?); convert one run's log at a time")


def missing_ids(log: ParsedLog, expected: int) -> List[int]:
    """Ids without a source or a hypothesis: of 0..expected-1, or (expected < 0) of 0 up to
    the largest id seen."""
    seen = set(log.sources) | set(log.hyps) | set(log.detoks)
    n = expected if expected >= 0 else (max(seen) + 1 if seen else 0)
    return [i for i in range(n) if i not in log.sources or not (log.hyps.get(i) or
                                                                  log.detoks.get(i))]


def log_probabilities(score: float, hyp: str, positional: Optional[List[float]]
                      ) -> Tuple[float, float]:
    """``(average, sum)`` of the natural-log token log-probabilities of a hypothesis: from its
    ``P-`` line (log2 per token, eos included) when the log has one; otherwise from the ``H-``
    score (log2, divided by length^lenpen: exact for --lenpen 1) times the tokens + eos."""
    if positional:
        total = sum(positional) * math.log(2)
        return total / len(positional), total
    average = score * math.log(2)
    return average, average * (len(hyp.split()) + 1)


def convert(cfg: BTConvertConfig) -> Dict:
    counts: Counter = Counter()
    if cfg.log == "-":
        log = parse_log(decode_lines(sys.stdin.buffer, "<stdin>", counts), "<stdin>")
    else:
        check(os.path.isfile(cfg.log), f"{cfg.log}: log file not found")
        log = parse_log(read_raw_lines(cfg.log, counts), cfg.log)
    check(bool(log.hyps or log.detoks), f"{cfg.log}: no H-/D- lines (not a fairseq-generate "
          "or fairseq-interactive log?)")
    missing = missing_ids(log, cfg.expected)
    seen = set(log.sources) | set(log.hyps)
    total = cfg.expected if cfg.expected >= 0 else max(seen) + 1
    if missing and not cfg.allow_missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise BTUserError(f"{cfg.log}: {len(missing)} of {total} sentence ids have no source or "
                          f"hypothesis (ids {shown}); pass --allow-missing to write the others")
    sp = None
    if cfg.spm_model:
        from ..text_processing import TextProcessor

        sp = TextProcessor(cfg.spm_model, cfg.target_lang, normalize=False)

    def text(s: str) -> str:
        return sp.decode(s) if sp is not None and SP_SPACE in s else s

    records, missing_set = [], set(missing)
    for i in range(total):
        if i in missing_set:
            continue
        hyps = log.hyps.get(i) or log.detoks[i]
        detoks = log.detoks.get(i) or []
        positional = log.positional.get(i) or []
        for k, (score, hyp) in enumerate(hyps[: cfg.nbest]):
            synthetic = detoks[k][1] if k < len(detoks) else text(hyp)
            average, total = log_probabilities(score, hyp, positional[k] if k < len(positional)
                                               else None)
            records.append(Hypothesis(i, k, synthetic, text(log.sources[i]), hyp,
                                      log.sources[i], average, total))
    store = WorkStore(cfg.output_dir, cfg.prefix + ".convert")
    os.makedirs(store.dir, exist_ok=True)
    try:
        store.save_chunk(ChunkHeader(0, total, total - len(missing), len(records), 0.0,
                                     {"missing_id": len(missing)} if missing else {}, {},
                                     line_breaks_replaced=counts[LINE_BREAKS_KEY]),
                         records)
        names = OutputNames(cfg.output_dir, cfg.prefix, cfg.target_lang, cfg.source_lang)
        summary = {"command": "convert", "log": os.path.abspath(cfg.log) if cfg.log != "-"
                   else "-", "options": options_dict(cfg), "missing_ids": missing[:1000],
                   "missing_count": len(missing)}
        return assemble([(store, 0)], names, keep_duplicates=True, binarize=None,
                        summary=summary, weights=resolved_weights(cfg.weights, None))
    finally:
        shutil.rmtree(store.dir, ignore_errors=True)


def main(argv: Optional[List[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)

    def run() -> None:
        summary = convert(parse(BTConvertConfig, argv, PROG, __doc__.split("\n\n")[0]))
        print(f"{PROG}: {summary['output_pairs']} pairs; {summary['missing_count']} ids "
              "missing", file=sys.stderr)

    run_reporting_user_errors(run, PROG)


if __name__ == "__main__":
    main()
