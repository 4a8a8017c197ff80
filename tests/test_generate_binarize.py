"""--binarize-to writes a corpus that bt_translation --bt-data --bt-weighted loads as is."""
from conftest import N_TRAIN, SRC, TGT, setup_task
from fairseq.data import Dictionary, data_utils

from fairseq_bt_plugin.text_processing import TextProcessor

from generate_helpers import make_input, outputs, run_generate


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
