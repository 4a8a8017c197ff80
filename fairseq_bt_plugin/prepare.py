"""``fairseq-bt-prepare``: raw parallel text -> sentencepiece model + fairseq-binarized data.

Stage 1 of the pipeline. Reads ``PREFIX.SRC`` / ``PREFIX.TGT`` (plain or ``.gz``) for train,
valid and test; checks them (line counts, UTF-8, empty and over-long lines); normalises with
Moses and trains one joint sentencepiece model on the training text (or reuses
``--spm-model``); encodes; binarizes with ``fairseq-preprocess`` and a joined dictionary,
optionally adding a back-translation tag (``--tag <BT>``) to the dictionaries so that plain
``--task translation`` can load tagged models. Everything goes to temporary names first and is
moved into place at the end; a finished ``DESTDIR/prepare.json`` (with the flags it was made
with) means the stage is done: run again with the same flags it is reused, with others an error.
"""
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from fairseq.dataclass import FairseqDataclass
from omegaconf import MISSING

from .atomic import atomic_open
from .errors import BTUserError, check, naming, run_reporting_user_errors
from .options import parse_dataclass
from .text_processing import (LINE_BREAKS_KEY, TextProcessor, moses_normalizer, read_text_lines,
                              train_sentencepiece)

PROG = "fairseq-bt-prepare"


@dataclass
class PrepareConfig(FairseqDataclass):
    source_lang: str = field(default="", metadata={"help": "source language code, e.g. de "
                                                   "(required unless --lang-pairs)"})
    target_lang: str = field(default="", metadata={"help": "target language code, e.g. en "
                                                   "(required unless --lang-pairs)"})
    lang_pairs: str = field(
        default="",
        metadata={"help": "instead of --source-lang/--target-lang: several pairs SRC-TGT,... "
                  "with one sentencepiece model and one dictionary over all of them (the data "
                  "of bt_multilingual and of a bilingual model per pair); the prefixes name "
                  "each pair's files with {pair}, e.g. --trainpref raw/{pair}/train. Not with "
                  "--spm-extra-text or --monopref"})
    trainpref: str = field(default=MISSING,
                           metadata={"help": "raw training bitext PREFIX (PREFIX.SRC, PREFIX.TGT, "
                                     "optionally .gz)"})
    validpref: str = field(default="", metadata={"help": "raw validation bitext prefix"})
    testpref: str = field(default="", metadata={"help": "raw test bitext prefix"})
    destdir: str = field(default=MISSING, metadata={"help": "output directory"})
    spm_model: str = field(default="",
                           metadata={"help": "reuse this sentencepiece model instead of training "
                                     "one"})
    spm_vocab_size: int = field(default=8000,
                                metadata={"help": "joint sentencepiece vocabulary size"})
    spm_train_lines: int = field(default=2_000_000,
                                 metadata={"help": "at most this many sentences train the "
                                           "sentencepiece model"})
    max_chars: int = field(default=1000,
                           metadata={"help": "drop pairs with a side longer than this many "
                                     "characters (counted in prepare.json)"})
    tag: str = field(default="",
                     metadata={"help": "add this back-translation tag (e.g. <BT>) to the "
                               "dictionaries"})
    workers: int = field(default=1, metadata={"help": "fairseq-preprocess workers"})
    spm_extra_text: str = field(
        default="",
        metadata={"help": "comma-separated raw text files FILE.LANG (optionally .gz) that also "
                  "train the sentencepiece model, normalised for LANG: e.g. another language "
                  "pair's text, for one model over several pairs (other pairs then prepare "
                  "with --spm-model DESTDIR/spm.model)"})
    monopref: str = field(
        default="",
        metadata={"help": "raw monolingual text PREFIX (PREFIX.SRC and/or PREFIX.TGT, optionally "
                  ".gz): it also trains the sentencepiece model (unless --spm-model), and is "
                  "encoded and binarized with the joined dictionary into DESTDIR/mono (with "
                  "--validpref's sides as valid): the data of --task bt_denoising --mono-langs"})


