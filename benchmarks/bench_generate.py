"""Benchmark fairseq-bt-generate against plain fairseq-generate, and its memory use.

Speed (default, about 2 minutes on 2 CPU cores): the same reverse model, the same
monolingual lines, the same batch size and length limits, beam 5 and unrestricted sampling;
prints sentences/s of both (decoding only, as each reports it, and whole-command wall clock)
and the ratios, for each backend of ours (fairseq; ctranslate2 when installed).
fairseq-generate needs the input binarized first (not timed).

Memory (``--memory``): peak RSS of fairseq-bt-generate on 10k and 100k input lines (greedy,
short outputs): it reads the input in chunks, so the peak should hardly grow.

Without ``--path``, a tiny en->de model is trained first (about a minute) on a Multi30K
slice. Usage:
    python benchmarks/bench_generate.py [--path CKPT --data DICT_DIR --spm-model SPM]
        [--lines 1000] [--batch-size 64] [--threads 1] [--memory] [--workdir DIR]
"""
import argparse
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIR = str(ROOT / "fairseq_bt_plugin")
SHARED = Path(os.environ.get("BT_SHARED_DATA", ROOT.parent / "shared" / "data"))
MONO = SHARED / "multi30k" / "mono" / "task2_train.en.dedup_notask1.gz"
TASK1 = SHARED / "multi30k" / "task1"


