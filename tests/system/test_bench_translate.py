"""benchmarks/bench_translate.py --quick runs end to end on the tests' reverse model (export,
fairseq-interactive and fairseq-bt-translate on the same lines, the table and its JSON); no
timing is checked. Marked slow (not in ``make test``: ``pytest -m slow``)."""
import json
import subprocess
import sys

import pytest

from helpers import ROOT

pytestmark = pytest.mark.slow


def test_quick_benchmark_runs(corpus, reverse_model, tmp_path):
    pytest.importorskip("ctranslate2")
    table = tmp_path / "table.md"
    p = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_translate.py"), "--quick",
         "--path", str(reverse_model), "--data", str(corpus.bin), "--spm-model", str(corpus.spm),
         "-s", corpus.tgt, "-t", corpus.src, "--input", str(corpus.raw / f"test.{corpus.tgt}"),
         "--reference", str(corpus.raw / f"test.{corpus.src}"), "--threads", "1",
         "--batch-size", "8", "--table", str(table), "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout == table.read_text(encoding="utf-8")
    for name in ("fairseq-interactive", "fairseq-bt-translate (int8)"):
        assert f"| {name} | " in p.stdout
        assert f"{name}, run 1: " in p.stderr
    result = json.loads(table.with_suffix(".json").read_text(encoding="utf-8"))
    assert result["lines"] == 40
    for name in ("fairseq-interactive", "fairseq-bt-translate (int8)"):
        assert result[name]["seconds"] > 0 and result[name]["peak_mib"] > 50
    out = (tmp_path / "work" / "translate.out").read_text(encoding="utf-8").splitlines()
    assert len(out) == 40
