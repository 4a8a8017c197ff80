"""Back-translation speed, quality and memory: fairseq-bt-backtranslate (fairseq and CTranslate2
backends) against plain fairseq-generate, in the same run.

Speed: the same reverse model, monolingual lines, batch size and length limits, beam 5 and
unrestricted sampling; each command run ``--repeats`` times, the commands alternating, and the
median taken: whole-command wall clock and decoding alone (sentences/s as each tool reports
it: fairseq-generate's own figure on pre-binarized input; ours: text processing and
generation). On CPU every tool gets ``--threads`` (fairseq-generate: torch threads; ours:
``--workers`` / ``--ct2-inter-threads``); with ``--device cuda``: fairseq-generate ``--fp16``,
ours ``--fp16`` (fairseq backend) and CTranslate2's GPU default (float16).

Quality: both backends back-translate a held-out parallel set (beam 5), scored against its
reference side; equal quality means a BLEU difference <= 0.3.

Memory: peak RSS (the largest process) of both backends on 10k and 100k input lines
(greedy, short outputs): input is read in chunks, so the peak should hardly grow.

Data (``--corpus``): Multi30K (en->de) from ../shared/data when there (BT_SHARED_DATA),
otherwise the committed Tatoeba slice (en->fr, tests/data/tatoeba). Without ``--path`` a model of the demo's
size (bt_transformer_small, 3+3 layers x 256) is trained first on the bitext (--updates).
``--quick``: a smoke test (few lines, one repeat, no timing goals). Usage:
    python benchmarks/bench_generate.py [--path CKPT --data DICT_DIR --spm-model SPM]
        [-s en -t de] [--corpus auto|multi30k|tatoeba] [--lines 1000] [--batch-size 64] [--threads 2] [--repeats 3] [--device cpu|cuda]
        [--no-speed] [--no-quality] [--memory] [--quick] [--table FILE] [--workdir DIR]
"""
import argparse
import gzip
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIR = str(ROOT / "fairseq_bt_plugin")
SHARED = Path(os.environ.get("BT_SHARED_DATA", ROOT.parent / "shared" / "data"))
MULTI30K = SHARED / "multi30k"
TATOEBA = ROOT / "tests" / "data" / "tatoeba"
LIMITS = ["--max-len-a", "1.2", "--max-len-b", "10"]
MODES = {  # name: (ours, fairseq-generate)
    "beam 5": (["--mode", "beam", "--beam", "5"], ["--beam", "5"]),
    "sampling": (["--mode", "sample"], ["--sampling", "--beam", "1", "--nbest", "1"]),
}


