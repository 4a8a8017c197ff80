"""The pipeline's raw data (``WORK/raw/``) from an experiment's corpus files.

Layout (the contract with ``fairseq-bt-clean`` and the stage scripts): ``train.{SRC,TGT}``,
``valid.{SRC,TGT}``, ``test_NAME.{SRC,TGT}`` for each named test set, ``mono.TGT`` and, when
the experiment has source-language monolingual text, ``mono.SRC``; ``data.json`` counts what
each came from, ``sources.txt`` lists every corpus file read. Lines are copied as they are (cleaning is ``fairseq-bt-clean``'s work).
"""
import itertools
import json
import os
import random
import shutil
from typing import Dict, Iterable, Iterator, List, Optional, Set

from ..atomic import atomic_open
from ..errors import check
from ..text_processing import bad_line_error, read_raw_lines, read_text_lines
from .config import ExperimentConfig, FileConfig, MonoConfig, ParallelConfig
from .fetch import local_file


class Reader:
    """Reads an experiment's files (``where``: the experiment file, named in errors)."""

    def __init__(self, exp: ExperimentConfig, where: str):
        self.exp, self.where = exp, where
        self.read: List[str] = []  # every file read, in order (WORK/raw/sources.txt)

    def paths(self, files: List[FileConfig], key: str) -> List[str]:
        paths = [local_file(f, self.exp.data_dir, self.exp.cache_dir, f"{self.where}: {key}[{i}]")
                 for i, f in enumerate(files)]
        self.read += [os.path.abspath(p) for p in paths if os.path.abspath(p) not in self.read]
        return paths

    def lines(self, paths: List[str], key: str) -> Iterator[str]:
        for i, path in enumerate(paths):
            empty = True
            for n, text, problem in read_raw_lines(path):
                if problem:
                    raise bad_line_error(f"{self.where}: {key}[{i}]: {path}", n, problem)
                empty = False
                yield text
            check(not empty, f"{self.where}: {key}[{i}]: {path}: empty file")

    def order(self, n: int, shuffle: bool) -> List[int]:
        idx = list(range(n))
        if shuffle:
            random.Random(self.exp.seed).shuffle(idx)
        return idx

    def parallel(self, p: ParallelConfig, key: str) -> Dict:
        src_paths = self.paths(p.source, f"{key}.source")
        tgt_paths = self.paths(p.target, f"{key}.target")
        src = list(self.lines(src_paths, f"{key}.source"))
        tgt = list(self.lines(tgt_paths, f"{key}.target"))
        check(len(src) == len(tgt),
              f"{self.where}: {key}: the source side has {len(src)} lines "
              f"({', '.join(src_paths)}) but the target side {len(tgt)} "
              f"({', '.join(tgt_paths)}): parallel files must be line-aligned")
        idx = self.order(len(src), p.shuffle)[p.skip:]
        idx = idx[:p.max_pairs] if p.max_pairs else idx
        check(bool(idx), f"{self.where}: {key}: no pairs left after skip {p.skip} (of "
              f"{len(src)})")
        return {"pairs": ([src[i] for i in idx], [tgt[i] for i in idx]),
                "counts": {"files": src_paths + tgt_paths, "lines_read": len(src),
                           "kept": len(idx)}}

    def mono(self, m: MonoConfig, key: str) -> Dict:
        paths = self.paths(m.files, f"{key}.files")
        lines: Iterable[str] = self.lines(paths, f"{key}.files")
        exclude: Set[str] = set()
        for i, path in enumerate(self.paths(m.exclude, f"{key}.exclude")):
            exclude.update(self.lines([path], f"{key}.exclude[{i}]"))
        if m.shuffle:
            lines = list(lines)
            lines = [lines[i] for i in self.order(len(lines), True)]
        lines = itertools.islice(lines, m.skip, None)  # a file beyond max_lines is not read
        counts = {"files": paths, "exclude_files": len(m.exclude), "lines_read": 0,
                  "blank": 0, "excluded": 0, "duplicates": 0, "kept": 0}
        seen: Set[str] = set()
        kept = []
        for line in lines:
            if m.max_lines and len(kept) == m.max_lines:
                break
            counts["lines_read"] += 1
            if line in exclude:
                counts["excluded"] += 1
            elif m.dedup and line in seen:
                counts["duplicates"] += 1
            elif not line.strip():
                counts["blank"] += 1
            else:
                kept.append(line)
            if m.dedup:
                seen.add(line)
        counts["kept"] = len(kept)
        check(bool(kept), f"{self.where}: {key}: no lines left ({counts})")
        return {"lines": kept, "counts": counts}


