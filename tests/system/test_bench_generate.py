"""benchmarks/bench_generate.py --quick runs end to end (every command, both modes, the
quality and memory tables) on the tests' reverse model; no timing is checked. Marked slow (not in
``make test``: ``pytest -m slow``)."""
import os
import subprocess
import sys

import pytest

from helpers import ROOT


pytestmark = pytest.mark.slow


def test_quick_benchmark_runs(corpus, reverse_model, tmp_path):
    """Also: the commands it runs keep the caller's PYTHONPATH (where fairseq may come from;
    each Python process started there leaves a file), and the table is printed line by line
    as written (the same lines on stdout as in --table)."""
    table = tmp_path / "table.md"
    probe, seen = tmp_path / "probe", tmp_path / "seen"
    probe.mkdir()
    seen.mkdir()
    (probe / "sitecustomize.py").write_text(
        f"import os\nopen(os.path.join({str(seen)!r}, str(os.getpid())), 'w').close()\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(probe), os.environ.get("PYTHONPATH")])))
    p = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_generate.py"), "--quick", "--memory",
         "--corpus", "tatoeba", "--path", str(reverse_model), "--data", str(corpus.bin),
         "--spm-model", str(corpus.spm), "-s", corpus.tgt, "-t", corpus.src, "--batch-size",
         "8", "--threads", "1", "--table", str(table), "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    text = table.read_text(encoding="utf-8")
    assert p.stdout == text
    assert len(list(seen.iterdir())) > 10  # the benchmark and each command it ran
    assert "beam 5: fairseq-generate, run 1: " in p.stderr
    backends = ["fairseq", "ctranslate2"] if "ctranslate2" in text else ["fairseq"]
    for mode in ("beam 5", "sampling"):
        for command in ["fairseq-generate"] + [f"ours {b}" for b in backends]:
            assert f"| {mode} | {command} |" in text
    assert text.count("| 16/16 |") == 2 * (1 + len(backends))  # every line, every command
    for backend in backends:
        assert f"- {backend}: BLEU" in text and f"| {backend} | " in text  # quality, memory