def read_lines(path: Path, n: int = 10**9, skip: int = 0):
    """Lines ``skip``..``skip+n`` of a plain or .gz file."""
    opener = gzip.open if path.suffix == ".gz" else open
    out = []
    with opener(path, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= skip + n:
                break
            if i >= skip:
                out.append(line.rstrip("\n"))
    return out


def cycled(lines, n: int):
    return [lines[i % len(lines)] for i in range(n)]


class Data:
    """Bitext to train on, monolingual text (the reverse model's source) and a held-out set."""

    def __init__(self, corpus: str, src: str = "", tgt: str = ""):
        if corpus == "multi30k" or (corpus == "auto" and (MULTI30K / "mono").exists()):
            self.name, self.src, self.tgt = "Multi30K", src or "en", tgt or "de"
            task1 = MULTI30K / "task1"
            self.train = {lang: read_lines(task1 / f"train.{lang}.gz", 2000)
                          for lang in (self.src, self.tgt)}
            self.heldout = {lang: read_lines(task1 / f"test_2016_flickr.{lang}.gz")
                            for lang in (self.src, self.tgt)}
            self._mono = MULTI30K / "mono" / f"task2_train.{self.src}.dedup_notask1.gz"
        else:
            self.name, self.src, self.tgt = "Tatoeba slice", src or "en", tgt or "fr"
            self.train = {lang: read_lines(TATOEBA / f"train.{lang}")
                          for lang in (self.src, self.tgt)}
            self.heldout = {lang: read_lines(TATOEBA / f"test.{lang}")
                            for lang in (self.src, self.tgt)}
            self._mono = None

    def mono(self, n: int):
        """``n`` monolingual lines (repeated when the corpus is shorter)."""
        if self._mono is not None and self._mono.exists():
            return cycled(read_lines(self._mono, n), n)
        return cycled(self.train[self.src], n)


def sh(cmd, env):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"{cmd[:4]} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return p


def timed(cmd, env):
    """(wall seconds, stdout, stderr) of a child command."""
    t0 = time.time()
    p = sh(cmd, env)
    return time.time() - t0, p.stdout, p.stderr


def peak_rss_mib(cmd, env) -> float:
    """Peak resident memory of the largest process of ``cmd`` (its workers included)."""
    p = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(p.pid, 0)
    if status != 0:
        sys.exit(f"{cmd[:4]} failed: {p.stderr.read().decode()[-3000:]}")
    return usage.ru_maxrss / 1024  # KiB on Linux


def write(path: Path, lines) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def train_model(data: Data, work: Path, args, env):
    """A bt_transformer_small src->tgt model (the demo's size) trained ``--updates`` updates."""
    sys.path.insert(0, str(ROOT))
    from fairseq_bt_plugin.text_processing import TextProcessor, train_sentencepiece

    raw, tok = work / "raw", work / "tok"
    raw.mkdir(parents=True, exist_ok=True)
    tok.mkdir(exist_ok=True)
    for lang, lines in data.train.items():
        write(raw / f"train.{lang}", lines)
    spm = train_sentencepiece([str(raw / f"train.{lang}") for lang in data.train],
                              str(work / "spm"), 1000)
    for lang, lines in data.train.items():
        write(tok / f"train.{lang}", map(TextProcessor(spm, lang).encode, lines))
    sh([sys.executable, "-m", "fairseq_cli.preprocess", "-s", data.src, "-t", data.tgt,
        "--trainpref", tok / "train", "--destdir", work / "bin", "--joined-dictionary",
        "--workers", "1"], env)
    sh([sys.executable, "-m", "fairseq_cli.train", work / "bin", "--user-dir", PLUGIN_DIR,
        "-s", data.src, "-t", data.tgt, "--arch", args.arch, "--optimizer", "adam", "--lr",
        "0.001", "--lr-scheduler", "inverse_sqrt", "--warmup-updates", "100", "--max-tokens",
        "4000", "--max-update", args.updates, "--save-dir", work / "ckpt",
        "--no-epoch-checkpoints", "--disable-validation", "--no-progress-bar", "--seed", "1",
        *(["--cpu"] if args.device == "cpu" else ["--fp16"])], env)
    return work / "ckpt" / "checkpoint_last.pt", work / "bin", spm


def backends():
    try:
        import ctranslate2  # noqa: F401

        return ["fairseq", "ctranslate2"]
    except ImportError:
        return ["fairseq"]


class Table(list):
    """The report's lines, printed and written to ``path`` (when given) as they come: a run
    stopped at a time limit keeps the figures measured so far."""

    def __init__(self, path=None):
        super().__init__()
        self.path = path

    def append(self, line):
        self.extend([line])

    def extend(self, lines):
        lines = list(lines)
        super().extend(lines)
        print("\n".join(lines), flush=True)
        if self.path:
            Path(self.path).write_text("\n".join(self) + "\n", encoding="utf-8")

    def __iadd__(self, lines):
        self.extend(lines)
        return self


class Runner:
    """The commands of one model: fairseq-generate and fairseq-bt-backtranslate per backend."""

    def __init__(self, args, ckpt, data_dir, spm, src, tgt, work: Path, env):
        self.args, self.ckpt, self.data_dir, self.spm = args, ckpt, Path(data_dir), spm
        self.src, self.tgt, self.work, self.env = src, tgt, work, env
        self.cpu = args.device == "cpu"

    def ours(self, inp: Path, out: Path, backend: str, *extra):
        """fairseq-bt-backtranslate; ``out`` emptied first (a re-run would resume, not decode)."""
        shutil.rmtree(out, ignore_errors=True)
        device = (["--cpu", "--workers", self.args.threads, "--ct2-inter-threads",
                   self.args.threads] if self.cpu else
                  ["--fp16"] if backend == "fairseq" else [])
        return [sys.executable, "-m", "fairseq_bt_plugin.generate", "--input", inp, "--path",
                self.ckpt, "--data", self.data_dir, "--spm-model", self.spm, "-s", self.src,
                "-t", self.tgt, "--output-dir", out, "--batch-size", self.args.batch_size,
                "--keep-identical", "--keep-duplicates", "--max-len-ratio", "0",
                "--max-output-tokens", "0", "--log-interval", "1e9", "--backend", backend,
                "--ct2-model-dir", self.work / "ct2_model", *device, *extra]

    def fairseq_generate(self, fg_bin: Path, *extra):
        return [sys.executable, "-m", "fairseq_cli.generate", fg_bin, "--user-dir", PLUGIN_DIR,
                "-s", self.src, "-t", self.tgt, "--path", self.ckpt, "--gen-subset", "test",
                "--batch-size", self.args.batch_size, "--post-process", "sentencepiece",
                "--seed", "1", *(["--cpu"] if self.cpu else ["--fp16"]), *extra]

    def binarize(self, lines) -> Path:
        """The lines as the source of a 'test' split for fairseq-generate (target: a copy)."""
        sys.path.insert(0, str(ROOT))
        from fairseq_bt_plugin.text_processing import TextProcessor

        tok = self.work / "fg_tok"
        tok.mkdir(exist_ok=True)
        pieces = list(map(TextProcessor(self.spm, self.src).encode, lines))
        write(tok / f"test.{self.src}", pieces)
        write(tok / f"test.{self.tgt}", pieces)
        dest = self.work / "fg_bin"
        shutil.rmtree(dest, ignore_errors=True)
        sh([sys.executable, "-m", "fairseq_cli.preprocess", "-s", self.src, "-t", self.tgt,
            "--testpref", tok / "test", "--destdir", dest, "--srcdict",
            self.data_dir / f"dict.{self.src}.txt", "--tgtdict",
            self.data_dir / f"dict.{self.tgt}.txt", "--workers", "1"], self.env)
        return dest


def log_run(mode, name, run, wall):
    print(f"  {mode}: {name}, run {run}: {wall:.2f} s", file=sys.stderr, flush=True)


def speed(runner: Runner, data: Data, args, table):
    work = runner.work
    lines = data.mono(args.lines)
    inp = write(work / "mono.txt", lines)
    fg_bin = runner.binarize(lines)
    names = ["fairseq-generate"] + [f"ours {b}" for b in backends()]
    if "ctranslate2" in backends():  # convert once, outside the timings
        wall, _, _ = timed(runner.ours(write(work / "one.txt", lines[:1]), work / "convert",
                                       "ctranslate2"), runner.env)
        summary = json.loads((work / "convert" / "bt.summary.json").read_text())
        table.append(f"CTranslate2 conversion: {summary['ct2_convert_seconds']} s "
                     f"(cached: later runs 0 s)")
    rows = []
    for mode, (ours_flags, fg_flags) in MODES.items():
        walls = {n: [] for n in names}
        rates = {n: [] for n in names}
        outs = {n: 0 for n in names}
        for run in range(1, args.repeats + 1):  # alternating
            wall, stdout, stderr = timed(runner.fairseq_generate(fg_bin, *LIMITS, *fg_flags),
                                         runner.env)
            m = re.search(r"Translated ([\d,]+) sentences .*?\(([\d.]+) sentences/s", stderr)
            walls[names[0]].append(wall)
            log_run(mode, names[0], run, wall)
            rates[names[0]].append(float(m.group(2)))
            outs[names[0]] = len(re.findall(r"^H-", stdout, re.M))
            for backend in backends():
                out = work / f"speed_{backend}"
                wall, _, _ = timed(runner.ours(inp, out, backend, *LIMITS, *ours_flags),
                                   runner.env)
                summary = json.loads((out / "bt.summary.json").read_text())
                walls[f"ours {backend}"].append(wall)
                log_run(mode, f"ours {backend}", run, wall)
                rates[f"ours {backend}"].append(summary["sentences_per_second"])
                outs[f"ours {backend}"] = summary["translated"]
        base_wall = statistics.median(walls[names[0]])
        base_rate = statistics.median(rates[names[0]])
        for n in names:
            wall, rate = statistics.median(walls[n]), statistics.median(rates[n])
            rows.append(f"| {mode} | {n} | {wall:.2f} | {base_wall / wall:.2f} | {rate:.1f} | "
                        f"{rate / base_rate:.2f} | {outs[n]}/{len(lines)} |")
    threads = f"{args.threads} thread(s)" if runner.cpu else "GPU"
    table += [f"\nspeed: {len(lines)} {data.name} lines, --batch-size {args.batch_size}, "
              f"{threads}, max length 1.2*src+10, median of {args.repeats} alternating runs",
              "| mode | command | wall s | x fairseq-generate | decode sent/s | "
              "x fairseq-generate | lines out |", "|---|---|---:|---:|---:|---:|---:|", *rows,
              "x > 1: faster than fairseq-generate. Decode sent/s excludes model loading "
              "(fairseq-generate: its own figure, pre-binarized input; ours: text processing "
              "and generation)."]


def quality(runner: Runner, data: Data, args, table):
    """BLEU of each backend's back-translation of the held-out set against its reference."""
    import sacrebleu

    src, ref = data.heldout[runner.src], data.heldout[runner.tgt]
    if args.quick:
        src, ref = src[:args.lines], ref[:args.lines]
    inp = write(runner.work / "heldout.txt", src)
    scores, hyps = {}, {}
    table.append(f"\nquality: back-translation of {len(src)} held-out {data.name} "
                 f"{runner.src} lines (beam 5), BLEU against the {runner.tgt} side")
    for backend in backends():
        out = runner.work / f"quality_{backend}"
        wall, _, _ = timed(runner.ours(inp, out, backend, "--mode", "beam", "--beam", "5"),
                           runner.env)
        hyps[backend] = (out / f"bt.{runner.tgt}").read_text(encoding="utf-8").splitlines()
        ok = len(hyps[backend]) == len(ref)
        scores[backend] = sacrebleu.corpus_bleu(hyps[backend], [ref]).score if ok else None
        table.append(f"- {backend}: BLEU {scores[backend]:.2f}, lines {len(hyps[backend])}/"
                     f"{len(ref)}, wall {wall:.1f} s" if ok else
                     f"- {backend}: {len(hyps[backend])} lines out of {len(ref)}: not scored")
    if None not in scores.values() and len(scores) == 2:
        diff = scores["ctranslate2"] - scores["fairseq"]
        agree = sacrebleu.corpus_bleu(hyps["ctranslate2"], [hyps["fairseq"]]).score
        table.append(f"- BLEU difference ctranslate2 - fairseq: {diff:+.2f} (goal: within "
                     f"0.3); BLEU of the ctranslate2 output against the fairseq output: "
                     f"{agree:.1f}")


def memory(runner: Runner, data: Data, args, table):
    sizes = (100, 400) if args.quick else (10_000, 100_000)
    table.append(f"\nmemory: peak RSS of the largest process (greedy, outputs <= 3 tokens, "
                 f"--chunk-size {args.chunk_size})")
    table += ["| backend | " + " | ".join(f"{n:,} lines MiB" for n in sizes) + " | ratio |",
              "|---|" + "---:|" * (len(sizes) + 1)]
    inputs = {n: write(runner.work / f"mono{n}.txt", data.mono(n)) for n in sizes}
    for backend in backends():
        peaks = []
        for n in sizes:
            cmd = runner.ours(inputs[n], runner.work / f"mem{n}", backend, "--mode", "greedy",
                              "--max-len-a", "0", "--max-len-b", "3", "--batch-size", "256",
                              "--chunk-size", args.chunk_size)
            peaks.append(peak_rss_mib(cmd, runner.env))
        table.append(f"| {backend} | " + " | ".join(f"{p:.1f}" for p in peaks)
                     + f" | {peaks[-1] / peaks[0]:.2f} |")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--path", help="reverse checkpoint (default: train one)")
    p.add_argument("--data", help="directory of its dictionaries (default: the checkpoint's)")
    p.add_argument("--spm-model", help="its sentencepiece model")
    p.add_argument("-s", "--source-lang", default="", help="its source language (default: en)")
    p.add_argument("-t", "--target-lang", default="",
                   help="its target language (default: de on Multi30K, fr on Tatoeba)")
    p.add_argument("--corpus", choices=["auto", "multi30k", "tatoeba"], default="auto",
                   help="auto: Multi30K when ../shared/data has it, else the Tatoeba slice")
    p.add_argument("--arch", default="bt_transformer_small", help="model trained without --path")
    p.add_argument("--updates", type=int, default=600, help="its training updates")
    p.add_argument("--lines", type=int, default=1000, help="input lines for the speed test")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--chunk-size", type=int, default=10000)
    p.add_argument("--threads", type=int, default=2,
                   help="CPU threads / processes of every tool (fairseq-generate: torch threads)")
    p.add_argument("--repeats", type=int, default=3, help="runs of each command (median)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--no-speed", action="store_true", help="skip the speed comparison")
    p.add_argument("--no-quality", action="store_true", help="skip the BLEU comparison")
    p.add_argument("--memory", action="store_true", help="peak RSS, 10k vs 100k lines")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 16 lines, one repeat, memory on 100 vs 400 lines in "
                   "chunks of 100 (without --path: a tiny model, 20 updates)")
    p.add_argument("--table", help="also write the table (markdown) to this file, line by "
                   "line as the figures come")
    p.add_argument("--workdir", help="keep files here (default: a temp dir)")
    args = p.parse_args()
    if args.quick:
        args.lines, args.repeats, args.chunk_size = 16, 1, 100
        args.updates, args.arch = 20, "bt_transformer_tiny"
    data = Data(args.corpus, args.source_lang, args.target_lang)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))  # fairseq may come from there
    load = os.getloadavg()
    table = Table(args.table)
    table.append(f"bench_generate.py on {args.device}, load average before: "
                 f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.path:
            if not args.spm_model:
                sys.exit("--spm-model is needed with --path")
            ckpt, data_dir, spm = args.path, args.data or os.path.dirname(args.path), args.spm_model
        else:
            t0 = time.time()
            ckpt, data_dir, spm = train_model(data, work / "model", args, env)
            table.append(f"trained {args.arch} {data.src}->{data.tgt} on {data.name} "
                         f"({args.updates} updates) in {time.time() - t0:.0f} s")
        runner = Runner(args, ckpt, data_dir, spm, data.src, data.tgt, work, env)
        if not args.no_speed:
            speed(runner, data, args, table)
        if not args.no_quality:
            quality(runner, data, args, table)
        if args.memory:
            memory(runner, data, args, table)
    load = os.getloadavg()
    table.append(f"\nload average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
