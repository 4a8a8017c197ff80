"""``fairseq-bt-filter``: dual conditional cross-entropy filtering of a real
``fairseq-bt-backtranslate`` output (tiny reverse and forward models), and the reverse-score
mode."""
import json
import math
import subprocess
import sys
from types import SimpleNamespace

import pytest

from helpers import train_tiny
from helpers.generate import (assert_binarized_is_text, binarized_pairs, forced_log_probs,
                              forward_vocabulary, make_input, outputs, run_generate, score_rows)

N = 40


@pytest.fixture(scope="module")
def forward_model(corpus, tmp_path_factory):
    """A tiny SRC->TGT model (the pipeline's baseline role)."""
    return train_tiny(corpus.bin, tmp_path_factory.mktemp("forward"), ["--lr", "0.005"],
                      updates=20)


@pytest.fixture(scope="module")
def bt(corpus, reverse_model, tmp_path_factory):
    """A back-translated corpus of N lines (every output kept) with its binarized corpus."""
    d = tmp_path_factory.mktemp("bt")
    run_generate(corpus, reverse_model, make_input(corpus, d / "mono.txt", N), d / "out",
                 "--beam", "2", "--max-len-ratio", "0", "--keep-identical",
                 "--keep-duplicates", "--binarize-to", d / "out" / "bin",
                 "--srcdict", corpus.bin / f"dict.{corpus.src}.txt",
                 "--tgtdict", corpus.bin / f"dict.{corpus.tgt}.txt")
    return d / "out"


def run_filter(*argv):
    """The tool as a user runs it; returns (exit status, stderr)."""
    p = subprocess.run([sys.executable, "-m", "fairseq_bt_plugin.filtering", "--cpu",
                        "--cpu-threads", "1", *map(str, argv)], capture_output=True, text=True)
    return p.returncode, p.stderr


def filter_rows(out, prefix="bt"):
    """``PREFIX.filter`` as (H_f, H_r, score, kept) tuples."""
    rows = []
    for line in (out / f"{prefix}.filter").read_text(encoding="utf-8").splitlines():
        hf, hr, score, kept = line.split("\t")
        rows.append((float(hf), float(hr), float(score), kept == "1"))
    return rows


def test_dual_score_by_hand():
    """Three pairs computed by hand; the worst third goes."""
    from fairseq_bt_plugin.filtering.scoring import dual_score, kept_pairs

    # |2 - 3| + (2 + 3)/2 = 3.5; |1 - 1| + 1 = 1; |4 - 0.5| + 2.25 = 5.75
    scores = [dual_score(2.0, 3.0), dual_score(1.0, 1.0), dual_score(4.0, 0.5)]
    assert scores == [3.5, 1.0, 5.75]
    assert kept_pairs(scores, 1 / 3, None) == [True, True, False]
    assert kept_pairs(scores, 0.0, None) == [True, True, True]
    assert kept_pairs(scores, None, 3.5) == [True, True, False]
    assert kept_pairs([1.0, math.inf, 2.0], 0.0, None) == [True, False, True]


