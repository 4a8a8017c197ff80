"""Bad input across the tools and tasks, one table (docs/robustness.md lists the outcomes).

Each case runs the tool in its own process and checks the exit status and the last line of
stderr: for our errors exactly one line ``TOOL: error: MESSAGE`` (exit 2, no traceback), the
message naming the file (and line) or flag. Then nothing is corrupted: the output folder,
seeded with earlier output, holds exactly what it held before (the generator's resume state
``*.work/`` aside). Inputs we accept (Windows line ends, over-long lines: skipped and
counted) exit 0 with line ends normalised. Failures that fairseq owns are marked ``FAIRSEQ``:
their outcome is recorded as it is (a traceback, exit 1); a known gap is ``xfail``.
"""
import shutil

import pytest

from helpers import preprocess, write_lines
from helpers.tool_runner import (BT, CONVERT, DN, EVALUATE, FAIRSEQ, GENERATE, INIT, PREPARE,
                                 params, run_case)

CASES = [  # id, tool, arguments, exit status, expected text in the last line of stderr
    # --- fairseq-bt-prepare: raw parallel text
    ("prepare-empty", "prepare", PREPARE + ["{in}/empty"], 2, "{in}/empty.{src}: empty file"),
    ("prepare-line-counts", "prepare", PREPARE + ["{in}/short"], 2,
     "{in}/short.{src} has 40 lines but {in}/short.{tgt} has 39"),
    ("prepare-utf8", "prepare", PREPARE + ["{in}/utf8"], 2, "{in}/utf8.{src}:41: invalid UTF-8"),
    ("prepare-nul", "prepare", PREPARE + ["{in}/nul"], 2, "{in}/nul.{src}:41: contains a NUL byte"),
    ("prepare-100k-line", "prepare", PREPARE + ["{in}/long", "--spm-model", "{spm}"], 0,
     '"too_long": 1'),
    ("prepare-crlf", "prepare", PREPARE + ["{in}/crlf", "--spm-model", "{spm}"], 0,
     '"train": 40'),
    ("prepare-all-too-long", "prepare", PREPARE + ["{in}/good", "--max-chars", "5"], 2,
     "{in}/good: no training pairs left"),
    ("prepare-spm-missing", "prepare", PREPARE + ["{in}/good", "--spm-model", "{in}/no.model"],
     2, "{in}/no.model: sentencepiece model not found"),
    ("prepare-vocab-0", "prepare", PREPARE + ["{in}/good", "--spm-vocab-size", "0"], 2,
     "--spm-vocab-size must be >= 1, got 0"),
    ("prepare-workers-0", "prepare", PREPARE + ["{in}/good", "--workers", "0"], 2,
     "--workers must be >= 1, got 0"),
    ("prepare-same-language", "prepare", PREPARE + ["{in}/good", "--target-lang", "{src}"], 2,
     "--source-lang and --target-lang are the same"),
    ("prepare-dest-under-file", "prepare", PREPARE + ["{in}/good", "--destdir", "{in}/good.{src}/x"],
     2, "{in}/good.{src}/x: Not a directory"),
    # --- fairseq-bt-backtranslate: monolingual text, checkpoint, flags
    ("generate-empty", "backtranslate", GENERATE + ["{in}/mono_empty.{tgt}"], 2,
     "{in}/mono_empty.{tgt}: empty file"),
    ("generate-utf8", "backtranslate", GENERATE + ["{in}/mono_utf8.{tgt}"], 2,
     "{in}/mono_utf8.{tgt}:21: invalid UTF-8 (use --skip-invalid"),
    ("generate-nul", "backtranslate", GENERATE + ["{in}/mono_nul.{tgt}"], 2,
     "{in}/mono_nul.{tgt}:21: contains a NUL byte (use --skip-invalid"),
    ("generate-100k-line", "backtranslate", GENERATE + ["{in}/mono_long.{tgt}"], 0,
     "'input_too_long': 1"),
    ("generate-crlf", "backtranslate", GENERATE + ["{in}/mono_crlf.{tgt}"], 0, "from 20 input lines"),
    ("generate-truncated-ckpt", "backtranslate", GENERATE + ["{in}/mono.{tgt}", "--path", "{in}/trunc.pt"],
     2, "{in}/trunc.pt: not a fairseq checkpoint, or truncated"),
    ("generate-text-as-ckpt", "backtranslate", GENERATE + ["{in}/mono.{tgt}", "--path", "{in}/text.pt"],
     2, "{in}/text.pt: not a fairseq checkpoint, or truncated"),
    ("generate-tensor-as-ckpt", "backtranslate",
     GENERATE + ["{in}/mono.{tgt}", "--path", "{in}/tensor.pt"], 2,
     "{in}/tensor.pt: not a fairseq checkpoint, or truncated"),
    ("generate-ckpt-vs-dict", "backtranslate", GENERATE + ["{in}/mono.{tgt}", "--data", "{in}/small"],
     2, "checkpoint does not match the dictionaries in {in}/small"),
    ("generate-spm-missing", "backtranslate",
     GENERATE + ["{in}/mono.{tgt}", "--spm-model", "{in}/no.model"], 2,
     "{in}/no.model: sentencepiece model not found"),
    ("generate-beam-negative", "backtranslate", GENERATE + ["{in}/mono.{tgt}", "--beam", "-2"], 2,
     "--beam must be >= 1, got -2"),
    ("generate-nbest-0", "backtranslate", GENERATE + ["{in}/mono.{tgt}", "--nbest", "0"], 2,
     "--nbest must be >= 1, got 0"),
    ("generate-shard-id", "backtranslate", GENERATE + ["{in}/mono.{tgt}", "--num-shards", "2",
                                                  "--shard-id", "2"], 2,
     "--shard-id must be in 0..1, got 2"),
    ("generate-shards-0", "backtranslate", GENERATE + ["{in}/mono.{tgt}", "--num-shards", "0"], 2,
     "--num-shards must be >= 1, got 0"),
    ("generate-ratio-negative", "backtranslate", GENERATE + ["{in}/mono.{tgt}", "--max-len-ratio", "-1"],
     2, "--max-len-ratio must be >= 0 (0: off), got -1.0"),
    ("generate-topk-0", "backtranslate", GENERATE + ["{in}/mono.{tgt}", "--mode", "sample",
                                                "--sampling-topk", "0"], 2,
     "--sampling-topk must be >= 1 (or -1: off), got 0"),
    ("generate-noise-1.5", "backtranslate", GENERATE + ["{in}/mono.{tgt}", "--mode", "noised_beam",
                                                   "--beam", "2", "--noise-word-dropout", "1.5"],
     2, "--noise-*: word_dropout must be in [0, 1), got 1.5"),
    ("generate-srcdict-missing", "backtranslate", GENERATE + ["{in}/mono.{tgt}", "--binarize-to",
                                                         "{out}/bin", "--srcdict", "{in}/no.txt"],
     2, "{in}/no.txt: dictionary not found (--srcdict/--tgtdict)"),
    ("generate-out-under-file", "backtranslate", GENERATE + ["{in}/mono.{tgt}", "--output-dir",
                                                        "{in}/mono.{tgt}/out"], 2,
     "{in}/mono.{tgt}/out: Not a directory"),
    # --- fairseq-bt-convert: fairseq-generate logs
    ("convert-empty", "convert", CONVERT + ["{in}/empty.log"], 2,
     "{in}/empty.log: no H-/D- lines"),
    ("convert-missing-ids", "convert", CONVERT + ["{in}/missing.log"], 2,
     "{in}/missing.log: 1 of 2 sentence ids have no source or hypothesis (ids 1)"),
    ("convert-utf8", "convert", CONVERT + ["{in}/utf8.log"], 2, "{in}/utf8.log:7: invalid UTF-8"),
    ("convert-nul", "convert", CONVERT + ["{in}/nul.log"], 2,
     "{in}/nul.log:1: contains a NUL byte"),
    ("convert-crlf", "convert", CONVERT + ["{in}/crlf.log"], 0, "2 pairs; 0 ids missing"),
    ("convert-nbest-0", "convert", CONVERT + ["{in}/gen.log", "--nbest", "0"], 2,
     "--nbest must be >= 1, got 0"),
    ("convert-out-under-file", "convert", CONVERT + ["{in}/gen.log", "--output-dir",
                                                    "{in}/gen.log/out"], 2,
     "{in}/gen.log/out: Not a directory"),
    # --- fairseq-bt-evaluate
    ("evaluate-empty", "evaluate", EVALUATE + ["{in}/mono_empty.{tgt}", "--reference",
                                               "{in}/mono_empty.{tgt}"], 2,
     "{in}/mono_empty.{tgt}: empty file"),
    ("evaluate-line-counts", "evaluate", EVALUATE + ["{in}/mono.{tgt}", "--reference",
                                                     "{in}/ref_short.{src}"], 2,
     "{in}/mono.{tgt} has 20 lines but {in}/ref_short.{src} has 19"),
    ("evaluate-utf8", "evaluate", EVALUATE + ["{in}/mono_utf8.{tgt}"], 2,
     "{in}/mono_utf8.{tgt}:21: invalid UTF-8"),
    ("evaluate-nul", "evaluate", EVALUATE + ["{in}/mono_nul.{tgt}"], 2,
     "{in}/mono_nul.{tgt}:21: contains a NUL byte"),
    ("evaluate-100k-line", "evaluate", EVALUATE + ["{in}/mono_long.{tgt}", "--reference",
                                                   "{in}/ref21.{src}"], 0, "BLEU"),
    ("evaluate-crlf", "evaluate", EVALUATE + ["{in}/mono_crlf.{tgt}"], 0, "(20 sentences;"),
    ("evaluate-beam-0", "evaluate", EVALUATE + ["{in}/mono.{tgt}", "--beam", "0"], 2,
     "--beam must be >= 1, got 0"),
    ("evaluate-max-tokens-0", "evaluate", EVALUATE + ["{in}/mono.{tgt}", "--max-tokens", "0"], 2,
     "--max-tokens must be >= 1"),
    ("evaluate-truncated-ckpt", "evaluate", EVALUATE + ["{in}/mono.{tgt}", "--path", "{in}/trunc.pt"],
     2, "{in}/trunc.pt: not a fairseq checkpoint, or truncated"),
    ("evaluate-ckpt-vs-dict", "evaluate", EVALUATE + ["{in}/mono.{tgt}", "--data-dir", "{in}/small"],
     2, "checkpoint does not match the dictionaries in {in}/small"),
    ("evaluate-out-under-file", "evaluate", EVALUATE + ["{in}/mono.{tgt}", "--output-prefix",
                                                        "{in}/mono.{tgt}/x/sys"], 2,
     "{in}/mono.{tgt}/x: Not a directory"),
    # --- fairseq-bt-train --task bt_translation
    ("bt-upsample-0", "train", BT + ["{bin}", "--upsample-primary", "0"], 2,
     "--upsample-primary must be >= 1, got 0"),
    ("bt-fraction-1.5", "train", BT + ["{bin}", "--bt-synthetic-fraction", "1.5"], 2,
     "--bt-synthetic-fraction must be in (0, 1), got 1.5"),
    ("bt-noise-1.5", "train", BT + ["{bin}", "--bt-noise-word-dropout", "1.5"], 2,
     "word_dropout must be in [0, 1), got 1.5"),
    ("bt-data-other-dict", "train", BT + ["{bin}", "--bt-data", "{in}/syn_other"], 2,
     "{in}/syn_other/dict.{src}.txt: differs from the bitext dictionary"),
    ("bt-data-other-dict-no-dict-files", "train",
     BT + ["{bin}", "--bt-data", "{in}/syn_nodict", "--no-save"], 2,
     "{in}/syn_nodict/dict.{src}.txt: not found; a synthetic corpus from --bt-data must come"),
    ("bt-data-dir-missing", "train", BT + ["{in}/nodata"], 2,
     "{in}/nodata/dict.{src}.txt: No such file or directory"),
    ("bt-restore-truncated", "train", BT + ["{bin}", "--restore-file", "{in}/trunc.pt"], 2,
     "{in}/trunc.pt: not a fairseq checkpoint, or truncated"),
    ("bt-restore-text", "train", BT + ["{bin}", "--restore-file", "{in}/text.pt"], 2,
     "{in}/text.pt: not a fairseq checkpoint, or truncated"),
    ("bt-restore-other-dict", "train", BT + ["{in}/small", "--restore-file", "{model}"],
     FAIRSEQ,
     "Exception: Cannot load model parameters from checkpoint {model}"),
    ("bt-restore-other-dict-same-size", "train",
     BT + ["{in}/syn_other", "--restore-file", "{model}", "--no-save"], 2, "dictionary"),
    ("bt-init-from-tensor", "train", BT + ["{bin}", "--init-from", "{in}/tensor.pt"], 2,
     "{in}/tensor.pt: not a fairseq checkpoint, or truncated"),
    ("bt-save-dir-under-file", "train", BT + ["{bin}", "--save-dir", "{in}/text.pt/ck"], 2,
     "{in}/text.pt/ck: Not a directory"),
    ("bt-max-tokens-0", "train", BT + ["{bin}", "--max-tokens", "0"], FAIRSEQ, "Error"),
    # --- fairseq-bt-train --task bt_denoising
    ("dn-no-dictionary", "train", DN + ["{in}/nodata_dir"], 2,
     "{in}/nodata_dir: found dictionaries none; name the language(s) with --mono-langs"),
    ("dn-split-missing", "train", DN + ["{in}/dict_src", "--train-subset", "nope"], 2,
     "bt_denoising: no nope data for {src}: tried {in}/dict_src/nope.{src}-None.{src}.{{bin,idx}}"),
    ("dn-mixed-dicts", "train", DN + ["{in}/small", "--mono-langs", "{tgt},{src}"], 2,
     "{in}/small/dict.{src}.txt: differs from dict.{tgt}.txt"),
    ("dn-noise-1.5", "train", DN + ["{in}/dict_src", "--noise-word-blank", "1.5"], 2,
     "word_blank must be in [0, 1), got 1.5"),
    ("dn-init-from-truncated", "train", DN + ["{in}/dict_src", "--init-from", "{in}/trunc.pt"], 2,
     "{in}/trunc.pt: not a fairseq checkpoint, or truncated"),
    # --- fairseq-bt-init-checkpoint
    ("init-truncated", "init-checkpoint", ["{bin}"] + INIT + ["{in}/trunc.pt"], 2,
     "{in}/trunc.pt: not a fairseq checkpoint, or truncated"),
    ("init-text", "init-checkpoint", ["{bin}"] + INIT + ["{in}/text.pt"], 2,
     "{in}/text.pt: not a fairseq checkpoint, or truncated"),
    ("init-data-missing", "init-checkpoint", ["{in}/nodata"] + INIT + ["{model}"], 2,
     "{in}/nodata/dict.{src}.txt: No such file or directory"),
    ("init-freeze-negative", "init-checkpoint",
     ["{bin}"] + INIT + ["{model}", "--init-freeze-updates", "-3"], 2,
     "--init-freeze-updates must be >= 0, got -3"),
    ("init-out-under-file", "init-checkpoint",
     ["{bin}"] + INIT + ["{model}", "--output", "{in}/text.pt/child.pt"], 2,
     "{in}/text.pt: File exists"),
]


