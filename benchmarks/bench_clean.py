"""fairseq-bt-clean on the demo's data, and how the language-identification threshold trades
good lines lost against wrong-language lines caught.

1. Cleans a folder laid out from ``$BT_SHARED_DATA/multi30k`` (default ``../shared/data``):
   task1 train, val and the four de-en test sets, and all of the monolingual text of both
   languages; prints the counts and seconds of ``clean.json``.
2. For each threshold: monolingual lines that language identification drops (all of the
   demo's are English or German captions: every drop is a good line lost), and how many of
   1000 lines of another language (task1 val in fr, cs and the other side; 1000 Tatoeba
   lines of the committed slice) mixed into them it catches.
Usage: python benchmarks/bench_clean.py [--workdir DIR]  (about a minute on one core)
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fairseq_bt_plugin.cleaning.langid import LanguageFilter

ROOT = Path(__file__).resolve().parents[1]
M30K = Path(os.environ.get("BT_SHARED_DATA", ROOT.parent / "shared" / "data")) / "multi30k"
TATOEBA = ROOT / "tests" / "data" / "tatoeba"
TESTS = ("test_2016_flickr", "test_2017_flickr", "test_2017_mscoco", "test_2018_flickr")
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def read(path: Path, n: int = 0):
    with (gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else
          open(path, encoding="utf-8")) as f:
        lines = [x.strip() for x in f]
    return lines[:n] if n else lines


def clean_demo(raw: Path) -> dict:
    raw.mkdir(parents=True, exist_ok=True)
    for lang in ("de", "en"):
        files = {"train": "task1/train", "valid": "task1/val", "mono":
                 "mono/task2_train.{}.dedup_notask1"}
        files.update({t: f"task1/{t}" for t in TESTS})
        for name, stem in files.items():
            path = M30K / (stem.format(lang) if "{}" in stem else f"{stem}.{lang}")
            (raw / f"{name}.{lang}").write_text("".join(x + "\n" for x in read(
                path if path.suffix == ".gz" else path.with_name(path.name + ".gz"))))
    start = time.time()
    subprocess.run([sys.executable, "-m", "fairseq_bt_plugin.cleaning.clean", "--raw-dir",
                    str(raw), "--source-lang", "de", "--target-lang", "en"], check=True)
    print(f"wall clock {time.time() - start:.1f} s (imports included)")
    return json.loads((raw / "clean.json").read_text())


def threshold_table(mono: dict) -> None:
    other = {"en": {"de": "task1/val.de", "fr": "task1/val.fr", "cs": "task1/val.cs",
                    "fr (Tatoeba)": TATOEBA / "train.fr"},
             "de": {"en": "task1/val.en", "fr": "task1/val.fr", "cs": "task1/val.cs",
                    "en (Tatoeba)": TATOEBA / "train.en"}}
    for lang, sets in other.items():
        ident = LanguageFilter(lang, 0.0, lang)
        start = time.time()
        best = [ident.best(x) for x in mono[lang]]
        print(f"\n{lang}: {len(best)} monolingual lines, {len(best) / (time.time() - start):.0f}"
              " lines/s; dropped at threshold " + " / ".join(map(str, THRESHOLDS)) + ":")
        print("  good lines lost: " + " / ".join(str(sum(
            1 for b, p in best if b != lang and p >= t)) for t in THRESHOLDS))
        for name, path in sets.items():
            path = path if isinstance(path, Path) else M30K / (path + ".gz")
            found = [ident.best(x) for x in read(path, 1000)]
            print(f"  {name} lines caught (of {len(found)}): " + " / ".join(str(sum(
                1 for b, p in found if b != lang and p >= t)) for t in THRESHOLDS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default="")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_clean."))
    mono = {lang: read(M30K / f"mono/task2_train.{lang}.dedup_notask1.gz")
            for lang in ("en", "de")}
    summary = clean_demo(work / "raw")
    for name, r in summary["corpora"].items():
        print(name, json.dumps({k: r[k] for k in ("lines_in", "lines_out", "normalised", "dropped",
                                                  "contaminated_by", "wrong_languages", "seconds")}))
    threshold_table(mono)


if __name__ == "__main__":
    main()
