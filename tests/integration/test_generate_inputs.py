"""Bad input gives one line and exit 2 with no final output; skipped lines and filtered pairs
are counted; batching and filters checked with exact numbers."""
import gzip
import json
import re
import shutil
import sys
from importlib.metadata import entry_points

import pytest

from fairseq_bt_plugin.generate.cli import former_main, main
from fairseq_bt_plugin.inference.translator import make_batches
from fairseq_bt_plugin.generate.filters import DuplicateFilter, pair_filter_reason

from helpers import SRC, TGT
from helpers.generate import generate_args, make_input, mono_lines, outputs, run_generate


def fails(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fairseq-bt-backtranslate: error: ") and "\n" not in err, err
    return err


def no_final_output(out):
    return not any((out / f"bt.{s}").exists() for s in (SRC, TGT, "scores", "weights",
                                                       "summary.json"))


def test_make_batches_keeps_every_position():
    lengths = [5, 3, 9, 9, 1, 4, 7]
    assert make_batches(lengths, 3, None) == [[2, 3, 6], [0, 5, 1], [4]]
    assert make_batches(lengths, None, 20) == [[2, 3], [6, 0], [5, 1, 4]]
    assert make_batches(lengths, 2, 6) == [[2], [3], [6], [0], [5], [1, 4]]  # 9 > 6: alone
    for bs in (1, 2, 8):
        assert sorted(i for b in make_batches(list(range(37)), bs, 50) for i in b) == \
            list(range(37))


def test_pair_filters():
    def reason(syn, orig, ns, no, **kw):
        opts = dict(max_len_ratio=2.0, max_output_tokens=10, keep_identical=False)
        opts.update(kw)
        return pair_filter_reason(syn, orig, ns, no, **opts)

    assert reason("ein Hund", "a dog", 2, 2) is None
    assert reason("  ", "a dog", 0, 2) == "empty_output"
    assert reason("x " * 11, "a dog " * 6, 11, 12) == "output_too_long"
    assert reason("x x x x x", "a dog", 5, 2) == "length_ratio"
    assert reason("x", "a b c", 1, 3) == "length_ratio"
    assert reason("x", "a b c", 1, 3, max_len_ratio=0) is None
    assert reason("a dog", "a dog", 2, 2) == "identical"
    assert reason("a dog", "a dog", 2, 2, keep_identical=True) is None
    d = DuplicateFilter()
    assert [d.is_duplicate(*p) for p in [("a", "b"), ("a", "c"), ("a", "b")]] == \
        [False, False, True]


def test_skipped_lines_and_filters_are_counted(corpus, reverse_model, tmp_path):
    lines = mono_lines(corpus, 12)
    lines = lines[:3] + ["", "   "] + lines[3:6] + ["x" * 300] + lines[6:] + lines[:4]
    first = tmp_path / "a.en"
    first.write_text("\n".join(lines[:8]) + "\n", encoding="utf-8")
    with gzip.open(tmp_path / "b.en.gz", "wt", encoding="utf-8") as f:  # .gz input too
        f.write("\n".join(lines[8:]) + "\n")
    summary = run_generate(corpus, reverse_model, [first, tmp_path / "b.en.gz"], tmp_path / "o",
                           "--mode", "greedy", "--max-input-chars", "200", "--max-len-ratio",
                           "0", "--chunk-size", "7", "--max-len-a", "0", "--max-len-b", "6")
    # (--max-len-a 0: fairseq's length limit would otherwise depend on the padded batch)
    assert summary["input_lines"] == 19
    assert summary["skipped_input"] == {"empty_input": 2, "input_too_long": 1}
    assert summary["translated"] == 16
    assert summary["filtered"] == {"duplicate": 4}, summary  # greedy: repeated line, same pair
    assert summary["output_pairs"] == 12
    syn, orig, _, _ = outputs(tmp_path / "o")
    assert orig == mono_lines(corpus, 12) and len(syn) == 12

    summary = run_generate(corpus, reverse_model, first, tmp_path / "o2", "--mode", "greedy",
                           "--max-output-tokens", "1")
    assert summary["filtered"] == {"output_too_long": 6} and summary["output_pairs"] == 0
    assert outputs(tmp_path / "o2") == ([], [], [], [])


def test_invalid_utf8_names_file_and_line(corpus, reverse_model, tmp_path, capsys):
    good = make_input(corpus, tmp_path / "a.en", 4)
    bad = tmp_path / "b.en"
    bad.write_bytes(b"A dog.\nA cat.\nA \xff\xfe bird.\nA fish.\n")
    out = tmp_path / "out"
    args = generate_args(corpus, reverse_model, [good, bad], out, "--mode", "greedy")
    err = fails(args, capsys)
    assert f"{bad}:3: invalid UTF-8" in err
    assert no_final_output(out)
    summary = run_generate(corpus, reverse_model, [good, bad], tmp_path / "skip", "--mode",
                           "greedy", "--skip-invalid", "--max-len-ratio", "0")
    assert summary["skipped_input"] == {"invalid_utf8": 1} and summary["translated"] == 7


def test_missing_spm_model(corpus, reverse_model, tmp_path, capsys):
    inp = make_input(corpus, tmp_path / "a.en", 3)
    out = tmp_path / "out"
    args = generate_args(corpus, reverse_model, inp, out)
    args[args.index("--spm-model") + 1] = str(tmp_path / "nope.model")
    assert "nope.model: sentencepiece model not found" in fails(args, capsys)
    assert not out.exists()


def test_mismatched_dictionary(corpus, reverse_model, tmp_path, capsys):
    inp = make_input(corpus, tmp_path / "a.en", 3)
    data = tmp_path / "dicts"
    data.mkdir()
    shutil.copy(corpus.bin / f"dict.{TGT}.txt", data / f"dict.{TGT}.txt")
    entries = (corpus.bin / f"dict.{SRC}.txt").read_text(encoding="utf-8").splitlines()
    (data / f"dict.{SRC}.txt").write_text("\n".join(entries[:-10]) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    args = generate_args(corpus, reverse_model, inp, out)
    args[args.index("--data") + 1] = str(data)
    err = fails(args, capsys)
    assert "does not match the dictionaries" in err and "size mismatch" in err, err
    assert not out.exists()


def test_swapped_languages(corpus, reverse_model, tmp_path, capsys):
    inp = make_input(corpus, tmp_path / "a.en", 3)
    args = generate_args(corpus, reverse_model, inp, tmp_path / "out")
    args[args.index("-s") + 1], args[args.index("-t") + 1] = SRC, TGT
    assert f"translates {TGT}->{SRC}" in fails(args, capsys)


def test_summary_records_the_run(corpus, reverse_model, tmp_path):
    inp = make_input(corpus, tmp_path / "a.en", 5)
    run_generate(corpus, reverse_model, inp, tmp_path / "o", "--seed", "5", "--mode", "greedy")
    s = json.loads((tmp_path / "o" / "bt.summary.json").read_text())
    assert s["model"].endswith("checkpoint_last.pt") and s["seed"] == 5
    assert s["options"]["mode"] == "greedy" and s["input_lines"] == 5
    assert s["sentences_per_second"] > 0


def test_every_option_is_explained_in_help(capsys):
    import dataclasses

    from fairseq_bt_plugin.generate.config import BTConvertConfig, BTGenerateConfig, BTMergeConfig

    for cls in (BTGenerateConfig, BTMergeConfig, BTConvertConfig):
        for f in dataclasses.fields(cls):
            if f.name != "_name":
                assert f.metadata.get("help"), (cls.__name__, f.name)
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # help lines wrap at any width
    for flag in ("--input", "--mode", "--samples-per-sentence", "--sampling-topp",
                 "--chunk-size", "--num-shards", "--binarize-to", "--skip-invalid",
                 "--weights", "exp(s_k) / sum_j exp(s_j)"):
        assert flag in out, flag


def test_progress_without_terminal_logs_lines(capsys):
    from fairseq_bt_plugin.generate.cli import Progress

    p = Progress(None, interval=0.0, tty=False)
    p.batch(0, 4)  # inside a chunk: a long chunk is not silent
    p.update(0, 10, 9)
    p.close(0)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and "chunk 0: 4 input lines, 4 sentences decoded" in err[0]
    assert "10 input lines, 9 sentences decoded" in err[1] and "sentences/s" in err[1]


def test_progress_bar_on_a_terminal(corpus, reverse_model, tmp_path):
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import termios

    from helpers.generate import generate_cmd

    inp = make_input(corpus, tmp_path / "a.en", 30)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    p = subprocess.Popen(generate_cmd(corpus, reverse_model, inp, tmp_path / "o", "--mode",
                                      "greedy", "--chunk-size", "10"),
                         stdout=subprocess.DEVNULL, stderr=slave, close_fds=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    os.close(slave)
    out = b""
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        out += data
    assert p.wait() == 0
    text = out.decode("utf-8", "replace")
    assert "30/30" in text and "sent/s" in text, text[-500:]


def test_sentencepiece_model_of_another_dictionary(corpus, reverse_model, tmp_path, capsys):
    """A sentencepiece model of another run (here: trained on other lines, smaller vocabulary)
    is refused, naming both files, by the generator and by evaluate; the model the dictionary
    was made with has every symbol as a piece."""
    from fairseq_bt_plugin.evaluate import main as evaluate_main
    from fairseq_bt_plugin.text_processing import TextProcessor, train_sentencepiece

    other = train_sentencepiece([str(corpus.raw / f"syn.{lang}") for lang in (corpus.src,
                                                                                corpus.tgt)],
                                str(tmp_path / "other"), 400)  # as corpus.spm, other lines
    dict_de = corpus.bin / f"dict.{corpus.src}.txt"
    TextProcessor(str(corpus.spm), corpus.src).check_dictionary(str(dict_de), "", min_share=1.0)
    inp = make_input(corpus, tmp_path / "a.txt", 3)
    out = tmp_path / "out"
    args = generate_args(corpus, reverse_model, inp, out)
    args[args.index("--spm-model") + 1] = other
    err = fails(args, capsys)
    assert f"{other}: sentencepiece model does not belong to the dictionary" in err, err
    assert f"dict.{corpus.tgt}.txt" in err and "90% needed" in err, err
    known, total = map(int, re.search(r"only (\d+) of its (\d+) symbols", err).groups())
    assert known / total < 0.7, err  # README: 61%
    assert not out.exists()
    with pytest.raises(SystemExit) as e:
        evaluate_main(["--path", str(reverse_model), "--data-dir", str(corpus.bin),
                       "--spm-model", other, "--source-lang", corpus.tgt, "--target-lang",
                       corpus.src, "--input", str(inp), "--reference", str(inp),
                       "--output-prefix", str(tmp_path / "sys"), "--cpu"])
    assert e.value.code == 2
    assert "does not belong to the dictionary" in capsys.readouterr().err
    assert not (tmp_path / "sys.json").exists()


def test_former_name_is_the_same_tool_after_one_notice(monkeypatch, capsys):
    """``fairseq-bt-generate`` (deprecated) is ``fairseq-bt-backtranslate`` after one line."""
    scripts = {e.name: e for e in entry_points(group="console_scripts")}
    assert scripts["fairseq-bt-generate"].load() is former_main
    assert scripts["fairseq-bt-backtranslate"].load() is main
    shown = []
    for name, entry in (("fairseq-bt-backtranslate", main), ("fairseq-bt-generate", former_main)):
        monkeypatch.setattr(sys, "argv", [name, "--help"])
        with pytest.raises(SystemExit) as e:
            entry()
        assert e.value.code == 0
        shown.append(capsys.readouterr())
    assert shown[0].out.startswith("usage: fairseq-bt-backtranslate ")
    assert shown[1].out == shown[0].out and shown[0].err == ""
    assert shown[1].err == "fairseq-bt-generate is now fairseq-bt-backtranslate\n"
