"""``fairseq-bt-backtranslate`` (decode), ``fairseq-bt-backtranslate merge`` (join shards) and
``fairseq-bt-backtranslate copy`` (the copied-text control, :mod:`.copied`)."""
import dataclasses
import os
import sys
import time
from typing import Dict, List, Optional, Tuple

from ..errors import check, run_reporting_user_errors
from ..fingerprint import fingerprint, same_contents
from ..inference.config import absolute_model_path
from ..inference.reader import count_lines, input_files, read_chunks
from ..progress_line import DECODED
from .config import (BTCopyConfig, BTGenerateConfig, BTMergeConfig, hashed_options,
                     model_data_dir, options_dict, options_hash, parse, resolved_weights,
                     target_languages)
from .writer import ChunkHeader, OutputNames, WorkStore, assemble, binarize_spec

PROG = "fairseq-bt-backtranslate"
FORMER_PROG = "fairseq-bt-generate"  # the deprecated name, still installed (:func:`former_main`)
DESCRIPTION = ("Back-translate target-language monolingual text with a reverse fairseq model "
               "into line-aligned synthetic source / original target files (resumable, "
               "shardable). 'fairseq-bt-backtranslate merge --help': join shard outputs; "
               "'fairseq-bt-backtranslate copy --help': each sentence its own source (the "
               "copied-text control).")


class Progress:
    """A tqdm bar (sentences/s, ETA) on a terminal; otherwise a log line every few seconds.
    Advanced after every batch (``batch``) and at the end of every chunk (``update``), so a
    long chunk is not silent."""

    def __init__(self, total: Optional[int], interval: float, tty: Optional[bool] = None):
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.interval, self.start, self.last = interval, time.time(), time.time()
        self.lines = self.decoded = 0
        self.in_chunk = 0  # sentences of the current chunk decoded (and shown) so far
        self.bar = None
        if self.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="sent", dynamic_ncols=True, file=sys.stderr)

    def batch(self, chunk: int, sentences: int) -> None:
        """``sentences`` more lines of chunk ``chunk`` decoded."""
        self.in_chunk += sentences
        self._show(chunk, sentences)

    def update(self, chunk: int, lines: int, decoded: int) -> None:
        """Chunk ``chunk`` finished: ``lines`` input lines, ``decoded`` of them decoded."""
        self.lines += lines
        self.decoded += decoded
        shown, self.in_chunk = self.in_chunk, 0
        self._show(chunk, lines - shown)

    def _show(self, chunk: int, advance: int) -> None:
        if self.bar is not None:
            self.bar.update(max(advance, 0))
            self.bar.set_postfix(chunk=chunk, decoded=self.decoded + self.in_chunk)
        elif time.time() - self.last >= self.interval:
            self.last = time.time()
            self.log(chunk)

    def log(self, chunk: int) -> None:
        decoded = self.decoded + self.in_chunk
        rate = decoded / max(time.time() - self.start, 1e-9)
        print(DECODED.format(PROG, chunk=chunk, lines=self.lines + self.in_chunk,
                             decoded=decoded, rate=rate), file=sys.stderr, flush=True)

    def close(self, chunk: int) -> None:
        if self.bar is not None:
            self.bar.close()
        else:
            self.log(chunk)


def generate(cfg: BTGenerateConfig) -> Dict:
    """Decode every chunk of this shard not yet done, then assemble the final files."""
    from .decoder import reverse_model

    files = input_files(cfg.input)
    model = reverse_model(cfg)  # every model / dictionary / spm error before anything is written
    binarize = binarize_spec(cfg, model.data, options_dict(cfg))
    store = WorkStore(cfg.output_dir, cfg.prefix)
    used = [*model.model_files(), *files, cfg.spm_model, cfg.target_spm_model]
    store.begin(hashed_options(cfg), options_hash(cfg), (cfg.shard_id, cfg.num_shards),
                [fingerprint(p) for p in used if p])

    def mine(c: int) -> bool:
        return c % cfg.num_shards == cfg.shard_id

    try:
        num_lines, chunk_count = _decode(cfg, files, model, store, mine)
    finally:
        model.close()
    names = OutputNames(cfg.output_dir, cfg.prefix, cfg.target_lang, cfg.source_lang)
    summary = {"command": "generate", "model": absolute_model_path(cfg.path), "seed": cfg.seed,
               "shard": [cfg.shard_id, cfg.num_shards], "options": options_dict(cfg),
               "ct2_convert_seconds": model.convert_seconds}
    return assemble([(store, c) for c in range(chunk_count) if mine(c)], names,
                    cfg.keep_duplicates, binarize, summary,
                    resolved_weights(cfg.weights, cfg.mode))


