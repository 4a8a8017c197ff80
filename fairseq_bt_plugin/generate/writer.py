"""Outputs: the resumable chunk store, the final aligned files, the binarized corpus.

``OUT/PREFIX.work/`` holds ``options.json`` (the options and their hash: a re-run with other
options is refused) and one ``chunk-NNNNNN.jsonl`` per finished chunk, each written to a temp
file and moved into place, so a chunk file exists only when complete. The final files are
assembled from the chunk files in chunk order (so shards merge into exactly the single-process
output), each written to a temp file and moved into place; the summary is written last.
"""
import contextlib
import json
import math
import os
import shutil
from collections import Counter
from dataclasses import astuple, dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import BTUserError, check
from .decoder import Hypothesis
from .filters import DuplicateFilter

CHUNK_FORMAT = "chunk-{:06d}.jsonl"


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "w"):
    """Write ``path`` through a temp file that replaces it only if the block succeeds."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, mode, **({"encoding": "utf-8"} if "b" not in mode else {})) as f:
            yield f
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@dataclass
class ChunkHeader:
    chunk: int
    num_lines: int  # input lines in the chunk
    translated: int  # sentences decoded
    hypotheses: int
    seconds: float  # time to translate the chunk: text processing and generation
    skipped: Dict[str, int]  # input lines skipped, by reason
    filtered: Dict[str, int]  # hypotheses dropped, by reason
    generate_seconds: float = 0.0  # of which in fairseq's generator


class WorkStore:
    """The chunk files and options of one run (one shard) in ``OUT/PREFIX.work``."""

    def __init__(self, output_dir: str, prefix: str):
        self.dir = os.path.join(output_dir, f"{prefix}.work")

    def chunk_path(self, c: int) -> str:
        return os.path.join(self.dir, CHUNK_FORMAT.format(c))

    def is_done(self, c: int) -> bool:
        return os.path.exists(self.chunk_path(c))

    def begin(self, options: Dict, options_hash: str, shard: Tuple[int, int] = (0, 1)) -> None:
        """Create the store, or check that an existing one was made with the same options."""
        os.makedirs(self.dir, exist_ok=True)
        path = os.path.join(self.dir, "options.json")
        if os.path.exists(path):
            old = self.options()
            if old["hash"] != options_hash:
                diff = [k for k in sorted(set(old["options"]) | set(options))
                        if old["options"].get(k) != options.get(k)]
                shown = ", ".join(f"--{k.replace('_', '-')} {old['options'].get(k)!r} -> "
                                  f"{options.get(k)!r}" for k in diff[:4])
                raise BTUserError(
                    f"{os.path.dirname(self.dir) or '.'} holds a run with other options "
                    f"({shown}); use another --output-dir or remove {self.dir} to start over")
            return
        with atomic_open(path) as f:
            json.dump({"hash": options_hash, "options": options, "shard": list(shard)}, f,
                      indent=1, sort_keys=True)

    def options(self) -> Dict:
        path = os.path.join(self.dir, "options.json")
        check(os.path.exists(path), f"{path} not found: not a fairseq-bt-generate output")
        with open(path, encoding="utf-8") as f:
            return json.load(f)

    def save_chunk(self, header: ChunkHeader, hypotheses: Sequence[Hypothesis]) -> None:
        with atomic_open(self.chunk_path(header.chunk)) as f:
            f.write(json.dumps(header.__dict__, ensure_ascii=False) + "\n")
            for h in hypotheses:
                f.write(json.dumps(astuple(h), ensure_ascii=False) + "\n")

    def save_total(self, num_lines: int, num_chunks: int) -> None:
        with atomic_open(os.path.join(self.dir, "total.json")) as f:
            json.dump({"lines": num_lines, "chunks": num_chunks}, f)

    def total(self) -> Optional[Dict[str, int]]:
        path = os.path.join(self.dir, "total.json")
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as f:
            return json.load(f)

    def read_header(self, c: int) -> ChunkHeader:
        with open(self.chunk_path(c), encoding="utf-8") as f:
            return ChunkHeader(**json.loads(f.readline()))

    def read_hypotheses(self, c: int) -> Iterator[Hypothesis]:
        with open(self.chunk_path(c), encoding="utf-8") as f:
            f.readline()
            for line in f:
                yield Hypothesis(*json.loads(line))


@dataclass
class OutputNames:
    output_dir: str
    prefix: str
    synthetic_lang: str  # the reverse model's target: forward source
    original_lang: str  # the reverse model's source: forward target

    def path(self, suffix: str) -> str:
        return os.path.join(self.output_dir, f"{self.prefix}.{suffix}")


@dataclass
class BinarizeSpec:
    destdir: str
    srcdict: str  # forward source (synthetic language) dictionary
    tgtdict: str  # forward target (original language) dictionary


def assemble(chunks: List[Tuple[WorkStore, int]], names: OutputNames, keep_duplicates: bool,
             binarize: Optional[BinarizeSpec], summary: Dict) -> Dict:
    """Write the final files from ``chunks`` (in this order); returns the summary.

    Per pair ``PREFIX.scores`` holds ``avg_logprob<TAB>weight`` and ``PREFIX.weights`` the
    weight alone: ``exp(avg_logprob)`` scaled so that the weights average 1 (for
    ``bt_translation --bt-weighted``)."""
    os.makedirs(names.output_dir, exist_ok=True)
    counts: Counter = Counter()
    skipped: Counter = Counter()
    filtered: Counter = Counter()
    seconds = generate_seconds = 0.0
    dedup = None if keep_duplicates else DuplicateFilter()
    syn_path, orig_path = names.path(names.synthetic_lang), names.path(names.original_lang)
    tok_paths = (syn_path + ".pieces", orig_path + ".pieces")
    log_norm, kept = -math.inf, 0
    with contextlib.ExitStack() as stack:
        syn = stack.enter_context(atomic_open(syn_path + ".part"))
        orig = stack.enter_context(atomic_open(orig_path + ".part"))
        raw_scores = stack.enter_context(atomic_open(names.path("scores.part")))
        toks = [stack.enter_context(atomic_open(p)) for p in tok_paths] if binarize else None
        for store, c in chunks:
            header = store.read_header(c)
            counts.update(lines=header.num_lines, translated=header.translated,
                          hypotheses=header.hypotheses)
            skipped.update(header.skipped)
            filtered.update(header.filtered)
            seconds += header.seconds
            generate_seconds += header.generate_seconds
            for h in store.read_hypotheses(c):
                if dedup is not None and dedup.is_duplicate(h.synthetic, h.original):
                    filtered["duplicate"] += 1
                    continue
                syn.write(h.synthetic + "\n")
                orig.write(h.original + "\n")
                raw_scores.write(f"{h.score:.6f}\n")
                if toks:
                    toks[0].write(h.synthetic_pieces + "\n")
                    toks[1].write(h.original_pieces + "\n")
                log_norm = float(np.logaddexp(log_norm, round(h.score, 6)))
                kept += 1
    log_mean = log_norm - math.log(kept) if kept else 0.0
    with atomic_open(names.path("scores")) as scores, atomic_open(names.path("weights")) as wf, \
            open(names.path("scores.part"), encoding="utf-8") as raw:
        for line in raw:
            s = float(line)
            w = math.exp(s - log_mean)
            scores.write(f"{s:.6f}\t{w:.6f}\n")
            wf.write(f"{w:.6f}\n")
    os.remove(names.path("scores.part"))
    for path in (syn_path, orig_path):
        os.replace(path + ".part", path)
    if binarize:
        write_binarized(tok_paths, names, binarize)
        for p in tok_paths:
            os.remove(p)
    summary = dict(summary)
    summary.update(
        input_lines=counts["lines"], skipped_input=dict(sorted(skipped.items())),
        translated=counts["translated"], hypotheses=counts["hypotheses"],
        filtered=dict(sorted(filtered.items())), output_pairs=kept,
        decode_seconds=round(seconds, 3), generate_seconds=round(generate_seconds, 3),
        sentences_per_second=round(counts["translated"] / seconds, 2) if seconds else None,
        generator_sentences_per_second=(round(counts["translated"] / generate_seconds, 2)
                                        if generate_seconds else None),
        files={k: os.path.basename(v) for k, v in (
            ("synthetic_source", syn_path), ("original_target", orig_path),
            ("scores", names.path("scores")), ("weights", names.path("weights")))},
        binarized=binarize.destdir if binarize else None)
    with atomic_open(names.path("summary.json")) as f:
        json.dump(summary, f, indent=1, ensure_ascii=False)
    return summary


def write_binarized(tok_paths: Tuple[str, str], names: OutputNames, spec: BinarizeSpec) -> None:
    """Split ``train`` of a fairseq mmap corpus in the forward direction, with
    ``train.weights`` and the dictionaries, as ``bt_translation --bt-data DIR`` reads it."""
    from fairseq.data import Dictionary, indexed_dataset

    src, tgt = names.synthetic_lang, names.original_lang
    os.makedirs(spec.destdir, exist_ok=True)
    tmp = os.path.join(spec.destdir, f".tmp{os.getpid()}")
    os.makedirs(tmp, exist_ok=True)
    try:
        final = {}
        for lang, dict_path, tok_path in ((src, spec.srcdict, tok_paths[0]),
                                          (tgt, spec.tgtdict, tok_paths[1])):
            check(os.path.isfile(dict_path), f"{dict_path}: dictionary not found (--srcdict/"
                  "--tgtdict)")
            d = Dictionary.load(dict_path)
            base = f"train.{src}-{tgt}.{lang}"
            builder = indexed_dataset.make_builder(os.path.join(tmp, base + ".bin"), impl="mmap",
                                                   vocab_size=len(d))
            with open(tok_path, encoding="utf-8") as f:
                for line in f:
                    builder.add_item(d.encode_line(line.rstrip("\n"), add_if_not_exist=False,
                                                   append_eos=True))
            builder.finalize(os.path.join(tmp, base + ".idx"))
            shutil.copyfile(dict_path, os.path.join(tmp, f"dict.{lang}.txt"))
            for name in (base + ".bin", base + ".idx", f"dict.{lang}.txt"):
                final[name] = name
        shutil.copyfile(names.path("weights"), os.path.join(tmp, "train.weights"))
        final["train.weights"] = "train.weights"
        for name in final:
            os.replace(os.path.join(tmp, name), os.path.join(spec.destdir, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