def read_parallel(prefix: str, src: str, tgt: str, max_chars: int,
                  breaks: Optional[Counter] = None) -> Tuple[List[Tuple[str, str]], Counter]:
    """Aligned, checked pairs of a raw bitext; drops (and counts) empty and over-long pairs,
    and counts in ``breaks`` the lines whose line-break characters became spaces
    (:func:`~.text_processing.decode_lines`)."""
    paths = []
    for lang in (src, tgt):
        cands = [f"{prefix}.{lang}", f"{prefix}.{lang}.gz"]
        found = [p for p in cands if os.path.isfile(p)]
        check(bool(found), f"{cands[0]}: file not found (nor {cands[1]})")
        paths.append(found[0])
    sides = [read_text_lines(path, breaks) for path in paths]
    check(len(sides[0]) == len(sides[1]),
          f"{paths[0]} has {len(sides[0])} lines but {paths[1]} has {len(sides[1])}: "
          "parallel files must be line-aligned")
    check(len(sides[0]) > 0, f"{paths[0]}: empty file")
    pairs, dropped = [], Counter()
    for s, t in zip(*sides):
        if not s or not t:
            dropped["empty"] += 1
        elif max(len(s), len(t)) > max_chars:
            dropped["too_long"] += 1
        else:
            pairs.append((s, t))
    return pairs, dropped


def _write(path: str, lines: List[str]) -> None:
    with naming(path), open(path, "w", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)


def validate(cfg: PrepareConfig) -> None:
    check(bool(cfg.source_lang and cfg.target_lang) != bool(cfg.lang_pairs),
          "give --source-lang and --target-lang, or --lang-pairs (not both)")
    check(cfg.lang_pairs or cfg.source_lang != cfg.target_lang,
          "--source-lang and --target-lang are the same")
    for flag, value in (("--spm-vocab-size", cfg.spm_vocab_size),
                        ("--spm-train-lines", cfg.spm_train_lines),
                        ("--max-chars", cfg.max_chars), ("--workers", cfg.workers)):
        check(value >= 1, f"{flag} must be >= 1, got {value}")
    check(not cfg.spm_model or os.path.isfile(cfg.spm_model),
          f"{cfg.spm_model}: sentencepiece model not found (--spm-model)")
    check(not (cfg.spm_model and cfg.spm_extra_text),
          "--spm-extra-text trains the sentencepiece model: not with --spm-model")


def options(cfg: PrepareConfig) -> Dict:
    """The flags that decide what is prepared (all but --destdir and --workers), recorded in
    ``prepare.json``."""
    skip = {"destdir", "workers", "_name"}
    return {k: getattr(cfg, k) for k in cfg.__dataclass_fields__ if k not in skip}


def finished(cfg: PrepareConfig, done: str) -> Optional[Dict]:
    """The summary of a finished ``DESTDIR`` prepared with the same flags; a DESTDIR prepared
    with other flags is an error (never silently the old data)."""
    if not os.path.exists(done):
        return None
    with open(done, encoding="utf-8") as f:
        summary = json.load(f)
    was, now = summary.get("options"), options(cfg)
    if was != now:
        diff = [f"--{k.replace('_', '-')} {(was or {}).get(k)!r}, now {now[k]!r}" for k in now
                if (was or {}).get(k) != now[k]] if was else ["no record of its flags"]
        raise BTUserError(f"{done}: {cfg.destdir} was prepared with other flags ("
                          f"{'; '.join(diff[:3])}): delete it to prepare again, or use another "
                          "--destdir")
    return summary


def prepare(cfg: PrepareConfig) -> Dict:
    src, tgt = cfg.source_lang, cfg.target_lang
    done = os.path.join(cfg.destdir, "prepare.json")
    summary = finished(cfg, done)
    if summary is not None:
        return summary
    splits = {"train": cfg.trainpref, "valid": cfg.validpref, "test": cfg.testpref}
    splits = {k: v for k, v in splits.items() if v}
    validate(cfg)
    if cfg.lang_pairs:
        return prepare_pairs(cfg, splits, done)
    breaks = {k: Counter() for k in splits}
    data = {k: read_parallel(v, src, tgt, cfg.max_chars, breaks[k]) for k, v in splits.items()}
    check(bool(data["train"][0]), f"{cfg.trainpref}: no training pairs left (dropped: "
          f"{dict(data['train'][1])}; see --max-chars)")
    extra = read_extra_text(cfg)
    os.makedirs(cfg.destdir, exist_ok=True)
    work = os.path.join(cfg.destdir, "work.tmp")
    try:
        summary = _prepare_in(work, cfg, data, extra)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary[LINE_BREAKS_KEY] = {k: v[LINE_BREAKS_KEY] for k, v in breaks.items()}
    summary["options"] = options(cfg)
    with atomic_open(done) as f:
        json.dump(summary, f, indent=2)
    return summary


