"""Cut the test suite's Tatoeba French-English slice (tests/data/tatoeba/) from the full split.

The source is ``tatoeba/fra-eng/`` of the project's shared data (``{train,dev,test}.{en,fr}.gz``,
made by ``tatoeba/make_splits.py``; CC-BY 2.0, attribution in ``_about.txt``, copied beside the
slice). ``train`` is ordered by sentence length, so its slice takes every STRIDE-th pair (short
and long sentences alike) and shuffles them (seed 1), so that any prefix of the slice is a fair
sample; ``dev`` and ``test`` are shuffled already, so theirs are their first lines.

usage: python tests/data/make_tatoeba_slice.py [SOURCE_DIR [DEST_DIR]]
"""
import gzip
import random
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parents[2] / "shared" / "data" / "tatoeba" / "fra-eng"
#: slice name -> (source split, number of pairs, stride)
SPLITS = {"train": ("train", 1000, 136), "valid": ("dev", 100, 1), "test": ("test", 100, 1)}
LANGS = ("fr", "en")


def cut(source: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for name, (split, n, stride) in SPLITS.items():
        order = list(range(n))
        if stride > 1:
            random.Random(1).shuffle(order)
        for lang in LANGS:
            with gzip.open(source / f"{split}.{lang}.gz", "rt", encoding="utf-8") as f:
                lines = f.read().splitlines()[::stride][:n]
            assert len(lines) == n, f"{source}/{split}.{lang}.gz: fewer than {n * stride} lines"
            text = "".join(lines[i] + "\n" for i in order)
            (dest / f"{name}.{lang}").write_text(text, encoding="utf-8")
    shutil.copyfile(source / "_about.txt", dest / "_about.txt")


if __name__ == "__main__":
    cut(Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE,
        Path(sys.argv[2]) if len(sys.argv) > 2 else HERE / "tatoeba")
