"""End to end with real fairseq: train bt_translation (tag, noise, weights), resume, generate,
score with sacrebleu."""
import re
import sys
from pathlib import Path

import sacrebleu

from conftest import N_TEST, PLUGIN_DIR, SRC, TGT, TINY_MODEL, run
from fairseq_bt_plugin.text_processing import TextProcessor

BIN = Path(sys.executable).parent


def test_train_resume_generate_score(corpus, tmp_path):
    save = tmp_path / "ckpt"
    common = [str(corpus.bin), "-s", SRC, "-t", TGT, "--task", "bt_translation",
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

    # plain fairseq-train with --user-dir resumes from checkpoint_last.pt (torch>=2.6 load)
    out = run([str(BIN / "fairseq-train"), "--user-dir", PLUGIN_DIR] + common + ["--max-update", "16"])
    log = out.stdout + out.stderr
    assert "Loaded checkpoint" in log and "@ 12 updates" in log and "num_updates 16" in log

    # plain fairseq-generate with the plugin: every test sentence translated
    gen = run([str(BIN / "fairseq-generate"), str(corpus.bin), "--user-dir", PLUGIN_DIR,
               "--task", "bt_translation", "--bt-tag", "<BT>", "-s", SRC, "-t", TGT,
               "--path", str(save / "checkpoint_last.pt"), "--gen-subset", "test",
               "--beam", "2", "--batch-size", "8", "--max-len-a", "1.2", "--max-len-b", "10", "--cpu"])  # 50 = 6 x 8 + 2
    hyps = {}
    for line in gen.stdout.splitlines():
        if line.startswith("H-"):
            sid, _, text = line.split("\t")
            hyps[int(sid[2:])] = text
    assert sorted(hyps) == list(range(N_TEST))
    proc = TextProcessor(corpus.spm, TGT)
    sys_out = [proc.decode(hyps[i]) for i in range(N_TEST)]
    refs = (corpus.raw / f"test.{TGT}").read_text(encoding="utf-8").splitlines()
    bleu = sacrebleu.corpus_bleu(sys_out, [refs])
    assert 0.0 <= bleu.score <= 100.0 and len(refs) == N_TEST
