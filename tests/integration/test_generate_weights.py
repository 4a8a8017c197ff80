"""PREFIX.weights: for each input sentence, the softmax of log p(x|y) over its kept synthetic
sources from a beam (after filters and deduplication), checked against a hand computation from
log-probabilities recomputed here by forced decoding; 1/K for K sampled sources."""
import json
import math

import pytest
from fairseq.data import Dictionary, data_utils

from fairseq_bt_plugin.errors import BTUserError
from fairseq_bt_plugin.text_processing import TextProcessor

from helpers.generate import (forced_log_probs, make_input, mono_lines, outputs, run_generate,
                              score_rows)

# the best 3 of a beam of 4 per line
NBEST = ["--beam", "4", "--nbest", "3", "--max-len-a", "0", "--max-len-b", "8",
         "--max-len-ratio", "0", "--batch-size", "5", "--chunk-size", "7"]
# noise deletes words of the hypotheses: some become empty or duplicates and are filtered
DROP = ["--mode", "noised_beam", "--noise-word-dropout", "0.4", "--noise-word-blank", "0",
        "--noise-shuffle-distance", "0"]


def by_line(rows):
    groups = {}
    for row in rows:
        groups.setdefault(row[0], []).append(row)
    return groups


def check_softmax(rows, column):
    """By hand: w = exp(s_k) / sum_j exp(s_j) over each line's kept pairs."""
    for g in by_line(rows).values():
        norm = sum(math.exp(r[column]) for r in g)
        for r in g:
            assert abs(r[3] - math.exp(r[column]) / norm) < 2e-6, g


@pytest.mark.parametrize("batching", [["--batch-size", "5"], ["--max-tokens", "61"]])
def test_every_pair_scores_as_its_own_translation(corpus, reverse_model, tmp_path, batching):
    """Each output pair, decoded in batches of several lines in 2 chunks, is re-scored alone:
    its log p(x|y) is the one recorded (so no line got another line's synthetic source), and
    the text files, scores and binarized corpus hold the same pairs in input order."""
    inp = make_input(corpus, tmp_path / "mono.txt", 11)
    out, bdir = tmp_path / "o", tmp_path / "bin"
    run_generate(corpus, reverse_model, inp, out, "--mode", "beam", *NBEST, *batching,
                 "--keep-duplicates", "--binarize-to", bdir)  # every hypothesis kept
    rows = score_rows(out)
    forced = forced_log_probs(corpus, reverse_model, bdir)
    src = corpus.src  # the synthetic side
    d = Dictionary.load(str(corpus.bin / f"dict.{src}.txt"))
    ids = data_utils.load_indexed_dataset(str(bdir / f"train.{src}-{corpus.tgt}.{src}"), None,
                                          "mmap")
    assert len(rows) == len(forced) == len(ids) == 33
    for i, ((_, logprob, average, _), f) in enumerate(zip(rows, forced)):
        n = len(ids[i])  # tokens, eos included, as fairseq scores
        assert abs(logprob - f) < 1e-3 and abs(average - f / n) < 1e-3, (logprob, average, f)
    check_softmax(rows, 1)
    syn, orig, _, weights = outputs(out)
    assert [r[0] for r in rows] == [i for i in range(11) for _ in range(3)]
    assert orig == [line for line in mono_lines(corpus, 11) for _ in range(3)]
    tp = TextProcessor(str(corpus.spm), src)
    assert syn == [tp.decode(d.string(ids[i])) for i in range(len(ids))]
    assert (bdir / "train.weights").read_text().splitlines() == weights


def test_weights_are_a_softmax_over_each_sentences_kept_sources(corpus, reverse_model,
                                                                 tmp_path):
    inp = make_input(corpus, tmp_path / "mono.txt", 17)
    out = tmp_path / "seq"
    summary = run_generate(corpus, reverse_model, inp, out, *DROP, *NBEST)
    rows = score_rows(out)
    assert summary["hypotheses"] == 17 * 3 and sum(summary["filtered"].values()) > 0
    groups = by_line(rows)
    # some sentences lost some (not all) of their hypotheses to the filters
    assert any(1 < len(g) < 3 for g in groups.values()), groups
    assert any(len(g) == 3 for g in groups.values())
    check_softmax(rows, 1)  # so each line's weights sum to 1, whatever was filtered
    assert [float(w) for w in outputs(out)[3]] == [r[3] for r in rows]
    assert json.loads((out / "bt.summary.json").read_text())["weights"] == "sequence"

    run_generate(corpus, reverse_model, inp, tmp_path / "norm", *DROP, *NBEST, "--weights",
                 "length_normalized")
    norm_rows = score_rows(tmp_path / "norm")
    assert [r[:3] for r in norm_rows] == [r[:3] for r in rows]
    check_softmax(norm_rows, 2)
    assert [r[3] for r in norm_rows] != [r[3] for r in rows]


def test_one_source_per_sentence_weighs_1(corpus, reverse_model, tmp_path):
    inp = make_input(corpus, tmp_path / "mono.txt", 9)
    run_generate(corpus, reverse_model, inp, tmp_path / "o", "--mode", "sample",
                 "--max-len-ratio", "0")
    assert set(outputs(tmp_path / "o")[3]) == {"1.000000"}


def test_sampled_sources_weigh_1_over_their_number(corpus, reverse_model, tmp_path):
    """Sources drawn by sampling are already distributed by p(x|y): each of a sentence's K kept
    samples weighs 1/K (--weights auto or uniform), whatever its score; a softmax of their
    scores (sequence, length_normalized) is refused before any decoding."""
    inp = make_input(corpus, tmp_path / "mono.txt", 9)
    sampled = ["--mode", "sample", "--nbest", "3", "--max-len-ratio", "0"]
    summary = run_generate(corpus, reverse_model, inp, tmp_path / "o", *sampled)
    rows = score_rows(tmp_path / "o")
    assert summary["weights"] == "uniform"
    for g in by_line(rows).values():
        assert all(abs(r[3] - 1 / len(g)) < 1e-6 for r in g), g
    assert any(len({r[1] for r in g}) > 1 for g in by_line(rows).values())  # scores differ
    for how in ("sequence", "length_normalized"):
        with pytest.raises(BTUserError, match=f"--weights {how} with --mode sample"):
            run_generate(corpus, reverse_model, inp, tmp_path / how, *sampled, "--weights", how)
        assert not (tmp_path / how).exists()
