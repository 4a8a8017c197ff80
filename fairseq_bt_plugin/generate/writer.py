"""Outputs: the resumable chunk store, the final aligned files, the binarized corpus.

``OUT/PREFIX.work/`` holds ``options.json`` (the options and their hash: a re-run with other
options is refused) and one ``chunk-NNNNNN.jsonl`` per finished chunk, each written to a temp
file and moved into place, so a chunk file exists only when complete. The final files are
assembled from the chunk files in chunk order (so shards merge into exactly the single-process
output) under ``.part`` names, and moved into place together once all of them and the
binarized corpus are complete; the summary, written last, marks the output finished. A run that
fails (bad input, disk full) leaves earlier final files byte-identical and no ``.part`` files.
"""
import contextlib
import json
import math
import os
import shutil
from collections import Counter
from dataclasses import astuple, dataclass
from typing import Callable, Dict, FrozenSet, Iterable, Iterator, List, Optional, Sequence, Tuple

from ..atomic import atomic_open, remove_files, replace_all
from ..errors import BTUserError, check, naming
from ..inference.translator import Hypothesis
from ..text_processing import TextProcessor, same_sentencepiece_model
from .config import BTBinarizeConfig
from .filters import DuplicateFilter

CHUNK_FORMAT = "chunk-{:06d}.jsonl"


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
    line_breaks_replaced: int = 0  # input lines whose line-break characters became spaces


class WorkStore:
    """The chunk files and options of one run (one shard) in ``OUT/PREFIX.work``."""

    def __init__(self, output_dir: str, prefix: str):
        self.dir = os.path.join(output_dir, f"{prefix}.work")

    def chunk_path(self, c: int) -> str:
        return os.path.join(self.dir, CHUNK_FORMAT.format(c))

    def is_done(self, c: int) -> bool:
        return os.path.exists(self.chunk_path(c))

    def begin(self, options: Dict, options_hash: str, shard: Tuple[int, int] = (0, 1),
              files: Sequence[Dict] = ()) -> None:
        """Create the store, or check that an existing one was made with the same options and
        the same files (``files``: :func:`~fairseq_bt_plugin.fingerprint.fingerprint` of the
        checkpoint, inputs, ...)."""
        os.makedirs(self.dir, exist_ok=True)
        path = os.path.join(self.dir, "options.json")
        if os.path.exists(path):
            old = self.options()
            start_over = f"remove {self.dir} to start over, or use another --output-dir"
            before = {f["path"]: f for f in old.get("files", [])}
            if old["hash"] == options_hash and before != {f["path"]: f for f in files}:
                changed = [f["path"] for f in files if before.get(f["path"]) != f] or \
                    sorted(set(before) - {f["path"] for f in files})
                raise BTUserError(
                    f"{os.path.dirname(self.dir) or '.'} holds chunks of a run that read other "
                    f"files ({', '.join(changed[:3])} changed since: size, time or contents); "
                    f"{start_over}")
            if old["hash"] != options_hash:
                diff = [k for k in sorted(set(old["options"]) | set(options))
                        if old["options"].get(k) != options.get(k)]
                shown = ", ".join(f"--{k.replace('_', '-')} {old['options'].get(k)!r} -> "
                                  f"{options.get(k)!r}" for k in diff[:4])
                raise BTUserError(
                    f"{os.path.dirname(self.dir) or '.'} holds a run with other options "
                    f"({shown}); {start_over}")
            return
        with atomic_open(path) as f:
            json.dump({"hash": options_hash, "options": options, "shard": list(shard),
                       "files": list(files)}, f, indent=1, sort_keys=True)

    def options(self) -> Dict:
        path = os.path.join(self.dir, "options.json")
        check(os.path.exists(path), f"{path} not found: not a fairseq-bt-backtranslate output")
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
    weights_name: str = "train.weights"  # --target-langs: train.SRC-TGT.weights (one per pair)
    spm_model: str = ""  # the forward model's sentencepiece model (--binarize-spm-model)
    encode_synthetic: bool = False  # spm_model is not the one the output was decoded with
    encode_original: bool = False  # spm_model is not the one the input was encoded with
    keep: FrozenSet[str] = frozenset()  # pieces written as they are (the noise filler)

    def piece_encoder(self, names: "OutputNames") -> Callable[[Hypothesis], Tuple[str, str]]:
        """``hypothesis -> (synthetic pieces, original pieces)`` in the forward model's
        vocabulary: the reverse model's own pieces, or (``encode_*``) the raw sentence
        encoded with ``spm_model``."""
        syn = TextProcessor(self.spm_model, names.synthetic_lang) \
            if self.encode_synthetic else None
        orig = TextProcessor(self.spm_model, names.original_lang) \
            if self.encode_original else None
        return lambda h: (syn.encode_keeping(h.synthetic, self.keep) if syn else
                          h.synthetic_pieces, orig.encode(h.original) if orig else
                          h.original_pieces)


