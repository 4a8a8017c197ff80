"""The committed test corpus (tests/data/tatoeba/): its sizes, its alignment, its attribution,
and that tests/data/make_tatoeba_slice.py remakes it byte for byte from the shared data."""
import subprocess
import sys

import pytest

from helpers import SHARED_DATA, SRC, TATOEBA, TGT

SIZES = {"train": 1000, "valid": 100, "test": 100}


def test_slice_sizes_alignment_and_attribution():
    for split, n in SIZES.items():
        sides = [(TATOEBA / f"{split}.{lang}").read_text(encoding="utf-8").splitlines()
                 for lang in (SRC, TGT)]
        assert len(sides[0]) == len(sides[1]) == n, split
        assert all(x.strip() for side in sides for x in side), split  # no empty lines
    about = (TATOEBA / "_about.txt").read_text(encoding="utf-8")
    assert "Attribution: www.manythings.org/anki and tatoeba.org" in about
    assert "creativecommons.org/licenses/by/2.0" in about
    # the bitext, synthetic, valid and test parts of the corpus fixture do not overlap
    train = (TATOEBA / f"train.{TGT}").read_text(encoding="utf-8").splitlines()
    held = set()
    for split in ("valid", "test"):
        held |= set((TATOEBA / f"{split}.{TGT}").read_text(encoding="utf-8").splitlines())
    assert not held & set(train)


@pytest.mark.shared_data("tatoeba/fra-eng")
def test_script_remakes_the_slice(tmp_path):
    script = TATOEBA.parent / "make_tatoeba_slice.py"
    subprocess.run([sys.executable, str(script), str(SHARED_DATA / "tatoeba" / "fra-eng"),
                    str(tmp_path)], check=True)
    made = sorted(p.name for p in tmp_path.iterdir())
    assert made == sorted(p.name for p in TATOEBA.iterdir())
    for name in made:
        assert (tmp_path / name).read_bytes() == (TATOEBA / name).read_bytes(), name