def _prepare_in(work: str, cfg: PrepareConfig, data: Dict, extra: "ExtraText") -> Dict:
    """Everything under the temp directory ``work``, then moved into ``cfg.destdir``."""
    src, tgt = cfg.source_lang, cfg.target_lang
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "norm"))
    os.makedirs(os.path.join(work, "tok"))

    spm = cfg.spm_model
    if not spm:
        norm = {lang: moses_normalizer(lang) for lang in (src, tgt)}
        inputs = []
        for i, lang in enumerate((src, tgt)):
            path = os.path.join(work, "norm", f"train.{lang}")
            _write(path, [norm[lang](p[i]) for p in data["train"][0]])
            inputs.append(path)
        inputs += extra.normalised(os.path.join(work, "norm"))
        spm = train_sentencepiece(inputs, os.path.join(work, "spm"), cfg.spm_vocab_size,
                                  input_sentence_size=cfg.spm_train_lines)
    procs = {lang: TextProcessor(spm, lang) for lang in (src, tgt)}
    for split, (pairs, _) in data.items():
        for i, lang in enumerate((src, tgt)):
            _write(os.path.join(work, "tok", f"{split}.{lang}"),
                   [procs[lang].encode(p[i]) for p in pairs])
    binarize(os.path.join(work, "bin"), src, tgt,
             {k: os.path.join(work, "tok", k) for k in data}, cfg.workers)
    if cfg.tag:
        for lang in (src, tgt):
            with open(os.path.join(work, "bin", f"dict.{lang}.txt"), "a", encoding="utf-8") as f:
                f.write(f"{cfg.tag} 0\n")
    summary = {
        "source_lang": src, "target_lang": tgt, "tag": cfg.tag,
        "pairs": {k: len(v[0]) for k, v in data.items()},
        "dropped": {k: dict(v[1]) for k, v in data.items()},
    }
    outputs = ["bin", "tok"]
    if extra.mono:
        summary["mono"] = extra.binarize_mono(work, procs, data, cfg.workers)
        outputs.append("mono")
    for name in outputs:
        final = os.path.join(cfg.destdir, name)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(os.path.join(work, name), final)
    if not cfg.spm_model:
        for ext in ("model", "vocab"):
            os.replace(os.path.join(work, f"spm.{ext}"), os.path.join(cfg.destdir, f"spm.{ext}"))
    summary["spm_model"] = os.path.abspath(cfg.spm_model or os.path.join(cfg.destdir, "spm.model"))
    return summary


def lang_pairs(cfg: PrepareConfig, splits: Dict[str, str]) -> List[Tuple[str, str]]:
    """``(src, tgt)`` of each of ``--lang-pairs``, checked."""
    pairs = [tuple(p.strip().split("-")) for p in cfg.lang_pairs.split(",")]
    for p in pairs:
        check(len(p) == 2 and all(p) and p[0] != p[1],
              f"--lang-pairs: {'-'.join(p)!r} is not SRC-TGT (two different languages)")
    check(len(set(pairs)) == len(pairs), f"--lang-pairs: a pair repeated in {cfg.lang_pairs}")
    for split, prefix in splits.items():
        check("{pair}" in prefix, f"--{split}pref {prefix}: with --lang-pairs, name each "
              "pair's files with {pair} (e.g. raw/{pair}/train)")
    check(not cfg.spm_extra_text and not cfg.monopref,
          "--lang-pairs: not with --spm-extra-text or --monopref")
    return pairs


