"""``fairseq-bt-clean``: clean a raw corpus folder in place before training and back-translation.
A valid set with more than half of its pairs also in the bitext, or in a test set, is an error.

``--raw-dir DIR`` holds ``train.{S,T}`` (bitext), ``valid.{S,T}``, ``test_NAME.{S,T}`` (any
number of test sets), ``mono.T`` and optionally ``mono.S``. The bitext and the monolingual files
are normalised and rid of empty, over-long and duplicate lines, of lines that hold a sentence of
the valid or a test set (contamination: :mod:`.guard`; ``--protect-also`` adds the sets of other
folders) and, monolingual only, of lines in another language; the valid and test files are
never changed (the share of valid pairs allowed elsewhere: :data:`MAX_SHARED`, pairs compared
as the guard compares lines). Every count goes to ``DIR/clean.json``, one summary line to
stderr. A run reads and checks every file before it writes any; the cleaned files
replace the old ones only when all are written. A second run changes nothing, ``clean.json``
included.
"""
import io
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Callable, Dict, List, Optional, Tuple

from omegaconf import MISSING

from ..atomic import atomic_open, remove_files, replace_all, temp_name
from ..errors import check, naming, run_reporting_user_errors
from ..options import parse_dataclass
from ..text_processing import LINE_BREAKS_KEY, bad_line_error, decode_lines, moses_normalizer
from .config import CleanConfig
from .guard import Guard, Key, guard_key
from .langid import LanguageFilter

PROG = "fairseq-bt-clean"
REPORT = "clean.json"

#: drop reasons, in the order the steps run (the keys of ``dropped`` in clean.json)
REASONS = ("empty", "too_long", "contaminated", "duplicate", "length_ratio", "wrong_language")
#: dropped lines shown per reason in clean.json (bitext: ``source ||| target``)
EXAMPLES = 5
#: the share of the valid set's pairs that may also be bitext pairs, or pairs of a test set
MAX_SHARED = 0.5


@dataclass
class CleanCommandConfig(CleanConfig):
    raw_dir: str = field(default=MISSING, metadata={"help": "the corpus folder, cleaned in place"})
    source_lang: str = field(default=MISSING, metadata={"help": "source language code, e.g. de"})
    target_lang: str = field(default=MISSING, metadata={"help": "target language code, e.g. en"})
    protect_also: str = field(
        default="",
        metadata={"help": "comma-separated names of folders beside --raw-dir (the other "
                  "pairs of a multilingual experiment: fr-en,cs-en) whose valid and test files "
                  "in --source-lang or --target-lang guard this folder's bitext and monolingual "
                  "text too (named FOLDER/SET in contaminated_by)"})


class Normaliser:
    """A line as it is written (Moses-normalised and whitespace-squeezed, or as it is with
    ``no_normalise``) and as it is compared with the valid and test sets (the key of its
    Moses-normalised form: :func:`.guard.guard_key`)."""

    def __init__(self, lang: str, keep_as_is: bool):
        self.moses = moses_normalizer(lang)
        self.keep_as_is = keep_as_is

    def __call__(self, line: str) -> Tuple[str, Key]:
        normal = " ".join(self.moses(line).split())
        return (line if self.keep_as_is else normal), guard_key(normal)


def read_file(path: str, counts: Counter) -> Tuple[bytes, List[str]]:
    """The bytes of a text file and its lines (a line that is not text, or an empty file, is an
    error naming the file and line)."""
    check(os.path.isfile(path), f"{path}: file not found")
    with open(path, "rb") as f:
        data = f.read()
    check(len(data) > 0, f"{path}: empty file")
    lines = []
    for n, text, problem in decode_lines(io.BytesIO(data), path, counts):
        if problem:
            raise bad_line_error(path, n, problem)
        lines.append(text)
    return data, lines