def binarize_spec(cfg: BTBinarizeConfig, data: str, options: Dict) -> Optional[BinarizeSpec]:
    """What ``--binarize-to`` writes (``options``: the generation's, for its languages and
    noise filler; ``data``: the reverse model's dictionaries), every file checked."""
    if not cfg.binarize_to:
        return None
    check(not cfg.binarize_spm_model or (cfg.srcdict and cfg.tgtdict),
          "--binarize-spm-model needs --srcdict and --tgtdict (the dictionaries made with it)")
    spm = cfg.binarize_spm_model
    synthetic, original = options["target_lang"], options["source_lang"]
    spec = BinarizeSpec(
        cfg.binarize_to, cfg.srcdict or os.path.join(data, f"dict.{synthetic}.txt"),
        cfg.tgtdict or os.path.join(data, f"dict.{original}.txt"),
        # several languages in one corpus (bt_multilingual): one weights file per pair
        weights_name=(f"train.{synthetic}-{original}.weights" if options.get("target_langs")
                      else "train.weights"),
        spm_model=spm, keep=frozenset({options["noise_filler"]}))
    for path in (spec.srcdict, spec.tgtdict):
        check(os.path.isfile(path), f"{path}: dictionary not found (--srcdict/--tgtdict)")
    if spm:
        for lang, path in ((options["target_lang"], spec.srcdict),
                           (options["source_lang"], spec.tgtdict)):
            TextProcessor(spm, lang).check_dictionary(path, spm)
        decoded_with = options["target_spm_model"] or options["spm_model"]
        spec.encode_synthetic = not same_sentencepiece_model(spm, decoded_with)
        spec.encode_original = not same_sentencepiece_model(spm, options["spm_model"])
    os.makedirs(spec.destdir, exist_ok=True)  # an unwritable folder fails before decoding
    return spec


def sentence_weights(scores: Sequence[float], how: str = "sequence") -> List[float]:
    """The weights of one input sentence's kept synthetic sources, summing to 1 (``--weights``
    as resolved): ``uniform`` 1/K, else the softmax of their scores."""
    if how == "uniform":
        return [1 / len(scores)] * len(scores)
    top = max(scores)
    e = [math.exp(s - top) for s in scores]
    total = sum(e)
    return [x / total for x in e]


def write_scores(raw, scores, weights, how: str) -> None:
    """``PREFIX.scores`` and ``PREFIX.weights`` from the raw rows ``line logprob avg_logprob``
    of the kept pairs (in output order: the rows of one input line are consecutive)."""

    def flush(group):
        column = 1 if how == "sequence" else 2
        for row, w in zip(group, sentence_weights([float(r[column]) for r in group], how)):
            scores.write("\t".join(row) + f"\t{w:.6f}\n")
            weights.write(f"{w:.6f}\n")

    group: List[List[str]] = []
    for line in raw:
        row = line.split()
        if group and row[0] != group[0][0]:
            flush(group)
            group = []
        group.append(row)
    if group:
        flush(group)


