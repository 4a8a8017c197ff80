"""End to end with real fairseq: train bt_translation (tag, noise, weights), resume, generate,
score with sacrebleu."""
import math
import re
import shutil
import sys
from pathlib import Path

import sacrebleu

from fairseq_bt_plugin.text_processing import TextProcessor

from helpers import N_TEST, PLUGIN_DIR, SRC, TGT, TINY_MODEL, run

BIN = Path(sys.executable).parent


def test_train_resume_generate_score(corpus, tmp_path):
    save = tmp_path / "ckpt"
    common = [str(corpus.bin), "-s", corpus.src, "-t", corpus.tgt, "--task", "bt_translation",
              "--bt-data", str(corpus.syn), "--bt-tag", "<BT>", "--bt-weighted",
              "--bt-noise-word-dropout", "0.1", "--bt-noise-word-blank", "0.1",
              "--bt-noise-shuffle-distance", "3", "--upsample-primary", "2",
              "--criterion", "bt_label_smoothed_cross_entropy", "--label-smoothing", "0.1",
              "--save-dir", str(save), "--no-epoch-checkpoints", "--log-interval", "5",
              "--num-workers", "1"] + TINY_MODEL
    out = run([str(BIN / "fairseq-bt-train")] + common + ["--max-update", "12"])
    log = out.stdout + out.stderr
    assert re.search(r"loss_bitext=[\d.]+", log) and re.search(r"loss_synth=[\d.]+", log)
    assert re.search(r"nsentences_synth=\d+", log)
    assert "1000 bitext + 300 synthetic pairs" in log
    assert (save / "checkpoint_last.pt").exists()
    shutil.copy(save / "checkpoint_last.pt", tmp_path / "after_12.pt")

    # plain fairseq-train with --user-dir resumes from checkpoint_last.pt (torch>=2.6 load)
    out = run([str(BIN / "fairseq-train"), "--user-dir", PLUGIN_DIR] + common + ["--max-update", "16"])
    log = out.stdout + out.stderr
    assert "Loaded checkpoint" in log and "@ 12 updates" in log and "num_updates 16" in log

    # plain fairseq-generate with the plugin: every test sentence translated
    generate = [str(BIN / "fairseq-generate"), str(corpus.bin), "--user-dir", PLUGIN_DIR,
                "--task", "bt_translation", "--bt-tag", "<BT>", "-s", corpus.src,
                "-t", corpus.tgt, "--path", str(save / "checkpoint_last.pt"),
                "--gen-subset", "test", "--beam", "2", "--batch-size", "8", "--max-len-a", "1.2",
                "--max-len-b", "10", "--cpu"]  # 50 = 6 x 8 + 2
    hyps = hypotheses(run(generate).stdout)
    assert sorted(hyps) == list(range(N_TEST))

    # the same path on the references (--score-reference): decoding and scoring them gives
    # the references back, in order (measured: BLEU 99.8; shifted by one line 0.9); and the
    # model resumed to 16 updates scores them better than the model after 12 did (measured:
    # mean log-probability per token -7.99 vs -8.21). 16 updates cannot translate yet (BLEU 0)
    refs = (corpus.raw / f"test.{corpus.tgt}").read_text(encoding="utf-8").splitlines()
    scored = hypotheses(run(generate + ["--score-reference"]).stdout)
    before = hypotheses(run(generate + ["--score-reference", "--path",
                                        str(tmp_path / "after_12.pt")]).stdout)
    proc = TextProcessor(corpus.spm, corpus.tgt)

    def bleu(lines, order=range(N_TEST)):
        return sacrebleu.corpus_bleu([proc.decode(lines[i][1]) for i in order], [refs]).score

    def mean_score(lines):
        return sum(score for score, _ in lines.values()) / len(lines)

    shifted = [(i + 1) % N_TEST for i in range(N_TEST)]
    assert bleu(scored) >= 90 and bleu(scored, shifted) < 10
    assert mean_score(scored) > mean_score(before) + 0.1


def hypotheses(stdout: str):
    """``{sentence id: (score, text)}`` from the H- lines of fairseq-generate."""
    out = {}
    for line in stdout.splitlines():
        if line.startswith("H-"):
            sid, score, text = line.split("\t")
            out[int(sid[2:])] = (float(score), text)
    return out