@dataclass
class Corpus:
    """One file (monolingual) or a pair of line-aligned files (bitext) being cleaned."""
    name: str
    paths: List[str]
    langs: List[str]
    data: List[bytes] = field(default_factory=list)
    # each item: (the sides as written, the sides as compared)
    items: List[Tuple[Tuple[str, ...], Tuple[Key, ...]]] = field(default_factory=list)
    report: Dict = field(default_factory=dict)

    def outputs(self) -> List[bytes]:
        return ["".join(written[i] + "\n" for written, _ in self.items).encode("utf-8")
                for i in range(len(self.paths))]


def read_corpus(corpus: Corpus, normalisers: Dict[str, Normaliser]) -> None:
    breaks, sides = Counter(), []
    for path in corpus.paths:
        data, lines = read_file(path, breaks)
        corpus.data.append(data)
        sides.append(lines)
    check(len(set(map(len, sides))) == 1,
          f"{corpus.paths[0]} has {len(sides[0])} lines but {corpus.paths[-1]} has "
          f"{len(sides[-1])}: parallel files must be line-aligned")
    start = time.perf_counter()
    changed = Counter()
    for sides_of_line in zip(*sides):
        out = [normalisers[lang](text) for lang, text in zip(corpus.langs, sides_of_line)]
        for lang, text, (written, _) in zip(corpus.langs, sides_of_line, out):
            changed[lang] += written != text
        corpus.items.append((tuple(w for w, _ in out), tuple(k for _, k in out)))
    corpus.report = {"files": [os.path.basename(p) for p in corpus.paths],
                     "lines_in": len(sides[0]), "lines_out": None,
                     "normalised": {lang: changed[lang] for lang in corpus.langs},
                     LINE_BREAKS_KEY: breaks[LINE_BREAKS_KEY],
                     "dropped": {}, "contaminated_by": {}, "wrong_languages": {}, "examples": {},
                     "seconds": {"normalise": round(time.perf_counter() - start, 3)}}


#: a step's test of an item: falsy (keep), True (drop) or the names to count the drop under
Test = Callable[[Tuple[Tuple[str, ...], Tuple[Key, ...]]], object]


def run_step(corpus: Corpus, reason: str, test: Test, details: Optional[str] = None) -> None:
    """Drop the items ``test`` hits, counted under ``reason`` (and each name it returns under
    ``details``)."""
    start, kept, dropped, named = time.perf_counter(), [], [], Counter()
    for item in corpus.items:
        hit = test(item)
        if not hit:
            kept.append(item)
            continue
        dropped.append(item[0])
        if details:
            named.update([hit] if isinstance(hit, str) else hit)
    corpus.items = kept
    corpus.report["dropped"][reason] = len(dropped)
    if dropped:
        corpus.report["examples"][reason] = [" ||| ".join(x) for x in dropped[:EXAMPLES]]
    corpus.report["seconds"][reason] = round(time.perf_counter() - start, 3)
    if details:
        corpus.report[details] = dict(named.most_common(10 if reason == "wrong_language" else None))


def find_sets(d: str, langs: Tuple[str, str], own: bool = True) -> Dict[str, Dict[str, str]]:
    """The protected sets in folder ``d``: ``valid`` and ``test_NAME`` -> language -> file.
    ``own``: both languages of each set (a missing side is an error when it is read); else
    the files there are in either language (another pair's sets, named FOLDER/SET)."""
    names = {name for name, _, lang in (f.rpartition(".") for f in os.listdir(d))
             if lang in langs and (name == "valid" or name.startswith("test_"))}
    prefix = "" if own else os.path.basename(os.path.normpath(d)) + "/"
    return {prefix + name: {lang: os.path.join(d, f"{name}.{lang}") for lang in langs
                            if own or os.path.exists(os.path.join(d, f"{name}.{lang}"))}
            for name in sorted(names, key=lambda n: (n != "valid", n))}


