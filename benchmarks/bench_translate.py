"""Translating a file with a trained model: ``fairseq-bt-translate --model DIR`` (the directory
``fairseq-bt-export`` writes: int8 CTranslate2 weights) against ``fairseq-interactive`` on the
same checkpoint, in the same run.

Both read the same raw source lines (``--lines``, the held-out set repeated) and write
detokenised text: fairseq-interactive with ``--bpe sentencepiece`` (the checkpoint's own
sentencepiece model; no Moses normalisation, which fairseq-bt-translate adds), beam 5,
``--batch-size`` sentences per batch, ``--threads`` torch threads; fairseq-bt-translate beam 5,
``--threads`` CTranslate2 batches at once. Whole process wall clock (start-up and model
loading included, the export not), the median of ``--repeats`` alternating runs, the start-up
alone (the same command on an empty input) and the peak resident memory of each; BLEU of both outputs against the references (equal quality: within 0.3).

The model: ``--run WORK --system NAME`` (a pipeline run: its checkpoint, dictionaries,
sentencepiece model, languages and first test set) or ``--path CKPT --data DICT_DIR --spm-model
SPM -s SRC -t TGT --input FILE --reference FILE``. ``--quick``: a smoke test (few lines, one
repeat). Usage:
    python benchmarks/bench_translate.py --run runs/demo --system bt_ft [--lines 2000]
        [--threads 2] [--batch-size 64] [--repeats 3] [--quick] [--table FILE] [--workdir DIR]
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_generate import PLUGIN_DIR, ROOT, cycled, read_lines, write


def measured(cmd, env, stdin=None, stdout=None):
    """(wall seconds, peak resident MiB of the largest process) of ``cmd``."""
    t0 = time.time()
    p = subprocess.Popen([str(c) for c in cmd], stdin=stdin, stdout=stdout or subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(p.pid, 0)
    seconds = time.time() - t0
    if status != 0:
        sys.exit(f"{' '.join(map(str, cmd[:3]))} failed: {p.stderr.read().decode()[-3000:]}")
    return seconds, usage.ru_maxrss / 1024  # KiB on Linux


def interactive_output(path: Path, n: int):
    """The detokenised hypotheses (``D-i`` lines) of a fairseq-interactive log, in input order."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("D-"):
            head, _, text = line.split("\t", 2)
            out[int(head[2:])] = text
    return [out.get(i, "") for i in range(n)]


