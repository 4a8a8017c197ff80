"""Training words/s of ``bt_translation`` in 2 CPU processes against 1, on the same data.

The 2-process runs are launched by torchrun and train one model with fairseq's distributed
trainer (gloo; the plugin's CPU set-up); every process, in both, uses 1 torch thread and the
same ``--max-tokens``, so each 2-process update reads twice the words. Runs alternate
(1 process, 2 processes, ...) and the median of fairseq's own ``train_wps`` of each is
reported with the ratio (ideal: 2 on 2 otherwise idle cores). Data: bitext + a synthetic
corpus as in ``bench_train.py``, ``--bt-synthetic-fraction 0.3``.
Usage: python benchmarks/bench_distributed.py [--pairs 2000] [--updates 100] [--repeats 3]
    [--arch bt_transformer_tiny]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_train import PLUGIN_DIR, build_data

from fairseq_bt_plugin.compat import free_port

BIN = Path(sys.executable).parent


def train_wps(nproc: int, bitext: Path, syn: Path, a, save: Path) -> float:
    launcher = ([str(BIN / "torchrun"), "--nproc_per_node", str(nproc), "--master_port",
                 str(free_port())] if nproc > 1 else [])
    cmd = launcher + [
        str(BIN / "fairseq-train"), str(bitext), "--user-dir", PLUGIN_DIR, "--cpu",
        "-s", "de", "-t", "en", "--task", "bt_translation", "--bt-data", str(syn),
        "--bt-synthetic-fraction", "0.3", "--criterion", "bt_label_smoothed_cross_entropy",
        "--arch", a.arch, "--share-all-embeddings", "--optimizer", "adam", "--lr", "0.0005",
        "--max-tokens", str(a.max_tokens), "--max-update", str(a.updates), "--num-workers", "0",
        "--disable-validation", "--no-save", "--save-dir", str(save), "--seed", "1",
        "--log-format", "json", "--log-interval", str(a.updates), "--no-progress-bar"]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"{nproc}-process training failed:\n{(p.stdout + p.stderr)[-3000:]}")
    if nproc > 1 and f"training on {nproc} devices" not in p.stdout + p.stderr:
        sys.exit(f"not distributed over {nproc} processes:\n{p.stdout[-3000:]}")
    stats = [json.loads(line[line.index("{"):]) for line in (p.stdout + p.stderr).splitlines()
             if '"train_wps"' in line]
    if not stats:
        sys.exit("no train_wps in the log")
    return float(stats[-1]["train_wps"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=2000)
    ap.add_argument("--updates", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--arch", default="bt_transformer_tiny")
    ap.add_argument("--max-tokens", type=int, default=2048)
    ap.add_argument("--workdir", default="")
    a = ap.parse_args()
    work = Path(a.workdir or tempfile.mkdtemp(prefix="bench_distributed_"))
    bitext, syn, _ = build_data(work, a.pairs)
    results = {1: [], 2: []}
    for r in range(a.repeats):
        for nproc in (1, 2):
            results[nproc].append(train_wps(nproc, bitext, syn, a, work / "ck"))
        print(f"repeat {r + 1}: 1 process {results[1][-1]:.0f} wps, "
              f"2 processes {results[2][-1]:.0f} wps", flush=True)
    one, two = statistics.median(results[1]), statistics.median(results[2])
    print(json.dumps({"benchmark": "distributed_train_wps", "arch": a.arch,
                      "updates": a.updates, "max_tokens": a.max_tokens,
                      "one_process_wps": round(one, 1), "two_processes_wps": round(two, 1),
                      "ratio": round(two / one, 3)}))
    print(f"training words/s, 2 processes / 1 process: {two / one:.3f} (ideal 2 on 2 idle cores)")


if __name__ == "__main__":
    main()