def read_protected(sets: Dict[str, Dict[str, str]], normalisers: Dict[str, Normaliser]
                   ) -> Tuple[Guard, Dict[str, List[Tuple[Key, ...]]], Dict]:
    """The guard of the protected sets (both sides of each), each set's pairs as compared,
    and the sets' line counts."""
    guard, pairs, report = Guard(), {}, {}
    for name, paths in sets.items():
        sides = []
        for lang, path in paths.items():
            _, lines = read_file(path, Counter())
            sides.append([normalisers[lang](line)[1] for line in lines])
            for key in sides[-1]:
                guard.add(name, key)
            report[f"{name}.{lang}"] = len(lines)
        pairs[name] = list(zip(*sides))
    return guard, pairs, report


def check_shared(pairs: Dict[str, List[Tuple[Key, ...]]], sets: Dict[str, Dict[str, str]],
                 bitext: Corpus) -> Dict[str, int]:
    """How many valid pairs are also bitext pairs and test pairs (per set); more than
    :data:`MAX_SHARED` of the valid set is an error naming both corpora."""
    if "valid" not in pairs or not pairs["valid"]:
        return {}
    valid = pairs["valid"]
    others = {"train": (set(k for _, k in bitext.items), bitext.paths)}
    others.update({name: (set(p), list(sets[name].values())) for name, p in pairs.items()
                   if name.startswith("test_")})
    shared = {}
    for name, (keys, paths) in others.items():
        shared[name] = sum(p in keys for p in valid)
        check(shared[name] <= MAX_SHARED * len(valid),
              f"{', '.join(sets['valid'].values())}: {shared[name]} of the {len(valid)} valid "
              f"pairs are also pairs of {', '.join(paths)}: the valid set must be held out "
              f"from {'training' if name == 'train' else 'the test set'}")
    return shared


def clean_corpus(corpus: Corpus, cfg: CleanCommandConfig, guard: Guard,
                 lang_filter: Optional[LanguageFilter]) -> None:
    """Every step on one corpus, in the order of :data:`REASONS`."""
    run_step(corpus, "empty", lambda item: not all(side.strip() for side in item[0]))
    run_step(corpus, "too_long", lambda item: max(map(len, item[0])) > cfg.max_chars)
    if not cfg.no_contamination and guard:
        run_step(corpus, "contaminated",
                 lambda item: sorted({name for key in item[1] for name in guard.find(key)}),
                 details="contaminated_by")
    if not cfg.no_dedup:
        seen = set()

        def duplicate(item) -> bool:
            if item[0] in seen:
                return True
            seen.add(item[0])
            return False

        run_step(corpus, "duplicate", duplicate)
    if cfg.bitext_max_len_ratio > 0 and len(corpus.paths) == 2:
        run_step(corpus, "length_ratio", lambda item: max(map(len, item[0]))
                 > cfg.bitext_max_len_ratio * min(map(len, item[0])))
    if lang_filter is not None:
        run_step(corpus, "wrong_language", lambda item: lang_filter.other_language(item[0][0]),
                 details="wrong_languages")
    check(bool(corpus.items), f"{corpus.paths[0]}: no lines left after cleaning (dropped: "
          f"{ {k: v for k, v in corpus.report['dropped'].items() if v} })")
    corpus.report["lines_out"] = len(corpus.items)


def validate(cfg: CleanCommandConfig) -> None:
    check(cfg.source_lang != cfg.target_lang, "--source-lang and --target-lang are the same")
    check(os.path.isdir(cfg.raw_dir), f"{cfg.raw_dir}: no such folder (--raw-dir)")
    check(cfg.max_chars >= 1, f"--max-chars must be >= 1, got {cfg.max_chars}")
    check(0 <= cfg.langid_threshold <= 1,
          f"--langid-threshold must be between 0 and 1, got {cfg.langid_threshold}")
    check(cfg.bitext_max_len_ratio == 0 or cfg.bitext_max_len_ratio >= 1,
          f"--bitext-max-len-ratio must be 0 (off) or >= 1, got {cfg.bitext_max_len_ratio}")


