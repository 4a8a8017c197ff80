"""benchmarks/bench_generate.py --quick runs end to end (every command, both modes, the
quality and memory tables) on the tests' reverse model; no timing is checked."""
import subprocess
import sys

from conftest import ROOT


def test_quick_benchmark_runs(corpus, reverse_model, tmp_path):
    table = tmp_path / "table.md"
    p = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_generate.py"), "--quick", "--memory",
         "--corpus", "tatoeba", "--path", str(reverse_model), "--data", str(corpus.bin),
         "--spm-model", str(corpus.spm), "-s", corpus.tgt, "-t", corpus.src, "--batch-size",
         "8", "--threads", "1", "--table", str(table), "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    text = table.read_text(encoding="utf-8")
    backends = ["fairseq", "ctranslate2"] if "ctranslate2" in text else ["fairseq"]
    for mode in ("beam 5", "sampling"):
        for command in ["fairseq-generate"] + [f"ours {b}" for b in backends]:
            assert f"| {mode} | {command} |" in text
    assert text.count("| 16/16 |") == 2 * (1 + len(backends))  # every line, every command
    for backend in backends:
        assert f"- {backend}: BLEU" in text and f"| {backend} | " in text  # quality, memory
