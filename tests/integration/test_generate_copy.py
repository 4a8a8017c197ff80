"""fairseq-bt-backtranslate copy: the copied-monolingual-text control (each target sentence
its own source), in the files and binarized layout of a back-translated corpus, through the
public command."""
import shutil

from helpers import N_TRAIN, SRC, TGT, run, setup_task
from helpers.generate import binarized_pairs, make_input, outputs

TOOL = "fairseq-bt-backtranslate"


def copy_args(corpus, inp, out, *extra):
    return [shutil.which(TOOL), "copy", "--input", str(inp), "--spm-model", str(corpus.spm),
            "-s", TGT, "-t", SRC, "--output-dir", str(out), *[str(x) for x in extra]]


def binarize_args(corpus, bdir):
    return ["--binarize-to", bdir, "--srcdict", corpus.bin / f"dict.{SRC}.txt",
            "--tgtdict", corpus.bin / f"dict.{TGT}.txt", "--binarize-spm-model", corpus.spm]


def test_copies_are_the_input_on_both_sides_text_and_binarized(corpus, tmp_path):
    from fairseq.data import Dictionary

    from fairseq_bt_plugin.text_processing import TextProcessor

    inp = make_input(corpus, tmp_path / "mono.en", 40)
    lines = inp.read_text(encoding="utf-8").splitlines()
    lines[5] = ""  # an empty line is skipped and counted, like the generator's
    inp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    bdir = tmp_path / "bin"
    p = run(copy_args(corpus, inp, tmp_path / "out", "--chunk-size", "16",
                      *binarize_args(corpus, bdir)))
    assert "pairs from 40 input lines (skipped {'empty_input': 1}" in p.stderr
    syn, orig, scores, weights = outputs(tmp_path / "out")
    kept = [x.strip() for x in lines if x.strip()]
    kept = list(dict.fromkeys(kept))  # repeated sentences once (the generator's dedup)
    assert syn == orig == kept
    assert set(map(float, weights)) == {1.0}
    pairs = binarized_pairs(bdir, corpus)
    d = Dictionary.load(str(bdir / f"dict.{TGT}.txt"))
    tp = TextProcessor(str(corpus.spm), TGT)
    assert len(pairs) == len(kept)
    for (src_ids, tgt_ids), line in zip(pairs, kept):
        assert tgt_ids == d.encode_line(tp.encode(line), add_if_not_exist=False).tolist()
        assert src_ids == tgt_ids  # the joint dictionary: the very same ids
    task, _ = setup_task([str(corpus.bin), "--task", "bt_translation", "-s", SRC, "-t", TGT,
                          "--bt-data", str(bdir), "--bt-tag", "<BT>"])
    task.load_dataset("train")
    assert len(task.dataset("train")) == N_TRAIN + len(kept)

    before = (tmp_path / "out" / "bt.summary.json").read_text()
    run(copy_args(corpus, inp, tmp_path / "out", "--chunk-size", "16",
                  *binarize_args(corpus, bdir)))  # a rerun: the same corpus
    assert outputs(tmp_path / "out")[0] == kept
    assert (tmp_path / "out" / "bt.summary.json").read_text() == before


def test_bad_input_is_one_line_and_exit_2(corpus, tmp_path):
    import subprocess

    empty = tmp_path / "empty.en"
    empty.write_text("")
    inp = make_input(corpus, tmp_path / "mono.en", 5)
    cases = [(copy_args(corpus, empty, tmp_path / "o1"), "empty file"),
             (copy_args(corpus, inp, tmp_path / "o2", "--binarize-to", tmp_path / "b"),
              "--binarize-to needs --srcdict and --tgtdict"),
             ([*copy_args(corpus, inp, tmp_path / "o3")[:5], "missing.model", "-s", TGT, "-t",
               SRC, "--output-dir", str(tmp_path / "o3")], "sentencepiece model not found")]
    for args, expected in cases:
        p = subprocess.run(args, capture_output=True, text=True)
        assert p.returncode == 2, p.stderr
        assert expected in p.stderr
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert not (tmp_path / "o2").exists() and not (tmp_path / "o3").exists()