def _decode(cfg: BTGenerateConfig, files: List[str], model, store: WorkStore, mine
            ) -> Tuple[int, int]:
    """Decode and save every chunk of ``mine`` not done yet; (input lines, chunks)."""
    from .filters import filter_hypotheses

    tty = sys.stderr.isatty()
    progress = Progress(count_lines(files) if tty else None, cfg.log_interval, tty)
    num_lines, chunk_count, last = 0, 0, 0
    for chunk in read_chunks(files, cfg.chunk_size, cfg.max_input_chars, cfg.skip_invalid,
                             wanted=lambda c: mine(c) and not store.is_done(c)):
        num_lines += chunk.num_lines
        chunk_count, last = chunk.index + 1, chunk.index
        if not chunk.selected:
            progress.update(chunk.index, chunk.num_lines, 0)
            continue
        t0 = time.time()
        hypotheses, too_long, generate_seconds = model.translate_chunk(
            chunk, on_batch=lambda n, c=chunk.index: progress.batch(c, n))
        seconds = time.time() - t0
        kept, filtered = filter_hypotheses(hypotheses, cfg)
        skipped = dict(chunk.skipped)
        for k, v in too_long.items():
            skipped[k] = skipped.get(k, 0) + v
        translated = len(chunk.lines) - sum(too_long.values())
        store.save_chunk(ChunkHeader(chunk.index, chunk.num_lines, translated, len(hypotheses),
                                     seconds, skipped, dict(filtered), generate_seconds,
                                     chunk.line_breaks_replaced), kept)
        progress.update(chunk.index, chunk.num_lines, translated)
    progress.close(last)
    store.save_total(num_lines, chunk_count)
    return num_lines, chunk_count


def generate_all(cfg: BTGenerateConfig) -> List[Dict]:
    """:func:`generate` for ``-t``, or for each of ``--target-langs`` in turn (a run of its
    own in ``OUTPUT_DIR/LANG``, so each is resumed, sharded and merged as one ``-t`` run)."""
    if not cfg.target_langs:
        return [generate(cfg)]
    return [generate(dataclasses.replace(cfg, target_lang=lang,
                                         output_dir=os.path.join(cfg.output_dir, lang)))
            for lang in target_languages(cfg)]


def merge(cfg: BTMergeConfig) -> Dict:
    """Join finished shard outputs into exactly what one process would have written."""
    dirs = [d for d in cfg.shards.split(",") if d]
    check(bool(dirs), "--shards: no directory given")
    prefix = cfg.prefix
    stores = [WorkStore(d, prefix) for d in dirs]
    infos = [s.options() for s in stores]
    check(len({i["hash"] for i in infos}) == 1,
          "--shards: the shards were generated with different options")
    for d, info in zip(dirs[1:], infos[1:]):
        files, first = info.get("files", []), infos[0].get("files", [])
        check(len(files) == len(first) and all(map(same_contents, files, first)),
              f"--shards: {d} was generated from other files (checkpoint, input, "
              f"sentencepiece model or dictionaries) than {dirs[0]}")
    options = infos[0]["options"]
    check("weights" in options and "files" in infos[0],
          f"{dirs[0]}: made by an older fairseq-bt-backtranslate (no --weights, no file "
          "fingerprints): generate the shards again")
    n = options["num_shards"]
    by_id = {tuple(i["shard"])[0]: s for i, s in zip(infos, stores)}
    missing = sorted(set(range(n)) - set(by_id))
    check(not missing and len(dirs) == n,
          f"--shards: {n} shards expected, got {len(dirs)} (missing shard ids: {missing})")
    totals = [s.total() for s in stores]
    for d, t in zip(dirs, totals):
        check(t is not None, f"{d}: shard not finished (re-run its command)")
    check(len({(t["lines"], t["chunks"]) for t in totals}) == 1,
          "--shards: the shards read different inputs")
    chunks = []
    for c in range(totals[0]["chunks"]):
        store = by_id[c % n]
        check(store.is_done(c), f"{store.dir}: chunk {c} not finished (re-run shard {c % n})")
        chunks.append((store, c))
    names = OutputNames(cfg.output_dir, prefix, options["target_lang"], options["source_lang"])
    data = model_data_dir(options)
    summary = {"command": "merge", "model": absolute_model_path(options["path"]),
               "seed": options["seed"], "merged_from": dirs, "options": options}
    return assemble(chunks, names, options["keep_duplicates"],
                    binarize_spec(cfg, data, options),
                    summary, resolved_weights(options["weights"], options.get("mode")))


def _print_result(summary: Dict) -> None:
    options = summary["options"]
    lang = f"{options['target_lang']}: " if options.get("target_langs") else ""
    print(f"{PROG}: {lang}{summary['output_pairs']} pairs from {summary['input_lines']} input "
          f"lines (skipped {summary['skipped_input'] or 0}, filtered {summary['filtered'] or 0})"
          + (f"; {summary['sentences_per_second']} sentences/s"
             if summary.get("sentences_per_second") else "")
          + (f"; CTranslate2 conversion {summary['ct2_convert_seconds']} s"
             if summary.get("ct2_convert_seconds") else ""), file=sys.stderr)


def main(argv: Optional[List[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "copy":
        from .copied import copy_corpus

        prog = f"{PROG} copy"
        run_reporting_user_errors(lambda: _print_result(copy_corpus(parse(
            BTCopyConfig, argv[1:], prog, "The copied-monolingual-text control (Currey et al. "
            "2017): every sentence of --input as its own synthetic source, in the files and "
            "binarized corpus fairseq-bt-backtranslate writes; no model"))), prog)
    elif argv and argv[0] == "merge":
        prog = f"{PROG} merge"
        run_reporting_user_errors(lambda: _print_result(merge(parse(
            BTMergeConfig, argv[1:], prog, "Join shard outputs of fairseq-bt-backtranslate into "
            "the single-process output"))), prog)
    else:
        run_reporting_user_errors(lambda: [_print_result(s) for s in generate_all(parse(
            BTGenerateConfig, argv, PROG, DESCRIPTION))], PROG)


def former_main() -> None:
    """``fairseq-bt-generate``, the former name: :func:`main` after one line on stderr."""
    print(f"{FORMER_PROG} is now {PROG}", file=sys.stderr, flush=True)
    main()