def test_dual_filtering(corpus, reverse_model, forward_model, bt, tmp_path):
    """H_f and H_r are fairseq's forced-decoding cross-entropies of each pair (each pair also
    scored alone here, no batch); the score is the formula's; the dropped pairs are the
    highest scores; the kept files line up and their corpus trains with bt_translation."""
    out = tmp_path / "filtered"
    code, err = run_filter("--bt-dir", bt, "--output-dir", out, "--forward-path",
                           forward_model, "--drop-worst", "0.25", "--max-tokens", "50")
    assert code == 0, err
    rows = filter_rows(out)
    syn_in, orig_in, _, _ = outputs(bt)
    assert len(rows) == len(syn_in) == N
    # fairseq's own per-pair log-probabilities, one pair at a time
    lengths = {lang: [len(x) for x in _tokens(bt / "bin", corpus, lang)]
               for lang in (corpus.src, corpus.tgt)}
    reverse = forced_log_probs(corpus, reverse_model, bt / "bin")
    forward = forced_log_probs(corpus, forward_model, bt / "bin", forward=True)
    for i, (hf, hr, score, _) in enumerate(rows):
        assert hf == pytest.approx(-forward[i] / lengths[corpus.tgt][i], abs=1e-4)
        assert hr == pytest.approx(-reverse[i] / lengths[corpus.src][i], abs=1e-4)
        assert score == pytest.approx(abs(hf - hr) + 0.5 * (hf + hr), abs=2e-6)
    # H_r is also the generator's own score of its beam output
    assert [-r[2] for r in score_rows(bt)] == pytest.approx([r[1] for r in rows], abs=1e-4)
    dropped = [r[2] for r in rows if not r[3]]
    kept = [r[2] for r in rows if r[3]]
    assert len(dropped) == N // 4 and min(dropped) >= max(kept)
    syn, orig, scores, weights = outputs(out)
    assert syn == [x for x, r in zip(syn_in, rows) if r[3]]
    assert orig == [y for y, r in zip(orig_in, rows) if r[3]]
    assert len(scores) == len(weights) == N - N // 4
    summary = json.loads((out / "bt.summary.json").read_text())
    assert (summary["input_pairs"], summary["output_pairs"], summary["dropped"]) == \
        (N, N - N // 4, N // 4)
    assert summary["highest_kept_score"] == pytest.approx(max(kept), abs=1e-6)
    assert_kept_pairs_binarized(corpus, bt, out, [r[3] for r in rows])
    assert (out / "bin" / "train.weights").read_text().splitlines() == weights
    # the filtered corpus trains with bt_translation
    train_tiny(corpus.bin, tmp_path / "model", ["--task", "bt_translation", "--bt-data",
                                                 out / "bin", "--bt-weighted"], updates=2)
    assert (tmp_path / "model" / "checkpoint_last.pt").exists()


def assert_kept_pairs_binarized(corpus, bt, out, keep):
    """The filtered corpus the +BT model trains on: the generator's token ids of the kept
    pairs, both sides (never one side twice), and the text files' pairs."""
    before = binarized_pairs(bt / "bin", corpus)
    after = binarized_pairs(out / "bin", corpus)
    assert after == [p for p, k in zip(before, keep) if k]
    assert sum(syn == orig for syn, orig in after) == sum(s == o for s, o in before)
    assert_binarized_is_text(bt / "bin", bt, corpus)
    assert_binarized_is_text(out / "bin", out, corpus)


def _tokens(bdir, corpus, lang):
    from fairseq.data import data_utils

    base = bdir / f"train.{corpus.src}-{corpus.tgt}.{lang}"
    data = data_utils.load_indexed_dataset(str(base), None, "mmap")
    return [data[i] for i in range(len(data))]


def test_reverse_score_threshold(corpus, bt, tmp_path):
    """--method reverse: H_r is minus the generator's average log-probability (no model
    run); --max-score keeps the pairs at or under the threshold."""
    out = tmp_path / "filtered"
    hr = [-r[2] for r in score_rows(bt)]
    threshold = sorted(hr)[N // 2]
    code, err = run_filter("--bt-dir", bt, "--output-dir", out, "--method", "reverse",
                           "--max-score", threshold)
    assert code == 0, err
    rows = filter_rows(out)
    assert [r[1] for r in rows] == pytest.approx(hr, abs=1e-6)
    assert [r[3] for r in rows] == [h <= threshold for h in hr]
    assert len(outputs(out)[0]) == sum(h <= threshold for h in hr)
    assert_kept_pairs_binarized(corpus, bt, out, [r[3] for r in rows])


def test_unscored_pairs_go_first():
    """A nan or inf score is never kept and counts among the worst: it never pushes out a
    better pair than the drop fraction asks for."""
    from fairseq_bt_plugin.filtering.scoring import kept_pairs

    scores = [1.0, math.nan] + [float(x) for x in range(3, 11)]
    assert kept_pairs(scores, 0.2, None) == [True, False] + [True] * 7 + [False]
    assert kept_pairs([math.nan, 2.0, math.inf], None, 5.0) == [False, True, False]
    assert kept_pairs([math.nan, 2.0, math.inf, 1.0], 0.0, None) == [False, True, False, True]


@pytest.mark.parametrize("args,message", [
    (["--drop-worst", "0.1"],
     "--method dual needs --forward-path (the forward model, e.g. the baseline)"),
    (["--method", "reverse"], "give one of --drop-worst and --max-score"),
    (["--method", "reverse", "--drop-worst", "1"], "--drop-worst must be in [0, 1), got 1.0"),
])
def test_option_errors(bt, tmp_path, args, message):
    code, err = run_filter("--bt-dir", bt, "--output-dir", tmp_path / "out", *args)
    assert code == 2 and err.strip().splitlines() == [f"fairseq-bt-filter: error: {message}"]
    assert not (tmp_path / "out").exists()


def test_needs_the_binarized_corpus(corpus, reverse_model, tmp_path):
    run_generate(corpus, reverse_model, make_input(corpus, tmp_path / "mono.txt", 5),
                 tmp_path / "bt")
    code, err = run_filter("--bt-dir", tmp_path / "bt", "--output-dir", tmp_path / "out",
                           "--method", "reverse", "--drop-worst", "0.1")
    assert code == 2 and err.strip().splitlines() == [
        f"fairseq-bt-filter: error: {tmp_path}/bt/bt.summary.json: generated without "
        "--binarize-to; the filter reads the pairs' token ids from that corpus (--bt-bin)"]


@pytest.fixture(scope="module")
def reused(corpus, tmp_path_factory):
    """A reverse model with a vocabulary of its own (another sentencepiece model and
    dictionary, as a reused REVERSE_CHECKPOINT has; padded to the corpus's size, so that
    loading it with the corpus's dictionaries does not fail), and its back-translation
    binarized in the corpus's vocabulary (the pipeline's: --binarize-spm-model, as the +BT
    model trains)."""
    from fairseq.data import Dictionary

    d = tmp_path_factory.mktemp("reused")
    spm, data = forward_vocabulary(corpus, d / "vocabulary")
    for lang in (corpus.src, corpus.tgt):
        own = Dictionary.load(str(data / f"dict.{lang}.txt"))
        while len(own) < len(Dictionary.load(str(corpus.bin / f"dict.{lang}.txt"))):
            own.add_symbol(f"madeupword{len(own):04d}")
        own.save(str(data / f"dict.{lang}.txt"))
    model = train_tiny(data, d / "model", ["--lr", "0.005"], src=corpus.tgt, tgt=corpus.src)
    own = SimpleNamespace(**{**vars(corpus), "bin": data, "spm": spm})
    run_generate(own, model, make_input(corpus, d / "mono.txt", N), d / "out", "--beam", "2",
                 "--max-len-ratio", "0", "--keep-identical", "--keep-duplicates",
                 "--binarize-to", d / "out" / "bin", "--binarize-spm-model", corpus.spm,
                 "--srcdict", corpus.bin / f"dict.{corpus.src}.txt",
                 "--tgtdict", corpus.bin / f"dict.{corpus.tgt}.txt")
    return SimpleNamespace(model=model, spm=spm, data=data, own=own, out=d / "out")


def own_pieces_binarized(reused, bdir):
    """The generator output's pairs encoded with the reused model's own sentencepiece model
    and dictionaries (as fairseq-bt-backtranslate --binarize-to encodes), binarized in ``bdir``."""
    from fairseq.data import Dictionary, indexed_dataset

    from fairseq_bt_plugin.text_processing import TextProcessor

    own = reused.own
    bdir.mkdir()
    for lang, lines in zip((own.src, own.tgt), outputs(reused.out)[:2]):
        d = Dictionary.load(str(own.bin / f"dict.{lang}.txt"))
        tp = TextProcessor(str(own.spm), lang)
        base = bdir / f"train.{own.src}-{own.tgt}.{lang}"
        builder = indexed_dataset.make_builder(f"{base}.bin", impl="mmap", vocab_size=len(d))
        for line in lines:
            builder.add_item(d.encode_line(tp.encode(line), add_if_not_exist=False))
        builder.finalize(f"{base}.idx")


def test_reverse_model_scores_in_its_own_vocabulary(corpus, forward_model, reused, tmp_path):
    """A reverse model with its own sentencepiece model and dictionaries (a reused one), its
    output binarized in the corpus's vocabulary: H_r is its own forced-decoding score of each
    pair in its vocabulary (the pairs' text encoded with its files), H_f the forward model's
    of the corpus's ids; by default (the generator's model and files) and with its files
    given (as the pipeline's filter stage gives them). Its dictionaries without its
    sentencepiece model are a one-line error: never scored with another vocabulary."""
    own_pieces_binarized(reused, tmp_path / "own")
    lengths = {lang: [len(x) for x in _tokens(tmp_path / "own", corpus, lang)]
               for lang in (corpus.src, corpus.tgt)}
    reverse = forced_log_probs(reused.own, reused.model, tmp_path / "own")
    forward = forced_log_probs(corpus, forward_model, reused.out / "bin", forward=True)
    corpus_lengths = [len(x) for x in _tokens(reused.out / "bin", corpus, corpus.tgt)]
    assert lengths[corpus.src] != [len(x) for x in _tokens(reused.out / "bin", corpus,
                                                           corpus.src)]  # other pieces
    common = ["--bt-dir", reused.out, "--forward-path", forward_model, "--drop-worst", "0.25"]
    for name, given in (("default", []), ("given", [
            "--reverse-path", reused.model, "--reverse-data", reused.data,
            "--reverse-spm-model", reused.spm, "--forward-data", corpus.bin,
            "--forward-spm-model", corpus.spm])):
        code, err = run_filter(*common, "--output-dir", tmp_path / name, *given)
        assert code == 0, err
        rows = filter_rows(tmp_path / name)
        assert len(rows) == len(reverse) > N // 2
        for i, (hf, hr, _, _) in enumerate(rows):
            assert hr == pytest.approx(-reverse[i] / lengths[corpus.src][i], abs=1e-4), i
            assert hf == pytest.approx(-forward[i] / corpus_lengths[i], abs=1e-4), i
        assert_kept_pairs_binarized(corpus, reused.out, tmp_path / name, [r[3] for r in rows])

    code, err = run_filter(*common, "--output-dir", tmp_path / "out", "--reverse-data",
                           reused.data)
    assert code == 2 and err.strip().splitlines() == [
        f"fairseq-bt-filter: error: --reverse-path {reused.model}: its dictionaries "
        f"({reused.data}/dict.{{{corpus.tgt},{corpus.src}}}.txt) are not the corpus's "
        f"({reused.out}/bin): give --reverse-spm-model (its sentencepiece model) to score the "
        "pairs in its own vocabulary"], err
    assert not (tmp_path / "out").exists()