def prepare_pairs(cfg: PrepareConfig, splits: Dict[str, str], done: str) -> Dict:
    """:func:`prepare` for ``--lang-pairs``: every pair's splits checked and read, one
    sentencepiece model trained on all training text (unless ``--spm-model``), one joined
    dictionary over all of it, each pair binarized with it into ``DESTDIR/bin``
    (``train.SRC-TGT.LANG``, ``dict.LANG.txt`` for every language)."""
    from fairseq.tasks.translation import TranslationTask

    pairs = lang_pairs(cfg, splits)
    names = {p: "-".join(p) for p in pairs}
    breaks = {names[p]: {k: Counter() for k in splits} for p in pairs}
    data = {names[p]: {k: read_parallel(v.format(pair=names[p]), *p, cfg.max_chars,
                                        breaks[names[p]][k]) for k, v in splits.items()}
            for p in pairs}
    for (src, tgt), name in names.items():
        check(bool(data[name]["train"][0]), f"{splits['train'].format(pair=name)}: no "
              f"training pairs left (dropped: {dict(data[name]['train'][1])}; see --max-chars)")
    os.makedirs(cfg.destdir, exist_ok=True)
    work = os.path.join(cfg.destdir, "work.tmp")
    shutil.rmtree(work, ignore_errors=True)
    try:
        tok, norm = os.path.join(work, "tok"), os.path.join(work, "norm")
        os.makedirs(tok), os.makedirs(norm)
        spm = cfg.spm_model
        if not spm:
            inputs = []
            for (src, tgt), name in names.items():
                for i, lang in enumerate((src, tgt)):
                    inputs.append(os.path.join(norm, f"train.{name}.{lang}"))
                    normalise = moses_normalizer(lang)
                    _write(inputs[-1], [normalise(p[i]) for p in data[name]["train"][0]])
            spm = train_sentencepiece(inputs, os.path.join(work, "spm"), cfg.spm_vocab_size,
                                      input_sentence_size=cfg.spm_train_lines)
        for (src, tgt), name in names.items():
            for i, lang in enumerate((src, tgt)):
                proc = TextProcessor(spm, lang)
                for split, (kept, _) in data[name].items():
                    _write(os.path.join(tok, f"{split}.{name}.{lang}"),
                           [proc.encode(p[i]) for p in kept])
        joined = TranslationTask.build_dictionary(
            [os.path.join(tok, f"train.{name}.{lang}") for (src, tgt), name in names.items()
             for lang in (src, tgt)], workers=cfg.workers, threshold=-1, nwords=-1,
            padding_factor=8)
        joined.save(os.path.join(work, "dict.txt"))
        for (src, tgt), name in names.items():
            binarize(os.path.join(work, "bin"), src, tgt,
                     {k: os.path.join(tok, f"{k}.{name}") for k in splits}, cfg.workers,
                     os.path.join(work, "dict.txt"), os.path.join(work, "dict.txt"))
        langs = sorted({lang for p in pairs for lang in p})
        if cfg.tag:
            for lang in langs:
                with open(os.path.join(work, "bin", f"dict.{lang}.txt"), "a",
                          encoding="utf-8") as f:
                    f.write(f"{cfg.tag} 0\n")
        for name in ("bin", "tok"):
            final = os.path.join(cfg.destdir, name)
            shutil.rmtree(final, ignore_errors=True)
            os.replace(os.path.join(work, name), final)
        if not cfg.spm_model:
            for ext in ("model", "vocab"):
                os.replace(os.path.join(work, f"spm.{ext}"),
                           os.path.join(cfg.destdir, f"spm.{ext}"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {
        "lang_pairs": list(names.values()), "tag": cfg.tag,
        "pairs": {n: {k: len(v[0]) for k, v in d.items()} for n, d in data.items()},
        "dropped": {n: {k: dict(v[1]) for k, v in d.items()} for n, d in data.items()},
        "spm_model": os.path.abspath(cfg.spm_model or os.path.join(cfg.destdir, "spm.model")),
        LINE_BREAKS_KEY: {n: {k: v[LINE_BREAKS_KEY] for k, v in b.items()}
                          for n, b in breaks.items()},
        "options": options(cfg)}
    with atomic_open(done) as f:
        json.dump(summary, f, indent=2)
    return summary


def binarize(destdir: str, src: str, tgt: Optional[str], prefixes: Dict[str, str],
             workers: int = 1, srcdict: Optional[str] = None, tgtdict: Optional[str] = None
             ) -> None:
    """Run ``fairseq-preprocess`` (joined dictionary unless dictionaries are given; without
    ``tgt``: monolingual, ``--only-source`` with ``srcdict``)."""
    cmd = [sys.executable, "-m", "fairseq_cli.preprocess", "--source-lang", src,
           "--destdir", destdir, "--workers", str(workers)]
    for split, prefix in prefixes.items():
        cmd += [f"--{split}pref", prefix]
    if not tgt:
        cmd += ["--only-source", "--srcdict", srcdict]
    else:
        cmd += ["--target-lang", tgt]
        cmd += ["--srcdict", srcdict, "--tgtdict", tgtdict] if srcdict else ["--joined-dictionary"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        tail = (p.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise BTUserError(f"fairseq-preprocess failed for {destdir}: {tail}")


class ExtraText:
    """Text beyond the pair's bitext (``--spm-extra-text``, ``--monopref``): read and checked
    before any work starts, then used for the sentencepiece model and ``DESTDIR/mono``."""

    def __init__(self, spm_extra: List[Tuple[str, List[str]]], mono: Dict[str, List[str]]):
        self.spm_extra = spm_extra  # [(lang, raw lines)] of --spm-extra-text
        self.mono = mono  # {lang: raw lines} of --monopref

    def normalised(self, norm_dir: str) -> List[str]:
        """Every extra text normalised for its language into ``norm_dir``: the paths."""
        paths = []
        texts = self.spm_extra + [(lang, lines) for lang, lines in self.mono.items()]
        for i, (lang, lines) in enumerate(texts):
            paths.append(os.path.join(norm_dir, f"extra{i}.{lang}"))
            _write(paths[-1], map(moses_normalizer(lang), lines))
        return paths

    def binarize_mono(self, work: str, procs: Dict[str, TextProcessor], data: Dict,
                      workers: int) -> Dict[str, int]:
        """Encode the monolingual text (and the valid split's side of each language) and
        binarize it with the joined dictionary into ``work/mono``; sentences per language."""
        for lang, lines in self.mono.items():
            prefixes = {"train": os.path.join(work, "tok", "mono")}
            _write(f"{prefixes['train']}.{lang}", [procs[lang].encode(x) for x in lines])
            if "valid" in data:
                prefixes["valid"] = os.path.join(work, "tok", "valid")
            binarize(os.path.join(work, "mono"), lang, None, prefixes, workers,
                     srcdict=os.path.join(work, "bin", f"dict.{lang}.txt"))
        return {lang: len(lines) for lang, lines in self.mono.items()}


def read_extra_text(cfg: PrepareConfig) -> ExtraText:
    """``--spm-extra-text`` files (language from the name) and ``--monopref`` sides, checked;
    empty and over-long (``--max-chars``) monolingual lines are dropped."""
    spm_extra = []
    for path in filter(None, (x.strip() for x in cfg.spm_extra_text.split(","))):
        lang = os.path.splitext(path[:-3] if path.endswith(".gz") else path)[1][1:]
        check(bool(lang), f"{path}: no .LANG ending (--spm-extra-text wants FILE.LANG)")
        check(os.path.isfile(path), f"{path}: file not found (--spm-extra-text)")
        spm_extra.append((lang, read_text_lines(path)))
    mono = {}
    for lang in (cfg.source_lang, cfg.target_lang) if cfg.monopref else ():
        found = [p for p in (f"{cfg.monopref}.{lang}", f"{cfg.monopref}.{lang}.gz")
                 if os.path.isfile(p)]
        if found:
            mono[lang] = [x for x in read_text_lines(found[0]) if 0 < len(x) <= cfg.max_chars]
            check(bool(mono[lang]), f"{found[0]}: no sentences left (empty, or see --max-chars)")
    check(not cfg.monopref or bool(mono), f"{cfg.monopref}.{cfg.source_lang} / "
          f"{cfg.monopref}.{cfg.target_lang}: file not found (--monopref; nor .gz)")
    return ExtraText(spm_extra, mono)


def main(argv: Optional[List[str]] = None) -> None:
    def run() -> None:
        cfg = parse_dataclass(PrepareConfig, sys.argv[1:] if argv is None else argv, PROG,
                              __doc__.split("\n\n")[0])
        summary = prepare(cfg)
        print(json.dumps(summary))

    run_reporting_user_errors(run, PROG)


if __name__ == "__main__":
    main()