def model_files(args):
    """(checkpoint, dictionaries, sentencepiece model, src, tgt, input, reference)."""
    sys.path.insert(0, str(ROOT))
    from fairseq_bt_plugin.translate import TranslateConfig, resolve

    cfg = resolve(TranslateConfig(path=args.path, run=args.run, system=args.system,
                                  data_dir=args.data, spm_model=args.spm_model,
                                  source_lang=args.source_lang, target_lang=args.target_lang))
    inp, ref = args.input, args.reference
    if args.run and not inp:
        tests = sorted(glob.glob(os.path.join(args.run, "raw", f"test_*.{cfg.source_lang}")))
        inp = tests[0]
        ref = inp[: -len(cfg.source_lang)] + cfg.target_lang
    return (cfg.path, cfg.data_dir or os.path.dirname(cfg.path), cfg.spm_model,
            cfg.source_lang, cfg.target_lang, inp, ref)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", default="")
    ap.add_argument("--system", default="")
    ap.add_argument("--path", default="")
    ap.add_argument("--data", default="")
    ap.add_argument("--spm-model", default="")
    ap.add_argument("-s", "--source-lang", default="")
    ap.add_argument("-t", "--target-lang", default="")
    ap.add_argument("--input", default="")
    ap.add_argument("--reference", default="")
    ap.add_argument("--lines", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--table", default="")
    ap.add_argument("--workdir", default="")
    args = ap.parse_args()
    if args.quick:
        args.lines, args.repeats = min(args.lines, 40), 1
    import sacrebleu

    ckpt, data, spm, src, tgt, inp, ref = model_files(args)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_translate."))
    work.mkdir(parents=True, exist_ok=True)
    sources = write(work / f"input.{src}", cycled(read_lines(Path(inp)), args.lines))
    refs = cycled(read_lines(Path(ref)), args.lines)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads))
    export = work / "export"
    if not (export / "model.bin").exists():
        subprocess.run([sys.executable, "-m", "fairseq_bt_plugin.export", "--path", ckpt,
                        "--data", data, "--spm-model", spm, "-s", src, "-t", tgt, "--output",
                        export, "--force"], check=True, env=env, capture_output=True)
    commands = {
        "fairseq-interactive": ([sys.executable, "-m", "fairseq_cli.interactive", data,
                                 "--user-dir", PLUGIN_DIR, "--path", ckpt, "--source-lang", src,
                                 "--target-lang", tgt, "--bpe", "sentencepiece",
                                 "--sentencepiece-model", spm, "--beam", "5", "--batch-size",
                                 args.batch_size, "--buffer-size", max(args.lines, args.batch_size), "--cpu"],
                                work / "interactive.out"),
        "fairseq-bt-translate (int8)": ([sys.executable, "-m", "fairseq_bt_plugin.translate",
                                         "--model", export, "--beam", "5", "--batch-size",
                                         args.batch_size, "--ct2-inter-threads", args.threads,
                                         "--log-interval", "0"], work / "translate.out"),
    }
    times = {name: [] for name in commands}
    startup = {name: [] for name in commands}  # the same command on an empty input
    memory = {}
    empty = write(work / "empty.txt", [])
    for r in range(args.repeats):
        for name, (cmd, out) in commands.items():
            with open(sources, "rb") as i, open(out, "wb") as o:
                seconds, mib = measured(cmd, env, stdin=i, stdout=o)
            with open(empty, "rb") as i:
                startup[name].append(measured(cmd, env, stdin=i)[0])
            times[name].append(seconds)
            memory[name] = max(memory.get(name, 0.0), mib)
            print(f"{name}, run {r + 1}: {seconds:.1f} s, {mib:.0f} MiB; start-up "
                  f"{startup[name][-1]:.1f} s", file=sys.stderr, flush=True)
    hyps = {"fairseq-interactive": interactive_output(work / "interactive.out", args.lines),
            "fairseq-bt-translate (int8)": (work / "translate.out").read_text(
                encoding="utf-8").splitlines()}
    bleu = {name: sacrebleu.corpus_bleu(h, [refs]).score for name, h in hyps.items()}
    base = statistics.median(times["fairseq-interactive"])
    base_work = base - statistics.median(startup["fairseq-interactive"])
    rows = [f"Translating {args.lines} lines ({Path(inp).name} repeated), beam 5, "
            f"{args.threads} threads, batch {args.batch_size}; model {ckpt} ({src}->{tgt}); "
            f"median of {args.repeats} whole-process runs; start-up: the same command on an "
            "empty input (imports, model loading).", "",
            "| command | seconds | lines/s | speed-up | start-up s | speed-up without it | "
            "peak MiB | BLEU |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    result = {"lines": args.lines, "threads": args.threads, "checkpoint": str(ckpt)}
    for name in commands:
        sec, start = statistics.median(times[name]), statistics.median(startup[name])
        rows.append(f"| {name} | {sec:.1f} | {args.lines / sec:.1f} | {base / sec:.2f}x | "
                    f"{start:.1f} | {base_work / max(sec - start, 1e-9):.2f}x | "
                    f"{memory[name]:.0f} | {bleu[name]:.2f} |")
        result[name] = {"seconds": sec, "startup_seconds": start, "peak_mib": memory[name],
                        "bleu": bleu[name]}
    rows += ["", f"BLEU difference: {bleu['fairseq-bt-translate (int8)'] - bleu['fairseq-interactive']:+.2f}"]
    text = "\n".join(rows) + "\n"
    print(text, end="")
    if args.table:
        Path(args.table).write_text(text, encoding="utf-8")
        Path(args.table).with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n",
                                                         encoding="utf-8")


if __name__ == "__main__":
    main()
