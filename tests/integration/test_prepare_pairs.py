"""fairseq-bt-prepare for several language pairs: one sentencepiece model trained with other
pairs' text (--spm-extra-text) and reused by them (--spm-model), and monolingual text
binarized with the pair's dictionary for bt_denoising (--monopref)."""
import json
import subprocess
import sys
from pathlib import Path

from helpers import write_lines

PREPARE = str(Path(sys.executable).parent / "fairseq-bt-prepare")
WORD = "zyxquvwy"  # only in the extra text: a piece of the model if (and only if) it trained it


def prepare(*args):
    return subprocess.run([PREPARE, *map(str, args)], capture_output=True, text=True)


def test_one_model_for_several_pairs_and_mono(corpus, tmp_path):
    src, tgt = corpus.src, corpus.tgt
    write_lines(tmp_path / "other.xx", [f"{WORD} {WORD}s {i}" for i in range(300)])
    pair = ["--source-lang", src, "--target-lang", tgt, "--trainpref", corpus.raw / "train",
            "--validpref", corpus.raw / "valid", "--spm-vocab-size", 300]
    p = prepare(*pair, "--destdir", tmp_path / "child", "--spm-extra-text", tmp_path / "other.xx",
                "--monopref", corpus.raw / "syn", "--tag", "<BT>")
    assert p.returncode == 0, p.stderr[-2000:]
    summary = json.loads(p.stdout)
    assert summary["mono"] == {src: 300, tgt: 300}
    assert f"\u2581{WORD}\t" in (tmp_path / "child" / "spm.vocab").read_text()
    mono = tmp_path / "child" / "mono"
    bin_dict = (tmp_path / "child" / "bin" / f"dict.{src}.txt").read_text()
    for lang in (src, tgt):
        assert (mono / f"dict.{lang}.txt").read_text() == bin_dict  # bt_denoising wants both equal
        for split in ("train", "valid"):
            assert (mono / f"{split}.{lang}-None.{lang}.bin").stat().st_size > 0
    # the other pair reuses the model: its own text is split into the same pieces
    (tmp_path / "other.yy").write_text((tmp_path / "other.xx").read_text())
    p = prepare("--source-lang", "xx", "--target-lang", "yy", "--trainpref", tmp_path / "other",
                "--destdir", tmp_path / "parent", "--spm-model", tmp_path / "child" / "spm.model")
    assert p.returncode == 0, p.stderr[-2000:]
    assert f"\u2581{WORD} " in (tmp_path / "parent" / "tok" / "train.xx").read_text()
    assert not (tmp_path / "parent" / "spm.model").exists()


def test_extra_text_errors_name_the_file(corpus, tmp_path):
    pair = ["--source-lang", corpus.src, "--target-lang", corpus.tgt, "--trainpref",
            corpus.raw / "train", "--destdir", tmp_path / "out"]
    for extra, message in ((["--spm-extra-text", tmp_path / "nope.xx"], "nope.xx: file not found"),
                           (["--spm-extra-text", corpus.raw / "train"], "no .LANG ending"),
                           (["--monopref", tmp_path / "none"], f"none.{corpus.src} / "),
                           (["--spm-extra-text", corpus.raw / f"train.{corpus.src}",
                             "--spm-model", tmp_path / "x.model"], "not found")):
        p = prepare(*pair, *extra)
        assert p.returncode == 2 and message in p.stderr and len(p.stderr.splitlines()) == 1, \
            p.stderr
        assert not (tmp_path / "out").exists()
