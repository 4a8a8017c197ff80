"""Shared helpers for the fairseq-bt-backtranslate and fairseq-bt-evaluate tests (real
decoding with the tiny reverse model)."""
import sys
from pathlib import Path
from typing import List

from helpers import SRC, TGT, preprocess, write_lines

# Short outputs keep the untrained tiny model fast.
# One torch thread: the test machine's 2 cores are shared (7x faster than 2 contending threads).
FAST = ["--max-len-a", "1.2", "--max-len-b", "5", "--log-interval", "1000", "--cpu-threads", "1"]


def mono_lines(corpus, n: int, skip: int = 0) -> List[str]:
    """TGT (the reverse model's source) monolingual lines: the 'syn' slice, repeated."""
    lines = (corpus.raw / f"syn.{corpus.tgt}").read_text(encoding="utf-8").splitlines()
    return [lines[(skip + i) % len(lines)] for i in range(n)]


def make_input(corpus, path: Path, n: int, skip: int = 0) -> Path:
    write_lines(path, mono_lines(corpus, n, skip))
    return path


def generate_args(corpus, model, inputs, out, *extra) -> List[str]:
    files = inputs if isinstance(inputs, list) else [inputs]
    return ["--input", ",".join(str(p) for p in files), "--path", str(model), "--data",
            str(corpus.bin), "--spm-model", str(corpus.spm), "-s", corpus.tgt, "-t", corpus.src,
            "--output-dir", str(out), "--cpu"] + FAST + [str(x) for x in extra]


def generate_cmd(corpus, model, inputs, out, *extra) -> List[str]:
    return [sys.executable, "-m", "fairseq_bt_plugin.generate"] + generate_args(
        corpus, model, inputs, out, *extra)


def evaluate_args(corpus, model, inp, ref, prefix, *extra) -> List[str]:
    """fairseq-bt-evaluate's arguments: ``inp`` decoded by ``model`` and scored against ``ref``."""
    return ["--path", str(model), "--data-dir", str(corpus.bin), "--spm-model", str(corpus.spm),
            "--source-lang", corpus.tgt, "--target-lang", corpus.src, "--input", str(inp),
            "--reference", str(ref), "--output-prefix", str(prefix), "--cpu",
            *[str(x) for x in extra]]


def run_generate(corpus, model, inputs, out, *extra):
    """Run the generator in this process; returns the summary."""
    import torch

    from fairseq_bt_plugin.generate.cli import generate
    from fairseq_bt_plugin.generate.config import BTGenerateConfig, parse

    threads = torch.get_num_threads()
    try:
        return generate(parse(BTGenerateConfig, generate_args(corpus, model, inputs, out, *extra),
                              "fairseq-bt-backtranslate", ""))
    finally:
        torch.set_num_threads(threads)


def outputs(out: Path, prefix: str = "bt"):
    """(synthetic SRC lines, original TGT lines, scores lines, weights lines) of a run."""
    read = lambda s: (out / f"{prefix}.{s}").read_text(encoding="utf-8").splitlines()  # noqa
    return read(SRC), read(TGT), read("scores"), read("weights")


def score_rows(out: Path, prefix: str = "bt"):
    """``PREFIX.scores`` as (input line, log p, average log p per token, weight) tuples."""
    rows = []
    for line in (out / f"{prefix}.scores").read_text(encoding="utf-8").splitlines():
        i, logprob, average, weight = line.split("\t")
        rows.append((int(i), float(logprob), float(average), float(weight)))
    return rows


def weight_sums(out: Path, prefix: str = "bt"):
    """Input line -> sum of the weights of its kept pairs."""
    sums = {}
    for i, _, _, w in score_rows(out, prefix):
        sums[i] = sums.get(i, 0.0) + w
    return sums


__all__ = ["FAST", "score_rows", "weight_sums", "forced_log_probs", "mono_lines", "make_input",
           "generate_args", "generate_cmd", "run_generate", "outputs", "binarized_pairs",
           "assert_binarized_is_text", "forward_vocabulary"]


