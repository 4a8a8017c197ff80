"""--binarize-to writes a corpus that bt_translation --bt-data --bt-weighted loads as is, in
the reverse model's vocabulary or (--binarize-spm-model) another one."""
from pathlib import Path

import pytest
from fairseq.data import Dictionary, data_utils

from fairseq_bt_plugin.errors import BTUserError
from fairseq_bt_plugin.text_processing import TextProcessor, train_sentencepiece

from helpers import N_TRAIN, SRC, TGT, setup_task
from helpers.generate import forward_vocabulary, make_input, outputs, run_generate


def test_binarized_output_loads_in_bt_translation(corpus, reverse_model, tmp_path):
    inp = make_input(corpus, tmp_path / "mono.en", 29)
    bdir = tmp_path / "bin"
    summary = run_generate(corpus, reverse_model, inp, tmp_path / "out", "--mode", "sample",
                           "--nbest", "2", "--max-len-ratio", "0", "--binarize-to", bdir,
                           "--chunk-size", "10")
    n = summary["output_pairs"]
    assert n > 29
    for name in (f"train.{SRC}-{TGT}.{SRC}.bin", f"train.{SRC}-{TGT}.{SRC}.idx",
                 f"train.{SRC}-{TGT}.{TGT}.bin", f"train.{SRC}-{TGT}.{TGT}.idx", "train.weights",
                 f"dict.{SRC}.txt", f"dict.{TGT}.txt"):
        assert (bdir / name).exists(), name
    syn, orig, _, weights = outputs(tmp_path / "out")
    assert (bdir / "train.weights").read_text().splitlines() == weights

    en = data_utils.load_indexed_dataset(str(bdir / f"train.{SRC}-{TGT}.{TGT}"), None, "mmap")
    d = Dictionary.load(str(corpus.bin / f"dict.{TGT}.txt"))
    tp = TextProcessor(str(corpus.spm), TGT)
    assert len(en) == n
    assert d.string(en[3]) == tp.encode(orig[3])

    task, _ = setup_task([str(corpus.bin), "--task", "bt_translation", "-s", SRC, "-t", TGT,
                          "--bt-data", str(bdir), "--bt-weighted"])
    task.load_dataset("train")
    assert len(task.dataset("train")) == N_TRAIN + n


def test_binarized_with_the_forward_models_sentencepiece(corpus, reverse_model, tmp_path):
    """--binarize-spm-model: the binarized corpus is the raw synthetic and original sentences
    encoded with the forward model's sentencepiece model and dictionaries (the reverse model's
    pieces are not theirs); sharded + merged gives the same corpus; a dictionary not made with
    that model is refused before decoding."""
    from fairseq_bt_plugin.generate.cli import merge
    from fairseq_bt_plugin.generate.config import BTMergeConfig, parse

    spm, fwd = forward_vocabulary(corpus, tmp_path / "fwd")
    inp = make_input(corpus, tmp_path / "mono.en", 24)
    dicts = ["--srcdict", fwd / f"dict.{SRC}.txt", "--tgtdict", fwd / f"dict.{TGT}.txt"]
    bdir = tmp_path / "bin"
    # noised_beam: the filler <unk> words of the synthetic text stay one (unknown) piece
    run_generate(corpus, reverse_model, inp, tmp_path / "out", "--mode", "noised_beam",
                 "--beam", "2", "--chunk-size", "10", "--max-len-ratio", "0",
                 "--binarize-to", bdir, "--binarize-spm-model", spm, *dicts)
    syn, orig, _, _ = outputs(tmp_path / "out")
    d = Dictionary.load(str(fwd / f"dict.{SRC}.txt"))
    for lang, text in ((SRC, syn), (TGT, orig)):
        data = data_utils.load_indexed_dataset(str(bdir / f"train.{SRC}-{TGT}.{lang}"), None,
                                               "mmap")
        tp = TextProcessor(spm, lang)
        assert len(data) == len(text) > 10
        expected = [d.encode_line(tp.encode_keeping(x, {"<unk>"}), add_if_not_exist=False)
                    for x in text]
        assert [x.tolist() for x in data] == [x.tolist() for x in expected]
        assert (bdir / f"dict.{lang}.txt").read_text() == (fwd / f"dict.{lang}.txt").read_text()
    assert any("<unk>" in x.split() for x in syn)  # the noise's filler went through

    shards = [tmp_path / f"shard{i}" for i in range(2)]
    for i, out in enumerate(shards):
        run_generate(corpus, reverse_model, inp, out, "--mode", "noised_beam", "--beam", "2",
                     "--chunk-size", "10", "--max-len-ratio", "0", "--num-shards", "2",
                     "--shard-id", str(i))
    merge(parse(BTMergeConfig, ["--shards", ",".join(map(str, shards)), "--output-dir",
                                str(tmp_path / "merged"), "--binarize-to", str(tmp_path / "mbin"),
                                "--binarize-spm-model", str(spm)] + [str(x) for x in dicts],
                "merge", ""))
    for name in (f"train.{SRC}-{TGT}.{SRC}.bin", f"train.{SRC}-{TGT}.{TGT}.bin", "train.weights"):
        assert (tmp_path / "mbin" / name).read_bytes() == (bdir / name).read_bytes()

    wrong = ["--srcdict", corpus.bin / f"dict.{SRC}.txt", "--tgtdict",
             corpus.bin / f"dict.{TGT}.txt"]
    with pytest.raises(BTUserError, match=rf"spm\.model: sentencepiece model does not belong "
                                          rf"to the dictionary .*dict\.{SRC}\.txt"):
        run_generate(corpus, reverse_model, inp, tmp_path / "out2", "--binarize-to",
                     tmp_path / "bin2", "--binarize-spm-model", spm, *wrong)
    assert not (tmp_path / "out2").exists()


def test_the_same_sentencepiece_model_trained_elsewhere(corpus, tmp_path):
    """A model trained again on the same text in another folder is the same model (only the
    names of its training files differ): --binarize-spm-model keeps the reverse model's
    pieces then; another model is not the same."""
    from fairseq_bt_plugin.text_processing import same_sentencepiece_model

    again = train_sentencepiece([str(corpus.raw / f"train.{SRC}"),
                                 str(corpus.raw / f"train.{TGT}")], str(tmp_path / "spm"), 400)
    assert again != corpus.spm
    assert Path(again).read_bytes() != Path(corpus.spm).read_bytes()
    assert same_sentencepiece_model(corpus.spm, again)
    other, _ = forward_vocabulary(corpus, tmp_path / "other")
    assert not same_sentencepiece_model(corpus.spm, other)