@pytest.fixture(scope="module")
def bad(corpus, reverse_model, tmp_path_factory):
    """The bad inputs, beside good ones of the same shape."""
    d = tmp_path_factory.mktemp("bad_input")
    src, tgt = corpus.src, corpus.tgt
    good = {lang: (corpus.raw / f"train.{lang}").read_text(encoding="utf-8").splitlines()[:40]
            for lang in (src, tgt)}
    mono = (corpus.raw / f"test.{tgt}").read_text(encoding="utf-8").splitlines()[:20]
    ref = (corpus.raw / f"test.{src}").read_text(encoding="utf-8").splitlines()[:20]

    def text(name, lines, extra=b"", crlf=False):
        body = "".join(x + ("\r\n" if crlf else "\n") for x in lines).encode("utf-8")
        (d / name).write_bytes(body + extra)

    for lang in (src, tgt):
        text(f"good.{lang}", good[lang])
        text(f"empty.{lang}", [])
        text(f"short.{lang}", good[lang][:39] if lang == tgt else good[lang])
        text(f"crlf.{lang}", good[lang], crlf=True)
        last = b"A dog.\n"  # the bad line is on the source side, line 41
        text(f"utf8.{lang}", good[lang], b"Un \xff\xfe chien.\n" if lang == src else last)
        text(f"nul.{lang}", good[lang], b"Un\x00chien.\n" if lang == src else last)
        text(f"long.{lang}", good[lang], b"x" * 100_000 + b"\n" if lang == src else last)
    text(f"mono.{tgt}", mono)
    text(f"mono_empty.{tgt}", [])
    text(f"mono_crlf.{tgt}", mono, crlf=True)
    text(f"mono_utf8.{tgt}", mono, b"A \xff dog.\n")
    text(f"mono_nul.{tgt}", mono, b"A\x00dog.\n")
    text(f"mono_long.{tgt}", mono, b"x " * 50_000 + b"\n")
    text(f"ref.{src}", ref)
    text(f"ref_short.{src}", ref[:19])
    text(f"ref21.{src}", ref + ["Un chien."])
    log = ["S-0\tA dog .", "H-0\t-0.5\t\u2581Un \u2581chien .", "D-0\t-0.5\tUn chien.",
           "S-1\tA cat .", "H-1\t-0.7\t\u2581Un \u2581chat .", "D-1\t-0.7\tUn chat."]
    text("gen.log", log)
    text("crlf.log", log, crlf=True)
    text("empty.log", [])
    text("missing.log", log[:4])
    text("utf8.log", log, b"S-2\tA \xff bird\nH-2\t-0.1\t\xff\n")
    (d / "nul.log").write_bytes(b"S-0\tA\x00dog .\nH-0\t-0.5\tUn chien .\n")
    # checkpoints: truncated, a text file, a torch file that is no checkpoint
    (d / "trunc.pt").write_bytes(reverse_model.read_bytes()[:3000])
    (d / "text.pt").write_text("not a checkpoint\n")
    import torch

    torch.save(torch.zeros(3), d / "tensor.pt")
    # dictionaries: one shorter than the model's; the translation dictionary alone
    (d / "small").mkdir()
    shutil.copy(corpus.bin / f"dict.{tgt}.txt", d / "small" / f"dict.{tgt}.txt")
    entries = (corpus.bin / f"dict.{src}.txt").read_text(encoding="utf-8").splitlines()
    write_lines(d / "small" / f"dict.{src}.txt", entries[:-10])
    (d / "dict_src").mkdir()
    shutil.copy(corpus.bin / f"dict.{src}.txt", d / "dict_src" / f"dict.{src}.txt")
    (d / "nodata_dir").mkdir()
    # synthetic data binarized with another dictionary (its own), with and without dict files
    preprocess(d / "syn_other", corpus.tok / "syn")
    shutil.copytree(d / "syn_other", d / "syn_nodict",
                    ignore=shutil.ignore_patterns("dict.*", "preprocess.log"))
    return d


KNOWN_GAPS = {  # case id -> what happens instead (docs/robustness.md)
    "bt-restore-other-dict-same-size": "fairseq restores a checkpoint trained with another "
    "dictionary of the same size without a word (a checkpoint stores no dictionary)",
}


@pytest.mark.parametrize("tool,args,code,expected", params(CASES, KNOWN_GAPS))
def test_bad_input(tool, args, code, expected, bad, corpus, reverse_model, tmp_path):
    values = {"in": bad, "out": tmp_path / "out", "model": reverse_model, "bin": corpus.bin,
              "spm": corpus.spm}
    run_case(tool, args, code, expected, values, tmp_path / "logs")
