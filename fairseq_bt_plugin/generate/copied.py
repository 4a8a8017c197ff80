"""``fairseq-bt-backtranslate copy``: the copied-monolingual-text control (Currey et al. 2017).

Every target-language sentence becomes its own synthetic source: the corpus a back-translation
recipe must beat, in the very files and binarized layout that ``fairseq-bt-backtranslate``
writes (so ``bt_translation --bt-data`` reads it, tagged or not, like any synthetic corpus). No
model is read. Resumable by chunk like the generator; the outputs appear together once complete.
"""
import hashlib
import json
from typing import Dict

from ..fingerprint import fingerprint
from ..inference.reader import input_files, read_chunks
from ..inference.translator import Hypothesis
from ..text_processing import TextProcessor
from .config import BTCopyConfig, options_dict
from .writer import ChunkHeader, OutputNames, WorkStore, assemble, binarize_spec


def copy_corpus(cfg: BTCopyConfig) -> Dict:
    """Write the copied corpus of ``cfg.input``; returns its summary."""
    files = input_files(cfg.input)
    encoder = TextProcessor(cfg.spm_model, cfg.source_lang)
    options = options_dict(cfg)
    spec_options = {"target_lang": cfg.target_lang, "source_lang": cfg.source_lang,
                    "noise_filler": "", "target_spm_model": "", "spm_model": cfg.spm_model}
    binarize = binarize_spec(cfg, "", spec_options)  # every dictionary error before any work
    hashed = {k: v for k, v in options.items()
              if k in ("source_lang", "target_lang", "chunk_size", "max_input_chars",
                       "skip_invalid", "keep_duplicates")}
    store = WorkStore(cfg.output_dir, cfg.prefix)
    store.begin({"mode": "copy", **hashed},
                hashlib.sha1(json.dumps(hashed, sort_keys=True).encode()).hexdigest()[:16],
                files=[fingerprint(p) for p in (*files, cfg.spm_model)])
    num_lines = chunk_count = 0
    for chunk in read_chunks(files, cfg.chunk_size, cfg.max_input_chars, cfg.skip_invalid,
                             wanted=lambda c: not store.is_done(c)):
        num_lines += chunk.num_lines
        chunk_count = chunk.index + 1
        if not chunk.selected:
            continue
        copies = []
        for line, text in chunk.lines:
            pieces = encoder.encode(text)
            copies.append(Hypothesis(line, 0, text, text, pieces, pieces, 0.0, 0.0))
        store.save_chunk(ChunkHeader(chunk.index, chunk.num_lines, len(copies), len(copies), 0.0,
                                     dict(chunk.skipped), {}, 0.0, chunk.line_breaks_replaced),
                         copies)
    store.save_total(num_lines, chunk_count)
    names = OutputNames(cfg.output_dir, cfg.prefix, cfg.target_lang, cfg.source_lang)
    summary = {"command": "copy", "model": None, "options": {**options, "mode": "copy"}}
    return assemble([(store, c) for c in range(chunk_count)], names, cfg.keep_duplicates,
                    binarize, summary, "uniform")