def assemble(chunks: List[Tuple[WorkStore, int]], names: OutputNames, keep_duplicates: bool,
             binarize: Optional[BinarizeSpec], summary: Dict, weights: str) -> Dict:
    """Write the final files from ``chunks`` (in this order); returns the summary.

    Per pair ``PREFIX.scores`` holds ``line<TAB>logprob<TAB>avg_logprob<TAB>weight`` (the
    input line index from 0, log p(synthetic | input), that per token, and the weight) and
    ``PREFIX.weights`` the weight alone (for ``bt_translation --bt-weighted``): over the kept
    pairs of the same input line, 1/K (``weights="uniform"``) or the softmax of ``logprob``
    (``"sequence"``) or ``avg_logprob`` (``"length_normalized"``), as rounded in
    ``PREFIX.scores`` (``weights``: resolved, :func:`.config.resolved_weights`)."""
    os.makedirs(names.output_dir, exist_ok=True)
    counts: Counter = Counter()
    skipped: Counter = Counter()
    filtered: Counter = Counter()
    seconds = generate_seconds = 0.0
    dedup = None if keep_duplicates else DuplicateFilter()
    syn_path, orig_path = names.path(names.synthetic_lang), names.path(names.original_lang)
    # every output under a .part name until all are complete (binarized corpus included)
    parts = {p: p + ".part" for p in (syn_path, orig_path, names.path("scores"),
                                      names.path("weights"))}
    raw_path = names.path("scores.raw.part")
    tok_paths = (syn_path + ".pieces.part", orig_path + ".pieces.part")
    kept = 0
    try:
        with contextlib.ExitStack() as stack:
            syn = stack.enter_context(atomic_open(parts[syn_path]))
            orig = stack.enter_context(atomic_open(parts[orig_path]))
            raw_scores = stack.enter_context(atomic_open(raw_path))
            toks = [stack.enter_context(atomic_open(p)) for p in tok_paths] if binarize else None
            pieces = binarize.piece_encoder(names) if binarize else None
            for store, c in chunks:
                header = store.read_header(c)
                counts.update(lines=header.num_lines, translated=header.translated,
                              hypotheses=header.hypotheses,
                              line_breaks=header.line_breaks_replaced)
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
                    raw_scores.write(f"{h.line}\t{h.logprob:.6f}\t{h.score:.6f}\n")
                    if toks:
                        syn_pieces, orig_pieces = pieces(h)
                        toks[0].write(syn_pieces + "\n")
                        toks[1].write(orig_pieces + "\n")
                    kept += 1
        with atomic_open(parts[names.path("scores")]) as scores, \
                atomic_open(parts[names.path("weights")]) as wf, \
                open(raw_path, encoding="utf-8") as raw:
            write_scores(raw, scores, wf, weights)
        if binarize:
            write_binarized(tok_paths, parts[names.path("weights")], names, binarize)
        remove_files([names.path("summary.json")])  # unfinished until the new one is written
        replace_all(parts)
    finally:
        remove_files(list(parts.values()) + [raw_path, *tok_paths])
    summary = dict(summary)
    summary.update(
        input_lines=counts["lines"], skipped_input=dict(sorted(skipped.items())),
        line_breaks_replaced=counts["line_breaks"], weights=weights,
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


def write_binarized(tok_paths: Tuple[str, str], weights_path: str, names: OutputNames,
                    spec: BinarizeSpec) -> None:
    """Split ``train`` of a fairseq mmap corpus in the forward direction, with
    ``train.weights`` (``spec.weights_name``) and the dictionaries, as ``bt_translation
    --bt-data DIR`` (``bt_multilingual --extra-data``) reads it, from the pieces of the kept
    pairs (``tok_paths``: synthetic, original)."""
    from fairseq.data import Dictionary

    def encoded(dict_path: str, tok_path: str) -> Iterator:
        d = Dictionary.load(dict_path)
        with open(tok_path, encoding="utf-8") as f:
            for line in f:
                yield d.encode_line(line.rstrip("\n"), add_if_not_exist=False, append_eos=True)

    write_binarized_tokens((encoded(spec.srcdict, tok_paths[0]),
                            encoded(spec.tgtdict, tok_paths[1])), weights_path, names, spec)


def write_binarized_tokens(tokens: Tuple[Iterable, Iterable], weights_path: str,
                           names: OutputNames, spec: BinarizeSpec) -> None:
    """:func:`write_binarized` from the token ids of each pair (synthetic, original; eos
    included), in the dictionaries ``spec.srcdict`` and ``spec.tgtdict``."""
    from fairseq.data import Dictionary, indexed_dataset

    src, tgt = names.synthetic_lang, names.original_lang
    os.makedirs(spec.destdir, exist_ok=True)
    tmp = os.path.join(spec.destdir, f".tmp{os.getpid()}")
    os.makedirs(tmp, exist_ok=True)
    try:
        with naming(spec.destdir):
            names_in_tmp = [spec.weights_name]
            for lang, dict_path, items in ((src, spec.srcdict, tokens[0]),
                                           (tgt, spec.tgtdict, tokens[1])):
                base = f"train.{src}-{tgt}.{lang}"
                builder = indexed_dataset.make_builder(
                    os.path.join(tmp, base + ".bin"), impl="mmap",
                    vocab_size=len(Dictionary.load(dict_path)))
                for ids in items:
                    builder.add_item(ids)
                builder.finalize(os.path.join(tmp, base + ".idx"))
                shutil.copyfile(dict_path, os.path.join(tmp, f"dict.{lang}.txt"))
                names_in_tmp += [base + ".bin", base + ".idx", f"dict.{lang}.txt"]
            shutil.copyfile(weights_path, os.path.join(tmp, spec.weights_name))
        replace_all({os.path.join(spec.destdir, n): os.path.join(tmp, n) for n in names_in_tmp})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
