"""The progress lines of fairseq-bt-evaluate and fairseq-bt-backtranslate: exact text, and the
values read back from it."""
from fairseq_bt_plugin.progress_line import DECODED, TRANSLATED


def test_translated_line_and_its_values():
    line = TRANSLATED.format("fairseq-bt-evaluate", done=10, total=40, rate=4.96)
    assert line == "fairseq-bt-evaluate: 10 of 40 sentences translated, 5.0 sentences/s"
    assert TRANSLATED.parse(f"[stderr] {line}\n") == {"done": 10, "total": 40, "rate": 5.0}
    assert TRANSLATED.parse("fairseq-bt-evaluate: 10 of 40 sentences") is None


def test_decoded_line_and_its_values():
    line = DECODED.format("fairseq-bt-backtranslate", chunk=2, lines=300, decoded=120, rate=0.04)
    assert line == ("fairseq-bt-backtranslate: chunk 2: 300 input lines, 120 sentences decoded in "
                    "this run, 0.0 sentences/s")
    assert DECODED.parse(line) == {"chunk": 2, "lines": 300, "decoded": 120, "rate": 0.0}
    assert TRANSLATED.parse(line) is None and DECODED.parse(TRANSLATED.format(
        "p", done=1, total=2, rate=1.0)) is None