def sh(cmd, env=None, **kw):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, **kw)
    if p.returncode != 0:
        sys.exit(f"{cmd[:4]} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return p


def timed(cmd, env):
    """(wall seconds, stdout, stderr) of a child command."""
    t0 = time.time()
    p = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    out, err = p.communicate()
    wall = time.time() - t0
    if p.returncode != 0:
        sys.exit(f"{cmd[:4]} failed ({p.returncode}):\n{err[-3000:]}")
    return wall, out, err


def peak_rss_mib(cmd, env) -> float:
    p = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(p.pid, 0)
    if status != 0:
        sys.exit(f"{cmd[:4]} failed: {p.stderr.read().decode()[-3000:]}")
    return usage.ru_maxrss / 1024  # KiB on Linux


def head_gz(path: Path, n: int, skip: int = 0):
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= skip + n:
                break
            if i >= skip:
                out.append(line.rstrip("\n"))
    return out


def train_tiny(work: Path, env):
    """A tiny en->de transformer (bt_transformer_tiny) on 2000 Multi30K pairs."""
    sys.path.insert(0, str(ROOT))
    from fairseq_bt_plugin.text_processing import TextProcessor, train_sentencepiece

    raw, tok = work / "raw", work / "tok"
    raw.mkdir(parents=True, exist_ok=True)
    tok.mkdir(exist_ok=True)
    for lang in ("en", "de"):
        (raw / f"train.{lang}").write_text(
            "\n".join(head_gz(TASK1 / f"train.{lang}.gz", 2000)) + "\n", encoding="utf-8")
    spm = train_sentencepiece([str(raw / "train.en"), str(raw / "train.de")],
                              str(work / "spm"), 1000)
    for lang in ("en", "de"):
        tp = TextProcessor(spm, lang)
        lines = (raw / f"train.{lang}").read_text(encoding="utf-8").splitlines()
        (tok / f"train.{lang}").write_text("\n".join(tp.encode(x) for x in lines) + "\n",
                                           encoding="utf-8")
    sh([sys.executable, "-m", "fairseq_cli.preprocess", "-s", "en", "-t", "de", "--trainpref",
        tok / "train", "--destdir", work / "bin", "--joined-dictionary", "--workers", "1"], env)
    sh([sys.executable, "-m", "fairseq_cli.train", work / "bin", "--user-dir", PLUGIN_DIR,
        "-s", "en", "-t", "de", "--arch", "bt_transformer_tiny", "--optimizer", "adam", "--lr",
        "0.002", "--max-tokens", "4000", "--max-update", "150", "--save-dir", work / "ckpt",
        "--no-epoch-checkpoints", "--disable-validation", "--cpu", "--no-progress-bar",
        "--seed", "1"], env)
    return work / "ckpt" / "checkpoint_last.pt", work / "bin", spm


def fairseq_generate_input(lines, work: Path, data: Path, spm: str, env):
    """Binarize the monolingual lines as the source of a 'test' split (target: a copy)."""
    sys.path.insert(0, str(ROOT))
    from fairseq_bt_plugin.text_processing import TextProcessor

    tp = TextProcessor(spm, "en")
    tok = work / "fg_tok"
    tok.mkdir(exist_ok=True)
    pieces = "\n".join(tp.encode(x) for x in lines) + "\n"
    (tok / "test.en").write_text(pieces, encoding="utf-8")
    (tok / "test.de").write_text(pieces, encoding="utf-8")
    dest = work / "fg_bin"
    sh([sys.executable, "-m", "fairseq_cli.preprocess", "-s", "en", "-t", "de", "--testpref",
        tok / "test", "--destdir", dest, "--srcdict", data / "dict.en.txt", "--tgtdict",
        data / "dict.de.txt", "--workers", "1"], env)
    return dest


def backends():
    try:
        import ctranslate2  # noqa: F401

        return ["fairseq", "ctranslate2"]
    except ImportError:
        return ["fairseq"]


def speed(args, ckpt, data, spm, work: Path, env):
    lines = head_gz(MONO, args.lines)
    inp = work / "mono.en"
    inp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    fg_bin = fairseq_generate_input(lines, work, Path(data), spm, env)
    limits = ["--max-len-a", "1.2", "--max-len-b", "10"]
    rows = []
    for name, ours_mode, fg_mode in (
            ("beam 5", ["--mode", "beam", "--beam", "5"], ["--beam", "5"]),
            ("sampling", ["--mode", "sample"], ["--sampling", "--beam", "1", "--nbest", "1"])):
        cmd = [sys.executable, "-m", "fairseq_cli.generate", fg_bin, "--user-dir", PLUGIN_DIR,
               "-s", "en", "-t", "de", "--path", ckpt, "--gen-subset", "test", "--batch-size",
               args.batch_size, "--cpu", "--post-process", "sentencepiece", "--seed", "1",
               *limits, *fg_mode]
        wall_fg, stdout, stderr = timed(cmd, env)
        m = re.search(r"Translated ([\d,]+) sentences .*?\(([\d.]+) sentences/s", stderr)
        fg_rate, fg_h = float(m.group(2)), len(re.findall(r"^H-", stdout, re.M))
        for backend in backends():
            out = work / f"ours_{name.replace(' ', '')}_{backend}"
            cmd = [sys.executable, "-m", "fairseq_bt_plugin.generate", "--input", inp, "--path",
                   ckpt, "--data", data, "--spm-model", spm, "-s", "en", "-t", "de",
                   "--output-dir", out, "--cpu", "--batch-size", args.batch_size,
                   "--keep-identical", "--keep-duplicates", "--max-len-ratio", "0",
                   "--max-output-tokens", "0", "--log-interval", "1e9", "--backend", backend,
                   "--cpu-threads", args.threads, "--ct2-model-dir", work / "ct2_model",
                   *limits, *ours_mode]
            wall_ours, _, _ = timed(cmd, env)
            summary = json.loads((out / "bt.summary.json").read_text())
            rows.append((name, backend, summary["translated"], summary["sentences_per_second"],
                         summary["generator_sentences_per_second"], wall_ours, fg_rate,
                         wall_fg, fg_h))
    print(f"\nspeed: {args.lines} lines, --batch-size {args.batch_size}, "
          f"{args.threads} thread(s), max length 1.2*src+10")
    print(f"{'mode':<9} {'backend':<11} {'fairseq':>8} {'ours':>8} {'ratio':>6} {'ours gen':>9} "
          f"{'ratio':>6}   {'fairseq':>8} {'ours':>6} {'ratio':>6}   lines out")
    print(f"{'':<9} {'':<11} {'sent/s':>8} {'sent/s':>8} {'':>6} {'sent/s':>9} {'':>6}"
          f"   {'wall s':>8} {'wall s':>6} {'':>6}   ours/fairseq")
    for name, backend, n, rate, gen_rate, wall, fg_rate, fg_wall, fg_h in rows:
        print(f"{name:<9} {backend:<11} {fg_rate:>8.1f} {rate:>8.1f} {rate / fg_rate:>6.2f} "
              f"{gen_rate:>9.1f} {gen_rate / fg_rate:>6.2f}   {fg_wall:>8.1f} {wall:>6.1f} "
              f"{fg_wall / wall:>6.2f}   {n}/{fg_h}")
    print("ratio > 1: fairseq-bt-generate faster. 'sent/s' excludes model loading (fairseq's "
          "own figure: generation and detokenisation of pre-binarized input; ours: Moses + "
          "sentencepiece encoding, generation, decoding); 'ours gen': the generator alone "
          "(fairseq's or CTranslate2's); wall: whole commands (the first ctranslate2 run "
          "includes converting the checkpoint)")


def quality(args, ckpt, data, spm, work: Path, env):
    """Back-translate a held-out parallel set (test_2016_flickr en) with each backend, beam 5,
    and score against its real source side (de) with sacrebleu: equal quality means a BLEU
    difference <= 0.3."""
    import sacrebleu

    inp, ref = work / "heldout.en", head_gz(TASK1 / "test_2016_flickr.de.gz", 10**6)
    inp.write_text("\n".join(head_gz(TASK1 / "test_2016_flickr.en.gz", 10**6)) + "\n",
                   encoding="utf-8")
    print(f"\nquality: back-translation of test_2016_flickr ({len(ref)} en lines, beam 5) "
          "scored against its German side")
    scores = {}
    for backend in backends():
        out = work / f"quality_{backend}"
        cmd = [sys.executable, "-m", "fairseq_bt_plugin.generate", "--input", inp, "--path",
               ckpt, "--data", data, "--spm-model", spm, "-s", "en", "-t", "de",
               "--output-dir", out, "--cpu", "--batch-size", args.batch_size, "--mode", "beam",
               "--beam", "5", "--keep-identical", "--keep-duplicates", "--max-len-ratio", "0",
               "--max-output-tokens", "0", "--log-interval", "1e9", "--backend", backend,
               "--cpu-threads", args.threads, "--ct2-model-dir", work / "ct2_model"]
        wall, _, _ = timed(cmd, env)
        hyps = (out / "bt.de").read_text(encoding="utf-8").splitlines()
        check = len(hyps) == len(ref)
        bleu = sacrebleu.corpus_bleu(hyps, [ref]).score if check else float("nan")
        scores[backend] = bleu
        summary = json.loads((out / "bt.summary.json").read_text())
        print(f"{backend:<11} BLEU {bleu:6.2f}  {summary['sentences_per_second']:7.1f} sent/s  "
              f"wall {wall:6.1f} s  lines {len(hyps)}/{len(ref)}")
    if len(scores) == 2:
        print(f"BLEU difference ctranslate2 - fairseq: "
              f"{scores['ctranslate2'] - scores['fairseq']:+.2f} (goal: within 0.3)")


def memory(args, ckpt, data, spm, work: Path, env):
    print("\nmemory: peak RSS of fairseq-bt-generate (greedy, outputs <= 3 tokens, "
          f"--chunk-size {args.chunk_size})")
    for n in (10_000, 100_000):
        lines = head_gz(MONO, n)
        inp = work / f"mono{n}.en"
        inp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        cmd = [sys.executable, "-m", "fairseq_bt_plugin.generate", "--input", inp, "--path",
               ckpt, "--data", data, "--spm-model", spm, "-s", "en", "-t", "de",
               "--output-dir", work / f"mem{n}", "--cpu", "--mode", "greedy", "--max-len-a",
               "0", "--max-len-b", "3", "--max-len-ratio", "0", "--batch-size", "256",
               "--chunk-size", args.chunk_size, "--log-interval", "1e9"]
        t0 = time.time()
        rss = peak_rss_mib(cmd, env)
        print(f"{len(lines):>7} lines: peak RSS {rss:7.1f} MiB ({time.time() - t0:.0f} s)")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--path", help="reverse en->de checkpoint (default: train a tiny one)")
    p.add_argument("--data", help="directory of its dict.en.txt / dict.de.txt")
    p.add_argument("--spm-model", help="its sentencepiece model")
    p.add_argument("--lines", type=int, default=1000, help="input lines for the speed test")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--chunk-size", type=int, default=10000)
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS for both tools")
    p.add_argument("--memory", action="store_true", help="measure peak RSS, 10k vs 100k lines")
    p.add_argument("--quality", action="store_true",
                   help="BLEU of both backends' back-translations of a held-out parallel set")
    p.add_argument("--no-speed", action="store_true", help="skip the speed comparison")
    p.add_argument("--workdir", help="keep files here (default: a temp dir)")
    args = p.parse_args()
    if not MONO.exists():
        sys.exit(f"{MONO} not found (set BT_SHARED_DATA)")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONPATH=str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.path:
            ckpt, data, spm = args.path, args.data or os.path.dirname(args.path), args.spm_model
            if not spm:
                sys.exit("--spm-model is needed with --path")
        else:
            t0 = time.time()
            ckpt, data, spm = train_tiny(work / "model", env)
            print(f"trained a tiny en->de model in {time.time() - t0:.0f} s: {ckpt}")
        if not args.no_speed:
            speed(args, ckpt, data, spm, work, env)
        if args.quality:
            quality(args, ckpt, data, spm, work, env)
        if args.memory:
            memory(args, ckpt, data, spm, work, env)


if __name__ == "__main__":
    main()
