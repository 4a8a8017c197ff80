"""Characters that some readers take for a line end (a lone \\r, \\u2028, \\x85, ...) inside an
input line become spaces in every tool (prepare, generate, convert, evaluate), are counted,
and every text output has one line per pair for open().readlines() and str.splitlines()."""
import json
import math

from fairseq_bt_plugin.evaluate import main as evaluate_main
from fairseq_bt_plugin.generate.convert import main as convert_main
from fairseq_bt_plugin.prepare import main as prepare_main
from fairseq_bt_plugin.text_processing import LINE_BREAKS

from helpers.generate import mono_lines, run_generate


def with_breaks(lines):
    """Every other line gets one of the line-break characters in its middle."""
    out = []
    for i, line in enumerate(lines):
        if i % 2 == 0:
            c = LINE_BREAKS[(i // 2) % len(LINE_BREAKS)]
            words = line.split()
            line = " ".join(words[:2]) + c + " ".join(words[2:])
        out.append(line)
    return out


def write(path, lines):
    path.write_bytes("".join(x + "\n" for x in lines).encode("utf-8"))
    return path


def assert_lines(path, n):
    with open(path, encoding="utf-8") as f:  # universal newlines: \r is a line end
        assert len(f.readlines()) == n, path
    assert len(path.read_bytes().decode("utf-8").splitlines()) == n, path


def test_generate_and_convert(corpus, reverse_model, tmp_path):
    lines = with_breaks(mono_lines(corpus, 2 * len(LINE_BREAKS)))
    assert all(c in "".join(lines) for c in LINE_BREAKS)
    inp = write(tmp_path / "mono.txt", lines)
    out = tmp_path / "gen"
    s = run_generate(corpus, reverse_model, inp, out, "--mode", "greedy", "--chunk-size", "7",
                     "--keep-duplicates", "--keep-identical", "--max-len-ratio", "0")
    assert s["line_breaks_replaced"] == len(LINE_BREAKS) and s["output_pairs"] == len(lines)
    names = [f"bt.{x}" for x in (corpus.src, corpus.tgt, "scores", "weights")]
    for name in names:
        assert_lines(out / name, len(lines))
    assert (out / f"bt.{corpus.tgt}").read_text(encoding="utf-8").split("\n")[0] == \
        lines[0].replace(LINE_BREAKS[0], " ")

    # a fairseq-generate log whose S- and D- lines hold such characters
    log = ["S-0\tA dog\u2028runs.", "H-0\t-0.5\t\u2581Ein \u2581Hund",
           "D-0\t-0.5\tEin\rHund", "P-0\t-0.5 -0.5 -0.5",
           "S-1\tA cat.", "H-1\t-0.25\t\u2581Eine", "D-1\t-0.25\tEine\x85Katze"]
    write(tmp_path / "gen.log", log)
    convert_main(["--log", str(tmp_path / "gen.log"), "--output-dir", str(tmp_path / "conv"),
                  "-s", corpus.tgt, "-t", corpus.src])
    for name in names:
        assert_lines(tmp_path / "conv" / name, 2)
    summary = json.loads((tmp_path / "conv" / "bt.summary.json").read_text())
    assert summary["line_breaks_replaced"] == 3
    assert (tmp_path / "conv" / f"bt.{corpus.src}").read_text(encoding="utf-8") == \
        "Ein Hund\nEine Katze\n"
    scores = (tmp_path / "conv" / "bt.scores").read_text().splitlines()
    # P- line: log2 per token, eos included; without one: the H- score times tokens + eos
    assert scores[0].split("\t")[1] == f"{-1.5 * math.log(2):.6f}"
    assert scores[1].split("\t")[1] == f"{-0.5 * math.log(2):.6f}"


def test_evaluate(corpus, reverse_model, tmp_path):
    src = with_breaks(mono_lines(corpus, 6))
    ref = with_breaks((corpus.raw / f"syn.{corpus.src}").read_text(encoding="utf-8")
                      .splitlines()[:6])
    write(tmp_path / "test.txt", src)
    write(tmp_path / "ref.txt", ref)
    evaluate_main(["--path", str(reverse_model), "--data-dir", str(corpus.bin), "--spm-model",
                   str(corpus.spm), "--source-lang", corpus.tgt, "--target-lang", corpus.src,
                   "--input", str(tmp_path / "test.txt"), "--reference", str(tmp_path / "ref.txt"),
                   "--output-prefix", str(tmp_path / "sys"), "--cpu", "--beam", "1"])
    assert_lines(tmp_path / "sys.hyp", 6)
    result = json.loads((tmp_path / "sys.json").read_text())
    assert result["sentences"] == 6
    assert result["line_breaks_replaced"] == {"input": 3, "reference": 3}


def test_prepare(corpus, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for lang in (corpus.src, corpus.tgt):
        lines = (corpus.raw / f"train.{lang}").read_text(encoding="utf-8").splitlines()[:60]
        write(raw / f"train.{lang}", with_breaks(lines))
    prepare_main(["--source-lang", corpus.src, "--target-lang", corpus.tgt, "--trainpref",
                  str(raw / "train"), "--destdir", str(tmp_path / "prep"), "--spm-vocab-size",
                  "100"])
    summary = json.loads((tmp_path / "prep" / "prepare.json").read_text())
    assert summary["pairs"]["train"] == 60
    assert summary["line_breaks_replaced"] == {"train": 60}
    for lang in (corpus.src, corpus.tgt):
        assert_lines(tmp_path / "prep" / "tok" / f"train.{lang}", 60)
