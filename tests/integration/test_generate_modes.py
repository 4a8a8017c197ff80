"""Every decoding mode runs through fairseq and gives aligned outputs; sampling is seeded."""
import pytest

from helpers.generate import make_input, outputs, run_generate, score_rows, weight_sums

MODES = {
    "beam": (["--mode", "beam", "--beam", "3", "--nbest", "2"], 2),
    "greedy": (["--mode", "greedy"], 1),
    "sample": (["--mode", "sample", "--samples-per-sentence", "2"], 2),
    "topk": (["--mode", "sample", "--sampling-topk", "5"], 1),
    "topp": (["--mode", "sample", "--sampling-topp", "0.9"], 1),
    "temperature": (["--mode", "sample", "--temperature", "0.7"], 1),
    "noised_beam": (["--mode", "noised_beam", "--beam", "2", "--noise-word-blank", "0.5",
                    "--max-len-ratio", "0"], 1),
}
N = 23


@pytest.mark.parametrize("mode", sorted(MODES))
def test_mode_gives_aligned_outputs(corpus, reverse_model, tmp_path, mode):
    flags, per_line = MODES[mode]
    inp = make_input(corpus, tmp_path / "mono.en", N)
    summary = run_generate(corpus, reverse_model, inp, tmp_path / "out", "--batch-size", "6",
                           "--keep-duplicates", *flags)
    assert summary["translated"] == N and summary["hypotheses"] == N * per_line
    assert summary["output_pairs"] + sum(summary["filtered"].values()) == N * per_line
    syn, orig, scores, weights = outputs(tmp_path / "out")
    assert len(syn) == len(orig) == len(scores) == len(weights) == summary["output_pairs"]
    rows = score_rows(tmp_path / "out")
    assert all(logprob <= average <= 0 for _, logprob, average, _ in rows)
    assert [w for *_, w in rows] == [float(x) for x in weights]
    assert all(abs(s - 1.0) < 2e-6 * per_line for s in weight_sums(tmp_path / "out").values())
    if mode == "noised_beam":
        assert any("<unk>" in s for s in syn), syn[:5]


def test_sampling_depends_only_on_seed(corpus, reverse_model, tmp_path):
    inp = make_input(corpus, tmp_path / "mono.en", 31)
    common = ["--mode", "sample", "--keep-duplicates", "--max-len-ratio", "0",
              "--max-len-a", "0", "--max-len-b", "6"]
    runs = {}
    for name, extra in (("a", ["--seed", "3", "--batch-size", "7"]),
                        ("b", ["--seed", "3", "--batch-size", "7"]),
                        ("c", ["--seed", "4", "--batch-size", "7"])):
        run_generate(corpus, reverse_model, inp, tmp_path / name, *common, *extra)
        runs[name] = outputs(tmp_path / name)
    assert runs["a"] == runs["b"]
    assert runs["a"][0] != runs["c"][0]