def clean(cfg: CleanCommandConfig) -> Tuple[Dict, List[str]]:
    """Clean ``cfg.raw_dir`` in place: this run's counts (what ``clean.json`` holds unless
    the folder was clean already) and the files it changed."""
    validate(cfg)
    src, tgt, d = cfg.source_lang, cfg.target_lang, cfg.raw_dir
    normalisers = {lang: Normaliser(lang, cfg.no_normalise) for lang in (src, tgt)}
    sets = find_sets(d, (src, tgt))
    for name in filter(None, cfg.protect_also.split(",")):
        other = os.path.join(os.path.dirname(os.path.abspath(d)), name)
        check(os.path.isdir(other), f"{other}: no such folder (--protect-also {name})")
        sets.update(find_sets(other, (src, tgt), own=False))
    guard, set_pairs, protected = read_protected(sets, normalisers)
    corpora = [Corpus("train", [os.path.join(d, f"train.{lang}") for lang in (src, tgt)],
                      [src, tgt])]
    for lang in (tgt, src):
        path = os.path.join(d, f"mono.{lang}")
        if lang == tgt or os.path.exists(path):
            corpora.append(Corpus(f"mono.{lang}", [path], [lang]))
    # monolingual text only (a language the model does not know stops the run here)
    flags = {src: "--source-lang", tgt: "--target-lang"}
    lang_filters = {c.name: LanguageFilter(c.langs[0], cfg.langid_threshold,
                                           f"{flags[c.langs[0]]} {c.langs[0]}")
                    for c in corpora if len(c.paths) == 1 and not cfg.no_langid}
    for corpus in corpora:
        read_corpus(corpus, normalisers)
    shared = check_shared(set_pairs, sets, corpora[0])
    for corpus in corpora:
        clean_corpus(corpus, cfg, guard, lang_filters.get(corpus.name))
    changed = write_corpora(corpora)
    summary = {"source_lang": src, "target_lang": tgt,
               "options": {f.name: getattr(cfg, f.name) for f in fields(CleanConfig)
                           if not f.name.startswith("_")},
               "protected": protected, "valid_shared": shared,
               "corpora": {c.name: c.report for c in corpora}}
    report_path = os.path.join(d, REPORT)
    if changed or not os.path.exists(report_path):  # else already clean: the counts of the
        with atomic_open(report_path) as f:          # run that cleaned it stay
            json.dump(summary, f, indent=2)
    return summary, changed


def write_corpora(corpora: List[Corpus]) -> List[str]:
    """Write every file that cleaning changed under a temp name, then move them all into
    place; the names of those files."""
    staged = {}
    try:
        for corpus in corpora:
            start = time.perf_counter()
            for path, old, new in zip(corpus.paths, corpus.data, corpus.outputs()):
                if new != old:
                    staged[path] = temp_name(path)
                    with naming(path), open(staged[path], "wb") as f:
                        f.write(new)
            corpus.report["seconds"]["write"] = round(time.perf_counter() - start, 3)
    except BaseException:
        remove_files(staged.values())
        raise
    replace_all(staged)
    return sorted(os.path.basename(p) for p in staged)


def summary_line(summary: Dict, changed: List[str]) -> str:
    parts = []
    for name, r in summary["corpora"].items():
        dropped = ", ".join(f"{k} {v}" for k, v in r["dropped"].items() if v)
        parts.append(f"{name} {r['lines_in']} -> {r['lines_out']}"
                     + (f" (dropped: {dropped})" if dropped else ""))
    state = "cleaned " + " ".join(changed) if changed else \
        "already clean, nothing changed"
    return f"{PROG}: {'; '.join(parts)}; {state}"


def main(argv: Optional[List[str]] = None) -> None:
    def run() -> None:
        cfg = parse_dataclass(CleanCommandConfig, sys.argv[1:] if argv is None else argv, PROG,
                              __doc__.split("\n\n")[0])
        print(summary_line(*clean(cfg)), file=sys.stderr)

    run_reporting_user_errors(run, PROG)


if __name__ == "__main__":
    main()
