"""Bad input to bt_translation: one clear error each, naming the file or flag."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fairseq_bt_plugin.errors import BTUserError

from helpers import SRC, TGT, TINY_MODEL, setup_task

BASE = ["--task", "bt_translation", "-s", SRC, "-t", TGT]


def load_train(corpus, *extra, data=None):
    task, _ = setup_task([str(data or corpus.bin)] + BASE + list(extra))
    task.load_dataset("train")
    return task


@pytest.fixture
def syn_copy(corpus, tmp_path):
    d = tmp_path / "syn"
    shutil.copytree(corpus.syn, d)
    return d


def test_synthetic_dictionary_differs(corpus, syn_copy):
    lines = (syn_copy / f"dict.{SRC}.txt").read_text(encoding="utf-8").splitlines()
    lines[3], lines[4] = lines[4], lines[3]
    (syn_copy / f"dict.{SRC}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(BTUserError,
                       match=rf"dict\.{SRC}\.txt: differs from the bitext dictionary .*line 4"):
        load_train(corpus, "--bt-data", str(syn_copy))


def test_missing_synthetic_split(corpus):
    with pytest.raises(BTUserError, match=rf"synthetic corpus not found: .*nosuch\.{SRC}-{TGT}\.{SRC}"):
        load_train(corpus, "--bt-data", "nosuch")


def test_weights_length_mismatch(corpus, syn_copy):
    w = (syn_copy / "train.weights").read_text().splitlines()
    (syn_copy / "train.weights").write_text("\n".join(w[:-3]) + "\n")
    with pytest.raises(BTUserError, match=r"train\.weights: 297 weights for a synthetic corpus of 300 pairs"):
        load_train(corpus, "--bt-data", str(syn_copy), "--bt-weighted")


def test_weights_not_a_number_names_the_line(corpus, syn_copy):
    w = (syn_copy / "train.weights").read_text().splitlines()
    w[9] = "abc"
    (syn_copy / "train.weights").write_text("\n".join(w) + "\n")
    with pytest.raises(BTUserError, match=r"train\.weights:10: not a number"):
        load_train(corpus, "--bt-data", str(syn_copy), "--bt-weighted")


def test_weights_file_missing(corpus, syn_copy):
    (syn_copy / "train.weights").unlink()
    with pytest.raises(BTUserError, match="weights file not found"):
        load_train(corpus, "--bt-data", str(syn_copy), "--bt-weighted")


@pytest.mark.parametrize("flags,message", [
    (["--upsample-primary", "-1"], "--upsample-primary must be >= 1, got -1"),
    (["--bt-synthetic-fraction", "1.5"], r"--bt-synthetic-fraction must be in \(0, 1\), got 1.5"),
    (["--bt-synthetic-fraction", "0.5", "--upsample-primary", "2"], "not both"),
    (["--bt-noise-word-dropout", "-0.1"], "word_dropout must be in"),
    (["--bt-noise-word-blank", "0.1", "--bt-noise-filler", "<nope>"], "not in the dictionary"),
])
def test_nonsensical_flags(corpus, flags, message):
    with pytest.raises(BTUserError, match=message):
        setup_task([str(corpus.bin)] + BASE + flags)


def test_cli_reports_one_line_and_exit_2(corpus, tmp_path):
    p = subprocess.run(
        [str(Path(sys.executable).parent / "fairseq-bt-train"), str(corpus.bin)] + BASE
        + ["--upsample-primary", "0", "--save-dir", str(tmp_path / "ck")] + TINY_MODEL,
        capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines()[-1] == (
        "fairseq-bt-train: error: --upsample-primary must be >= 1, got 0 (stock fairseq's -1 "
        "would drop the bitext, fairseq#3644)")
    assert not (tmp_path / "ck" / "checkpoint_last.pt").exists()
