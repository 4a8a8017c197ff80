"""Training words/s of ``bt_translation`` against stock ``translation`` on the same data.

Both train the same model for the same number of updates on bitext + a synthetic corpus:
stock fairseq reads them as splits ``train`` + ``train1`` (``--upsample-primary 1``, plain
concatenation), ``bt_translation`` as bitext + ``--bt-data`` (tag and noise off, so the work
per batch is the same). Runs alternate (stock, ours, stock, ours, ...) and the median words/s
of each is reported with the ratio (goal >= 0.95). With ``--features`` the bt_translation
runs also use a tag, word noise and weights, to show what those cost.
Usage: python benchmarks/bench_train.py [--pairs 4000] [--updates 60] [--repeats 3] [--features]
"""
import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PLUGIN_DIR = str(ROOT / "fairseq_bt_plugin")
SHARED = Path(os.environ.get("BT_SHARED_DATA", ROOT.parent / "shared" / "data"))
TASK1 = SHARED / "multi30k" / "task1"


def take(path: Path, n: int, skip: int = 0):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for _, line in zip(range(skip + n), f)][skip:]


def build_data(work: Path, pairs: int):
    """bitext (first `pairs` task1 pairs) and synthetic (the next `pairs`), binarized."""
    from fairseq_bt_plugin.prepare import PrepareConfig, binarize, prepare

    raw = work / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, skip in (("train", 0), ("syn", pairs)):
        for lang in ("de", "en"):
            (raw / f"{name}.{lang}").write_text(
                "".join(x + "\n" for x in take(TASK1 / f"train.{lang}.gz", pairs, skip)),
                encoding="utf-8")
    prepare(PrepareConfig(source_lang="de", target_lang="en", trainpref=str(raw / "train"),
                          destdir=str(work / "prep"), spm_vocab_size=4000))
    from fairseq_bt_plugin.text_processing import TextProcessor

    procs = {lang: TextProcessor(str(work / "prep" / "spm.model"), lang) for lang in ("de", "en")}
    for lang in ("de", "en"):
        lines = (raw / f"syn.{lang}").read_text(encoding="utf-8").splitlines()
        (raw / f"syn.tok.{lang}").write_text("".join(procs[lang].encode(x) + "\n" for x in lines),
                                             encoding="utf-8")
    bitext, syn = work / "prep" / "bin", work / "syn"
    binarize(str(syn), "de", "en", {"train": str(raw / "syn.tok")},
             srcdict=str(bitext / "dict.de.txt"), tgtdict=str(bitext / "dict.en.txt"))
    stock = work / "stock"  # train + train1 in one directory, as stock fairseq wants
    stock.mkdir(exist_ok=True)
    for f in bitext.iterdir():
        if not (stock / f.name).exists():
            (stock / f.name).symlink_to(f)
    for f in syn.glob("train.*"):
        target = stock / f.name.replace("train.", "train1.", 1)
        if not target.exists():
            target.symlink_to(f)
    return bitext, syn, stock


def train_wps(data: Path, task_args, updates: int, save: Path) -> float:
    cmd = [sys.executable, "-m", "fairseq_cli.train", str(data), "--user-dir", PLUGIN_DIR,
           "-s", "de", "-t", "en", "--arch", "bt_transformer_small", "--share-all-embeddings",
           "--optimizer", "adam", "--lr", "0.0005", "--max-tokens", "2048", "--cpu",
           "--max-update", str(updates), "--disable-validation", "--no-save",
           "--log-format", "json", "--log-interval", str(updates), "--no-progress-bar",
           "--save-dir", str(save), "--seed", "1"] + task_args
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"training failed:\n{p.stderr[-3000:]}")
    for line in reversed((p.stdout + p.stderr).splitlines()):
        if "| train |" in line or line.startswith("{") or "INFO | train |" in line:
            j = line[line.index("{"):] if "{" in line else None
            if j:
                stats = json.loads(j)
                if "train_wps" in stats:
                    return float(stats["train_wps"])
    sys.exit("no train stats in the log")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=4000)
    ap.add_argument("--updates", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--features", action="store_true")
    ap.add_argument("--workdir", default="")
    a = ap.parse_args()
    work = Path(a.workdir or tempfile.mkdtemp(prefix="bench_train_"))
    bitext, syn, stock = build_data(work, a.pairs)
    ours_args = ["--task", "bt_translation", "--bt-data", str(syn),
                 "--criterion", "bt_label_smoothed_cross_entropy"]
    if a.features:
        ours_args += ["--bt-tag", "<BT>", "--bt-noise-word-dropout", "0.1",
                      "--bt-noise-word-blank", "0.1", "--bt-noise-shuffle-distance", "3"]
    stock_args = ["--task", "translation", "--upsample-primary", "1",
                  "--criterion", "label_smoothed_cross_entropy"]
    results = {"stock": [], "ours": []}
    for r in range(a.repeats):
        results["stock"].append(train_wps(stock, stock_args, a.updates, work / "ck"))
        results["ours"].append(train_wps(bitext, ours_args, a.updates, work / "ck"))
        print(f"repeat {r + 1}: translation {results['stock'][-1]:.0f} wps, "
              f"bt_translation {results['ours'][-1]:.0f} wps", flush=True)
    s, o = statistics.median(results["stock"]), statistics.median(results["ours"])
    print(json.dumps({"benchmark": "train_wps", "pairs": 2 * a.pairs, "updates": a.updates,
                      "features": a.features, "translation_wps": round(s, 1),
                      "bt_translation_wps": round(o, 1), "ratio": round(o / s, 3)}))
    print(f"training words/s, bt_translation / translation: {o / s:.3f} (goal >= 0.95)")


if __name__ == "__main__":
    main()