def binarized_pairs(bdir: Path, corpus):
    """Every pair of a ``--binarize-to`` corpus as (synthetic ids, original ids) lists."""
    from fairseq.data import data_utils

    base = bdir / f"train.{corpus.src}-{corpus.tgt}"
    sides = [data_utils.load_indexed_dataset(f"{base}.{lang}", None, "mmap")
             for lang in (corpus.src, corpus.tgt)]
    assert len(sides[0]) == len(sides[1])
    return [(sides[0][i].tolist(), sides[1][i].tolist()) for i in range(len(sides[0]))]


def assert_binarized_is_text(bdir: Path, out: Path, corpus, prefix: str = "bt"):
    """The binarized corpus holds exactly the text files' pairs, both sides, in order: each
    line encoded with the sentencepiece model and the dictionary equals the stored ids."""
    from fairseq.data import Dictionary

    from fairseq_bt_plugin.text_processing import TextProcessor

    pairs = binarized_pairs(bdir, corpus)
    syn, orig, _, _ = outputs(out, prefix)
    assert len(pairs) == len(syn) == len(orig)
    for side, (lang, lines) in enumerate(((corpus.src, syn), (corpus.tgt, orig))):
        d = Dictionary.load(str(bdir / f"dict.{lang}.txt"))
        tp = TextProcessor(str(corpus.spm), lang)
        for i, line in enumerate(lines):
            ids = d.encode_line(tp.encode(line), add_if_not_exist=False).tolist()
            assert pairs[i][side] == ids, (lang, i, line)


def forced_log_probs(corpus, model_path, bdir: Path, forward: bool = False):
    """log p(synthetic | original) of every pair of a ``--binarize-to`` corpus, each scored
    alone by forced decoding with the reverse model (no batch, no padding); ``forward``:
    log p(original | synthetic) with a forward model."""
    import torch
    from fairseq import checkpoint_utils
    from fairseq.data import data_utils

    syn_lang, orig_lang = corpus.src, corpus.tgt  # the reverse model translates tgt -> src
    (model,), _, _ = checkpoint_utils.load_model_ensemble_and_task(
        [str(model_path)], arg_overrides={"data": str(corpus.bin)})
    model.eval()
    base = bdir / f"train.{syn_lang}-{orig_lang}"
    syn = data_utils.load_indexed_dataset(f"{base}.{syn_lang}", None, "mmap")
    orig = data_utils.load_indexed_dataset(f"{base}.{orig_lang}", None, "mmap")
    eos = model.decoder.dictionary.eos()
    out = []
    with torch.no_grad():
        for i in range(len(syn)):
            src, tgt = orig[i].long().unsqueeze(0), syn[i].long()
            if forward:
                src, tgt = syn[i].long().unsqueeze(0), orig[i].long()
            prev = torch.cat([torch.tensor([eos]), tgt[:-1]]).unsqueeze(0)
            net = model(src_tokens=src, src_lengths=torch.tensor([src.size(1)]),
                        prev_output_tokens=prev)
            lprobs = model.get_normalized_probs(net, log_probs=True)[0]
            out.append(float(lprobs.gather(1, tgt.unsqueeze(1)).sum()))
    return out


def forward_vocabulary(corpus, root):
    """Another sentencepiece model (trained on other lines) and the joint dictionary made with
    it: a forward model's vocabulary that is not the reverse model's."""
    from fairseq_bt_plugin.text_processing import TextProcessor, train_sentencepiece

    raw = [corpus.raw / f"valid.{lang}" for lang in (SRC, TGT)]
    root.mkdir()
    spm = train_sentencepiece([str(p) for p in raw], str(root / "spm"), 200)
    tok = root / "tok"
    tok.mkdir()
    for lang, path in zip((SRC, TGT), raw):
        tp = TextProcessor(spm, lang)
        write_lines(tok / f"train.{lang}", [tp.encode(x) for x in
                                            path.read_text(encoding="utf-8").splitlines()])
    preprocess(root / "bin", tok / "train")
    return spm, root / "bin"
