"""``fairseq-bt-evaluate``: decodes with the same translator as ``fairseq-bt-backtranslate``."""
import json

import pytest

from fairseq_bt_plugin.evaluate import main as evaluate_main

from helpers import write_lines
from helpers.generate import evaluate_args, make_input, mono_lines, run_generate, score_rows


def test_defaults():
    """Evaluate's own decoding defaults, stated once in its config (the rest are shared)."""
    from fairseq_bt_plugin.evaluate import EvaluateConfig
    from fairseq_bt_plugin.generate.config import BTGenerateConfig

    cfg, gen = EvaluateConfig(), BTGenerateConfig()
    assert (cfg.beam, cfg.lenpen, cfg.max_len_a, cfg.max_len_b) == (5, 1.0, 1.5, 10)
    assert (gen.beam, gen.lenpen, gen.max_len_a, gen.max_len_b) == (5, 1.0, 0.0, 200)
    for name in ("beam", "lenpen", "max_tokens", "batch_size", "cpu", "fp16", "backend",
                 "data_dir", "spm_model", "path"):
        assert EvaluateConfig.__dataclass_fields__[name].metadata["help"] == \
            BTGenerateConfig.__dataclass_fields__[name].metadata["help"], name


def test_hypotheses_are_the_generators_beam_output(corpus, reverse_model, tmp_path):
    """Every line of PREFIX.hyp is the generator's beam output for that line (same model,
    beam, lenpen, output length limit and batches: fairseq's length limit counts the padded
    source; the generator's filters off)."""
    n = 14
    inp = make_input(corpus, tmp_path / "test.txt", n)
    ref = tmp_path / "ref.txt"
    write_lines(ref, mono_lines(corpus, n, skip=40))
    evaluate_main(evaluate_args(corpus, reverse_model, inp, ref, tmp_path / "sys", "--beam",
                                "3", "--lenpen", "0.5", "--max-tokens", "60"))
    hyps = (tmp_path / "sys.hyp").read_text(encoding="utf-8").splitlines()
    assert len(hyps) == n and json.loads((tmp_path / "sys.json").read_text())["beam"] == 3
    run_generate(corpus, reverse_model, inp, tmp_path / "bt", "--mode", "beam", "--beam", "3",
                 "--lenpen", "0.5", "--max-len-a", "1.5", "--max-len-b", "10", "--max-tokens", "60",
                 "--max-len-ratio", "0", "--max-output-tokens", "0", "--keep-identical",
                 "--keep-duplicates")
    synthetic = (tmp_path / "bt" / f"bt.{corpus.src}").read_text(encoding="utf-8").splitlines()
    by_line = {row[0]: s for row, s in zip(score_rows(tmp_path / "bt"), synthetic)}
    assert len(by_line) >= n - 1  # the generator drops only empty outputs here
    assert hyps == [by_line.get(i, "") for i in range(n)]


def test_ctranslate2_backend(corpus, reverse_model, tmp_path):
    """``--backend ctranslate2``: the generator's CTranslate2 translator, its model converted
    once into OUTPUT_PREFIX.ct2_model; greedy text as fairseq's (up to rare ties)."""
    pytest.importorskip("ctranslate2")
    n = 16
    inp = make_input(corpus, tmp_path / "test.txt", n)
    ref = tmp_path / "ref.txt"
    write_lines(ref, mono_lines(corpus, n, skip=40))
    hyps = {}
    for backend in ("fairseq", "ctranslate2"):
        evaluate_main(evaluate_args(corpus, reverse_model, inp, ref, tmp_path / backend,
                                    "--beam", "1", "--backend", backend))
        hyps[backend] = (tmp_path / f"{backend}.hyp").read_text(encoding="utf-8").splitlines()
    assert (tmp_path / "ctranslate2.ct2_model" / "model.bin").exists()
    assert not (tmp_path / "fairseq.ct2_model").exists()
    assert len(hyps["ctranslate2"]) == n
    assert sum(a == b for a, b in zip(hyps["fairseq"], hyps["ctranslate2"])) >= n - 2


def test_progress_lines_feed_the_pipelines_status_line(corpus, reverse_model, tmp_path, capsys):
    """--log-interval: 'N of M sentences translated, R sentences/s' on stderr, the last with
    every sentence; none by default; the pipeline's status line (fairseq_bt_plugin.stage_runner)
    turns them into sentence N/M, sentences/s and time left."""
    from fairseq_bt_plugin.stage_runner import TrainingLog

    n = 14
    inp = make_input(corpus, tmp_path / "test.txt", n)
    ref = tmp_path / "ref.txt"
    write_lines(ref, mono_lines(corpus, n, skip=40))
    evaluate_main(evaluate_args(corpus, reverse_model, inp, ref, tmp_path / "quiet"))
    assert "sentences translated" not in capsys.readouterr().err
    evaluate_main(evaluate_args(corpus, reverse_model, inp, ref, tmp_path / "sys",
                                "--max-tokens", "60", "--log-interval", "1e-9"))
    lines = [x for x in capsys.readouterr().err.splitlines() if "sentences translated" in x]
    assert len(lines) > 1 and lines[-1].startswith(f"fairseq-bt-evaluate: {n} of {n} sentences")
    log = TrainingLog()
    log.feed("fairseq-bt-evaluate: 10 of 40 sentences translated, 5.0 sentences/s\n", 0.0)
    assert log.describe() == ["sentence 10/40 (25%)"] and log.tail() == ["5.0 sentences/s"]
    assert log.seconds_left() == 6.0
