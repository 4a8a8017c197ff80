"""fairseq-bt-convert: a real fairseq-generate log -> aligned files, by sentence id."""
import math
import os
import random
import subprocess
import sys

import pytest

from fairseq_bt_plugin.generate.convert import main

from helpers import PLUGIN_DIR, SRC, TGT
from helpers.generate import outputs


@pytest.fixture(scope="module")
def generate_log(corpus, reverse_model, tmp_path_factory):
    """stdout of a stock fairseq-generate run of the TGT->SRC model on the 50 test sentences."""
    cmd = [sys.executable, "-m", "fairseq_cli.generate", str(corpus.bin), "--user-dir",
           PLUGIN_DIR, "-s", TGT, "-t", SRC, "--path", str(reverse_model), "--gen-subset",
           "test", "--batch-size", "8", "--beam", "2", "--max-len-a", "0", "--max-len-b", "5",
           "--post-process", "sentencepiece", "--cpu"]
    p = subprocess.run(cmd, capture_output=True, text=True, check=True,
                       env=dict(os.environ, OMP_NUM_THREADS="1"))
    path = tmp_path_factory.mktemp("log") / "generate.log"
    path.write_text(p.stdout, encoding="utf-8")
    return path


def convert(log, out, *extra):
    main(["--log", str(log), "--output-dir", str(out), "-s", TGT, "-t", SRC, *extra])


def by_id(log, kind):
    out = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        if line.startswith(kind + "-"):
            i, _, rest = line[len(kind) + 1:].partition("\t")
            out[int(i)] = rest
    return out


def test_converts_by_id(generate_log, corpus, tmp_path):
    convert(generate_log, tmp_path / "out", "--expected", "50")
    syn, orig, scores, weights = outputs(tmp_path / "out")
    sources, hyps, detoks = (by_id(generate_log, k) for k in "SHD")
    assert orig == [sources[i] for i in range(50)]
    assert syn == [detoks[i].split("\t")[1] for i in range(50)]
    for i in (0, 17, 49):  # log2 scores become natural-log average log-probabilities (from
        # the P- lines, each token's score printed to 4 decimals: hence the tolerance)
        assert float(scores[i].split("\t")[2]) == pytest.approx(
            float(hyps[i].split("\t")[0]) * math.log(2), abs=1e-4)
    # input order, not the log's (length) order: most lines equal the raw test set
    raw = (corpus.raw / f"test.{corpus.tgt}").read_text(encoding="utf-8").splitlines()
    assert sum(a == b for a, b in zip(orig, raw)) >= 45


def test_shuffled_log_gives_the_same_files(generate_log, tmp_path):
    lines = generate_log.read_text(encoding="utf-8").splitlines(keepends=True)
    random.Random(0).shuffle(lines)
    shuffled = tmp_path / "shuffled.log"
    shuffled.write_text("".join(lines), encoding="utf-8")
    convert(generate_log, tmp_path / "a")
    convert(shuffled, tmp_path / "b")
    assert outputs(tmp_path / "a") == outputs(tmp_path / "b")


def test_missing_id_is_reported(generate_log, tmp_path, capsys):
    lines = generate_log.read_text(encoding="utf-8").splitlines(keepends=True)
    cut = tmp_path / "cut.log"
    cut.write_text("".join(x for x in lines if not x.startswith(("H-17\t", "D-17\t"))),
                   encoding="utf-8")
    with pytest.raises(SystemExit) as e:
        convert(cut, tmp_path / "out", "--expected", "50")
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "1 of 50 sentence ids" in err and "ids 17" in err, err
    assert not (tmp_path / "out" / f"bt.{SRC}").exists()
    convert(cut, tmp_path / "out", "--expected", "50", "--allow-missing")
    syn, orig, _, _ = outputs(tmp_path / "out")
    assert len(syn) == len(orig) == 49
    assert by_id(generate_log, "S")[17] not in orig


def test_concatenated_logs_are_an_error_naming_the_line(generate_log, tmp_path, capsys):
    """Two runs' logs in one file: their ids repeat, and pairing by id would give one run's
    hypotheses another's sources. The repeated S- line is a one-line error naming the file and
    line; so is a second run's start appended without its S- lines (some ids with two H-
    lines, the others one: the first line too many). Nothing is written."""
    lines = generate_log.read_text(encoding="utf-8").splitlines(keepends=True)
    first_source = next(n for n, x in enumerate(lines) if x.startswith("S-"))
    i = lines[first_source].split("\t")[0][2:]
    start = [x for x in lines[:len(lines) // 3] if not x.startswith("S-")]
    again = min(int(x.split("\t")[0][2:]) for x in start if x.startswith("H-"))
    h = next(n for n, x in enumerate(start) if x.startswith(f"H-{again}\t"))
    cases = {"both.log": (lines + lines, f"{len(lines) + first_source + 1}: sentence id {i} "
                          f"repeated (S-{i} also on line {first_source + 1})"),
             "start.log": (lines + start, f"{len(lines) + h + 1}: sentence id {again} has 2 H- "
                           "lines, the log's other sentences 1: the lines of more than one run")}
    for name, (text, message) in cases.items():
        log = tmp_path / name
        log.write_text("".join(text), encoding="utf-8")
        with pytest.raises(SystemExit) as e:
            convert(log, tmp_path / "out")
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith(f"fairseq-bt-convert: error: {log}:{message}"), err
        assert len(err.strip().splitlines()) == 1
        assert not (tmp_path / "out").exists()
