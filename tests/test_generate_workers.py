"""--workers: the batches of each chunk decoded by several processes and merged in order give
the output of one process, for beam search and for sampling, and resume (real decoding)."""
import pytest

from generate_helpers import make_input, outputs, run_generate

FLAGS = ["--batch-size", "4", "--chunk-size", "10", "--max-len-a", "0", "--max-len-b", "6",
         "--max-len-ratio", "0", "--keep-duplicates", "--keep-identical"]
LINES = 27  # 3 chunks of up to 3 batches


@pytest.mark.parametrize("mode", ["beam", "sample"])
def test_workers_give_the_single_process_output(corpus, reverse_model, tmp_path, mode):
    inp = make_input(corpus, tmp_path / "mono.txt", LINES)
    runs = {}
    for workers in ("1", "2", "0"):  # 0: one per core
        out = tmp_path / f"workers{workers}"
        summary = run_generate(corpus, reverse_model, inp, out, "--mode", mode, "--nbest", "2",
                               "--workers", workers, *FLAGS)
        runs[workers] = outputs(out)
        assert summary["input_lines"] == summary["translated"] == LINES
        assert summary["hypotheses"] == 2 * LINES
        assert len(runs[workers][0]) == len(runs[workers][1]) == summary["output_pairs"]
    assert runs["2"] == runs["1"] and runs["0"] == runs["1"]


def test_resumed_with_other_workers(corpus, reverse_model, tmp_path):
    inp = make_input(corpus, tmp_path / "mono.txt", LINES)
    out = tmp_path / "out"
    flags = ["--mode", "sample", *FLAGS]
    run_generate(corpus, reverse_model, inp, out, *flags, "--workers", "1")
    whole = outputs(out)
    (out / "bt.work" / "chunk-000001.jsonl").unlink()  # as if killed during chunk 1
    run_generate(corpus, reverse_model, inp, out, *flags, "--workers", "2")
    assert outputs(out) == whole
