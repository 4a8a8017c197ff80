"""Ensembles: ``--path a.pt:b.pt`` in ``fairseq-bt-backtranslate`` and ``fairseq-bt-evaluate``
(fairseq's convention, one ``SequenceGenerator`` over the model list)."""
import json

import pytest

from helpers import N_TRAIN, preprocess, train_tiny, write_lines
from helpers.generate import (evaluate_args, make_input, mono_lines, outputs, run_generate,
                              score_rows)
from helpers.tool_runner import EVALUATE, GENERATE, run_case

#: every output kept (no filter): outputs line up with the input lines
KEEP_ALL = ["--beam", "2", "--max-len-ratio", "0", "--keep-identical", "--keep-duplicates"]


@pytest.fixture(scope="module")
def other_reverse_model(corpus, tmp_path_factory):
    """A second tiny TGT->SRC model: the reverse model's recipe with another seed and fewer
    updates (same dictionaries)."""
    return train_tiny(corpus.bin, tmp_path_factory.mktemp("reverse2"),
                      ["--lr", "0.005", "--seed", "2"], updates=20, src=corpus.tgt,
                      tgt=corpus.src)


def evaluate(corpus, path, inp, ref, prefix):
    from fairseq_bt_plugin.evaluate import main

    main(evaluate_args(corpus, path, inp, ref, prefix, "--beam", "2", "--cpu-threads", "1"))
    return prefix.with_suffix(".hyp").read_text(encoding="utf-8").splitlines()


def test_a_model_with_itself_is_the_model(corpus, reverse_model, tmp_path):
    """An ensemble of one model twice averages equal probabilities: the same outputs, and
    scores equal to the model's own up to float rounding."""
    inp = make_input(corpus, tmp_path / "mono.txt", 24)
    alone = run_generate(corpus, reverse_model, inp, tmp_path / "alone", *KEEP_ALL)
    twice = run_generate(corpus, f"{reverse_model}:{reverse_model}", inp, tmp_path / "twice",
                         *KEEP_ALL)
    assert outputs(tmp_path / "twice")[:2] == outputs(tmp_path / "alone")[:2]
    assert alone["output_pairs"] == twice["output_pairs"] > 10
    for a, b in zip(score_rows(tmp_path / "alone"), score_rows(tmp_path / "twice")):
        assert a[0] == b[0] and a[1] == pytest.approx(b[1], abs=1e-4)
    assert twice["model"] == f"{reverse_model}:{reverse_model}"


def test_two_models_decode_together(corpus, reverse_model, other_reverse_model, tmp_path):
    """Two different models: the ensemble's outputs and their scores (log-probabilities of
    the averaged distribution) differ from each model's; evaluate's JSON names both
    checkpoints."""
    n = 30
    inp = make_input(corpus, tmp_path / "test.txt", n)
    decoded = {}
    for name, path in (("a", reverse_model), ("b", other_reverse_model),
                       ("ab", f"{reverse_model}:{other_reverse_model}")):
        run_generate(corpus, path, inp, tmp_path / name, *KEEP_ALL)
        decoded[name] = list(zip(outputs(tmp_path / name)[0],
                                 [round(r[1], 3) for r in score_rows(tmp_path / name)]))
    assert len(decoded["ab"]) == n and decoded["ab"] != decoded["a"]
    assert decoded["ab"] != decoded["b"]
    ref = tmp_path / "ref.txt"
    write_lines(ref, mono_lines(corpus, n, skip=40))
    evaluate(corpus, f"{reverse_model}:{other_reverse_model}", inp, ref, tmp_path / "eval")
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["checkpoint"] == f"{reverse_model}:{other_reverse_model}"
    assert result["system"] == reverse_model.parent.name  # the first checkpoint's folder
    assert result["sentences"] == n


@pytest.fixture(scope="module")
def other_dictionary_model(corpus, tmp_path_factory):
    """A TGT->SRC model trained with a dictionary of its own (built on fewer lines: smaller)."""
    d = tmp_path_factory.mktemp("otherdict")
    for lang in (corpus.src, corpus.tgt):
        lines = (corpus.tok / f"train.{lang}").read_text(encoding="utf-8").splitlines()
        write_lines(d / f"small.{lang}", lines[: N_TRAIN // 5])
    preprocess(d / "bin", trainpref=d / "small")
    return train_tiny(d / "bin", d / "model", updates=2, src=corpus.tgt, tgt=corpus.src)


@pytest.mark.parametrize("tool", ["evaluate", "backtranslate"])
def test_other_dictionaries_are_one_line_error(corpus, reverse_model, other_dictionary_model,
                                               tmp_path, tool):
    """An ensemble member trained with other dictionaries: one line naming that checkpoint,
    exit 2, earlier output left as it was."""
    inp = tmp_path / "in"
    inp.mkdir()
    write_lines(inp / f"mono.{corpus.tgt}", mono_lines(corpus, 5))
    write_lines(inp / f"ref.{corpus.src}", mono_lines(corpus, 5, skip=10))
    args = (EVALUATE if tool == "evaluate" else GENERATE) + [f"{inp}/mono.{corpus.tgt}"]
    values = {"in": inp, "out": tmp_path / "out", "bin": corpus.bin, "spm": corpus.spm,
              "model": f"{reverse_model}:{other_dictionary_model}"}
    run_case(tool, args, 2, f"{other_dictionary_model}: checkpoint does not match the "
             f"dictionaries in {corpus.bin}", values, tmp_path / "logs")


def test_ctranslate2_refuses_an_ensemble(corpus, reverse_model, tmp_path):
    """CTranslate2 has no ensembles: a one-line error before anything is converted."""
    inp = tmp_path / "in"
    inp.mkdir()
    write_lines(inp / f"mono.{corpus.tgt}", mono_lines(corpus, 5))
    values = {"in": inp, "out": tmp_path / "out", "bin": corpus.bin, "spm": corpus.spm,
              "model": f"{reverse_model}:{reverse_model}"}
    run_case("backtranslate", GENERATE + [f"{inp}/mono.{corpus.tgt}", "--backend", "ctranslate2"],
             2, "--backend ctranslate2 decodes one checkpoint (CTranslate2 has no ensembles)",
             values, tmp_path / "logs")
    assert not (tmp_path / "out" / "bt.work" / "ct2_model").exists()