def _write(path: str, lines: List[str]) -> None:
    with atomic_open(path) as f:
        f.writelines(line + "\n" for line in lines)


def _write_sets(read: Reader, where: str, out: str, src: str, tgt: str, bitext: ParallelConfig,
                valid: ParallelConfig, tests: Dict[str, ParallelConfig], key: str,
                summary: Dict) -> None:
    """One pair's ``train``, ``valid`` and ``test_NAME`` files into ``out`` (``key``: the
    prefix of the experiment's keys, named in errors), their counts into ``summary``."""
    sets = {"train": read.parallel(bitext, f"{key}bitext"),
            "valid": read.parallel(valid, f"{key}valid")}
    for name, test in tests.items():
        sets[f"test_{name}"] = read.parallel(test, f"{key}tests.{name}")
        check(sets[f"test_{name}"]["pairs"] != sets["valid"]["pairs"],
              f"{where}: {key}tests.{name}: the same pairs as valid: a test set must be unseen "
              "in training and model selection")
    for name, s in sets.items():
        for lang, lines in zip((src, tgt), s["pairs"]):
            _write(os.path.join(out, f"{name}.{lang}"), lines)
        summary[name] = s["counts"]


def materialise(exp: ExperimentConfig, where: str, out: str) -> Dict:
    """Write ``out/`` (which must not exist; removed again on an error) from experiment
    ``exp`` read from file ``where``; returns the counts written to ``out/data.json``. With
    ``pairs``: one folder ``out/SRC-TGT`` per pair, each with the layout of one pair (and the
    monolingual text, cleaned per pair; :func:`common_lines` then keeps what every pair kept)."""
    check(not os.path.exists(out), f"{out}: exists already (the raw data goes to a new folder)")
    src, tgt = exp.source_lang, exp.target_lang
    read = Reader(exp, where)
    os.makedirs(out)
    try:
        summary: Dict[str, Optional[Dict]] = {}
        if exp.pairs:
            mono = read.mono(exp.mono, "mono")
            summary[f"mono.{tgt}"] = mono["counts"]
            for lang, pair in exp.pairs.items():
                name = f"{lang}-{tgt}"
                os.makedirs(os.path.join(out, name))
                summary[name] = {}
                _write_sets(read, where, os.path.join(out, name), lang, tgt, pair.bitext,
                            pair.valid, pair.tests, f"pairs.{lang}.", summary[name])
                _write(os.path.join(out, name, f"mono.{tgt}"), mono["lines"])
        else:
            _write_sets(read, where, out, src, tgt, exp.bitext, exp.valid, exp.tests, "",
                        summary)
            for key, lang in (("mono", tgt), ("mono_source", src)):
                if getattr(exp, key).files:
                    m = read.mono(getattr(exp, key), key)
                    _write(os.path.join(out, f"mono.{lang}"), m["lines"])
                    summary[f"mono.{lang}"] = m["counts"]
        with atomic_open(os.path.join(out, "data.json")) as f:
            json.dump(summary, f, indent=2)
        with atomic_open(os.path.join(out, "sources.txt")) as f:
            f.writelines(p + "\n" for p in read.read)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return summary


def common_lines(paths: List[str], out: str) -> int:
    """Write to ``out`` the lines of ``paths[0]`` that every other file has too, in order
    (the monolingual text each pair kept after cleaning against its own valid and test
    sets); the number of lines written."""
    keep: Optional[Set[str]] = None
    for path in paths[1:]:
        lines = set(read_text_lines(path))
        keep = lines if keep is None else keep & lines
    kept = [x for x in read_text_lines(paths[0]) if keep is None or x in keep]
    _write(out, kept)
    return len(kept)
