"""Every input line is translated, whatever the batch settings (sizes not multiples of 8)."""
import json

import pytest

from helpers.generate import make_input, mono_lines, outputs, run_generate


@pytest.mark.parametrize("n,batch", [(37, ["--batch-size", "8"]), (101, ["--batch-size", "5"]),
                                     (37, ["--max-tokens", "150"]), (101, ["--max-tokens", "97"])])
def test_every_line_in_and_out(corpus, reverse_model, tmp_path, n, batch):
    inp = make_input(corpus, tmp_path / "mono.en", n)
    out = tmp_path / "out"
    summary = run_generate(corpus, reverse_model, inp, out, "--mode", "greedy", "--chunk-size",
                           "30", "--keep-duplicates", "--keep-identical", "--max-len-ratio", "0",
                           *batch)
    assert summary["input_lines"] == n and summary["translated"] == n
    assert summary["hypotheses"] == n
    syn, orig, scores, weights = outputs(out)
    kept = summary["output_pairs"]
    assert len(syn) == len(orig) == len(scores) == len(weights) == kept
    assert kept + sum(summary["filtered"].values()) == n
    # the original side is the input, in input order
    src = mono_lines(corpus, n)
    it = iter(src)
    assert all(any(o == s for s in it) for o in orig)
    assert json.loads((out / "bt.summary.json").read_text())["output_pairs"] == kept
