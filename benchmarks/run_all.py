"""Every benchmark with its default settings (``make bench``); each prints its figures as
ratios against the stock fairseq path measured in the same run."""
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = [
    ["bench_train.py"],                 # training words/s: bt_translation vs translation
    ["bench_generate.py", "--memory"],  # back-translation vs fairseq-generate: speed (both
                                        # backends, beam 5 and sampling), BLEU, peak memory
    ["bench_distributed.py"],           # training words/s: 2 CPU processes vs 1
]

if __name__ == "__main__":
    failed = 0
    for bench in BENCHES:
        print(f"== {' '.join(bench)}", flush=True)
        failed += subprocess.run([sys.executable, str(HERE / bench[0])] + bench[1:]).returncode != 0
    sys.exit(1 if failed else 0)
