"""A CTranslate2 model directory as the model (``--path DIR --backend ctranslate2``): one
exported by fairseq-bt-export, or one laid out as CTranslate2's converters write an OPUS-MT /
Marian model (no model.json, source and target vocabularies of their own, older .txt
vocabularies, a target sentencepiece model of its own). It back-translates exactly as the
checkpoint it was made from does through CTranslate2 (text, scores, binarized corpus, both
sides); fairseq-bt-translate --model DIR translates as the checkpoint, without importing
fairseq; wrong files are one line, exit 2, nothing written."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from fairseq_bt_plugin.generate.cli import main

from helpers.generate import assert_binarized_is_text, binarized_pairs, generate_args, \
    make_input, outputs, run_generate

pytest.importorskip("ctranslate2")

FLOAT = ["--backend", "ctranslate2", "--ct2-compute-type", "float32", "--ct2-inter-threads", "1",
         "--max-len-a", "0", "--max-len-b", "6", "--max-len-ratio", "0", "--keep-duplicates",
         "--batch-size", "8"]


def tool(name, *args, **kwargs):
    return subprocess.run([shutil.which(name), *[str(a) for a in args]], capture_output=True,
                          text=True, **kwargs)


@pytest.fixture(scope="module")
def exported(corpus, reverse_model, tmp_path_factory):
    """The tiny reverse model (TGT->SRC) exported with float32 weights (as converted)."""
    out = tmp_path_factory.mktemp("exported") / "reverse"
    p = tool("fairseq-bt-export", "--path", reverse_model, "--data", corpus.bin, "--spm-model",
             corpus.spm, "-s", corpus.tgt, "-t", corpus.src, "--output", out,
             "--quantization", "float32")
    assert p.returncode == 0, p.stderr
    return out


@pytest.fixture(scope="module")
def converted_elsewhere(exported, tmp_path_factory):
    """``exported`` as another converter lays a model out: no model card, dictionaries or
    sentencepiece model inside; a source vocabulary in the older .txt form and a target one in
    .json; the target sentencepiece model a file of its own."""
    d = tmp_path_factory.mktemp("opus")
    model = d / "model"
    model.mkdir()
    for name in ("model.bin", "config.json"):
        shutil.copy(exported / name, model / name)
    vocab = json.loads((exported / "shared_vocabulary.json").read_text(encoding="utf-8"))
    (model / "source_vocabulary.txt").write_text("".join(t + "\n" for t in vocab),
                                                 encoding="utf-8")
    (model / "target_vocabulary.json").write_text(json.dumps(vocab), encoding="utf-8")
    shutil.copy(exported / "spm.model", d / "source.spm")
    shutil.copy(exported / "spm.model", d / "target.spm")
    return d


def bt_bytes(out):
    return {p.name: p.read_bytes() for p in [*out.glob("bt.*"), *(out / "bin").iterdir()]
            if p.is_file() and not p.name.endswith(".json")}


def test_a_model_directory_back_translates_as_its_checkpoint(corpus, reverse_model, exported,
                                                             converted_elsewhere, tmp_path):
    inp = make_input(corpus, tmp_path / "mono.txt", 21)
    binarize = ["--binarize-to", "bin", "--srcdict", corpus.bin / f"dict.{corpus.src}.txt",
                "--tgtdict", corpus.bin / f"dict.{corpus.tgt}.txt"]

    def generate(model, out, *extra):
        flags = [*FLOAT, *binarize, *extra]
        flags[flags.index("bin")] = out / "bin"
        return run_generate(corpus, model, inp, out, *flags)

    generate(reverse_model, tmp_path / "ckpt", "--ct2-model-dir", tmp_path / "conv")
    summary = generate(exported, tmp_path / "dir")
    assert summary["ct2_convert_seconds"] == 0  # used as it is, never converted
    assert summary["model"] == str(exported)
    expected = bt_bytes(tmp_path / "ckpt")
    assert len(outputs(tmp_path / "ckpt")[0]) == 21
    assert bt_bytes(tmp_path / "dir") == expected
    assert_binarized_is_text(tmp_path / "dir" / "bin", tmp_path / "dir", corpus)
    # laid out as CTranslate2's converters write other models, with a target spm of its own
    m = converted_elsewhere
    args = generate_args(corpus, m / "model", inp, tmp_path / "opus", *FLOAT, *binarize,
                         "--target-spm-model", m / "target.spm")
    args[args.index("--spm-model") + 1] = str(m / "source.spm")
    args[args.index("bin")] = str(tmp_path / "opus" / "bin")
    args.remove("--data")
    args.remove(str(corpus.bin))
    main(args)
    assert bt_bytes(tmp_path / "opus") == expected
    assert binarized_pairs(tmp_path / "opus" / "bin", corpus) == binarized_pairs(
        tmp_path / "ckpt" / "bin", corpus)


@pytest.mark.parametrize("case", ["backend", "languages", "vocabulary", "no_vocabulary",
                                  "bad_vocabulary", "sentencepiece"])
def test_a_wrong_model_directory_is_one_line(case, corpus, exported, converted_elsewhere,
                                             tmp_path, capsys):
    from fairseq_bt_plugin.text_processing import train_sentencepiece

    model = exported
    flags = list(FLOAT)
    src, tgt = corpus.tgt, corpus.src
    if case == "backend":
        flags = FLOAT[2:]
        expected = f"--path {exported}: a CTranslate2 model directory: give --backend ctranslate2"
    elif case == "languages":
        src, tgt = corpus.src, corpus.tgt
        expected = (f"{exported}: the model translates {corpus.tgt}->{corpus.src}, but "
                    f"-s {corpus.src} -t {corpus.tgt} was given")
    elif case in ("vocabulary", "no_vocabulary", "bad_vocabulary"):
        model = tmp_path / "model"
        shutil.copytree(converted_elsewhere / "model", model)
        if case == "no_vocabulary":
            (model / "source_vocabulary.txt").unlink()
            expected = f"{model}: no vocabulary (shared_vocabulary.json"
        elif case == "bad_vocabulary":
            (model / "target_vocabulary.json").write_text('{"a": 1', encoding="utf-8")
            expected = f"{model}/target_vocabulary.json: not a vocabulary ("
        else:  # a vocabulary of other pieces than the sentencepiece model's
            (model / "target_vocabulary.json").write_text(json.dumps(
                [f"w{i}" for i in range(300)]), encoding="utf-8")
            expected = (f"does not belong to the target vocabulary of {model} (only 0 of its "
                        "399 pieces are in the vocabulary")
    else:
        other = train_sentencepiece([str(corpus.raw / f"syn.{lang}") for lang in
                                     (corpus.src, corpus.tgt)], str(tmp_path / "other"), 400)
        expected = f"{other}: sentencepiece model does not belong to the source vocabulary"
    inp = make_input(corpus, tmp_path / "mono.txt", 3)
    args = generate_args(corpus, model, inp, tmp_path / "out", *flags)
    args[args.index("-s") + 1], args[args.index("-t") + 1] = src, tgt
    if case == "sentencepiece":
        args[args.index("--spm-model") + 1] = other
    with pytest.raises(SystemExit) as e:
        main(args)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and expected in err and "\n" not in err, err
    assert not (tmp_path / "out").exists()
    if case in ("languages", "sentencepiece"):  # the pipeline's check of a reused model
        p = tool("fairseq-bt-check-model", "--path", model, "--backend", "ctranslate2",
                 "--spm-model", args[args.index("--spm-model") + 1], "-s", src, "-t", tgt)
        assert p.returncode == 2 and expected in p.stderr, p.stderr


def test_translate_with_an_exported_directory(corpus, reverse_model, exported, tmp_path):
    """--model DIR: languages and sentencepiece model from the directory; the output is the
    checkpoint's through CTranslate2, line for line, an empty line kept."""
    lines = (corpus.raw / f"test.{corpus.tgt}").read_text(encoding="utf-8").splitlines()[:12]
    lines.insert(3, "")
    text = "\n".join(lines) + "\n"
    common = ["--beam", "2", "--log-interval", "0", "--ct2-compute-type", "float32"]
    p = tool("fairseq-bt-translate", "--model", exported, *common, input=text)
    assert p.returncode == 0, p.stderr
    q = tool("fairseq-bt-translate", "--path", reverse_model, "--data", corpus.bin,
             "--spm-model", corpus.spm, "-s", corpus.tgt, "-t", corpus.src, "--backend",
             "ctranslate2", "--ct2-model-dir", tmp_path / "conv", *common, input=text)
    assert q.returncode == 0, q.stderr
    assert p.stdout == q.stdout and len(p.stdout.splitlines()) == 13
    assert p.stdout.splitlines()[3] == "" and any(p.stdout.splitlines())
    # the exported model translates without fairseq: its process (the command, or python -m)
    # imports no fairseq module
    for command in ([shutil.which("fairseq-bt-translate")],
                    [sys.executable, "-m", "fairseq_bt_plugin.translate"]):
        p = subprocess.run([*command, "--model", str(exported), *common], input=text,
                           capture_output=True, text=True,
                           env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
        assert p.returncode == 0 and p.stdout == q.stdout, p.stderr[-2000:]
        imported = {line.rsplit("|", 1)[-1].strip() for line in p.stderr.splitlines()
                    if line.startswith("import time:")}
        assert {"ctranslate2", "sentencepiece", "fairseq_bt_plugin.evaluate"} <= imported
        assert not [m for m in imported if m.split(".")[0] == "fairseq"], command
    p = tool("fairseq-bt-translate", "--model", tmp_path, input=text)
    assert p.returncode == 2 and p.stderr.strip() == (
        f"fairseq-bt-translate: error: {tmp_path}: not an exported model directory (no "
        "model.bin; fairseq-bt-export writes one)"), p.stderr
