"""fairseq-bt-clean: each drop reason counted exactly in clean.json, contamination from the valid
set and from each of two test sets on either side, protected files untouched, a second run
changes nothing, language identification on real short Tatoeba sentences (offline), and bad
inputs stopped with one line naming the file and line before anything is written."""
import json
import resource
import socket
import subprocess
import sys

import pytest

from fairseq_bt_plugin.cleaning.clean import Normaliser, main as clean_main

from conftest import SRC, TATOEBA, TGT, write_lines
from tool_runner import snapshot

LANGS = ["--source-lang", SRC, "--target-lang", TGT]
TOO_LONG = " ".join(["word"] * 50)  # 249 characters: over --max-chars 200


def tatoeba(split, lang):
    return (TATOEBA / f"{split}.{lang}").read_text(encoding="utf-8").splitlines()


def clean(raw, *flags):
    clean_main(["--raw-dir", str(raw)] + LANGS + [str(f) for f in flags])
    return json.loads((raw / "clean.json").read_text(encoding="utf-8"))


def lines(path):
    return path.read_text(encoding="utf-8").splitlines()


def protected(raw):
    return {k: v for k, v in snapshot(raw).items() if k.startswith(("valid.", "test_"))}


@pytest.fixture
def raw(tmp_path):
    """A corpus folder with one case of every drop reason; valid and two test sets."""
    src, tgt = tatoeba("train", SRC), tatoeba("train", TGT)
    valid = {lang: tatoeba("valid", lang)[:5] for lang in (SRC, TGT)}
    test = {lang: tatoeba("test", lang) for lang in (SRC, TGT)}
    d = tmp_path / "raw"
    d.mkdir()
    for lang in (SRC, TGT):
        write_lines(d / f"valid.{lang}", valid[lang])
        write_lines(d / f"test_a.{lang}", test[lang][:5])
        write_lines(d / f"test_b.{lang}", test[lang][5:10])
    pairs = list(zip(src[:20], tgt[:20])) + [
        ("", tgt[20]), ("   ", tgt[21]),                           # empty: 2
        (src[22], TOO_LONG),                                       # too_long: 1
        (src[0], tgt[0]), (src[1].replace(" ", "  "), tgt[1]),     # duplicate: 2
        (test[SRC][0], tgt[23]),                                   # contaminated: test_a
        (src[24], test[SRC][6].upper()),  # test_b's source side, as a target, other case
        (valid[SRC][0], valid[TGT][0]),   # kept: bitext is guarded against test sets only
        ("Oui.", "Yes, I would very much like to come with you tomorrow."),  # length_ratio
    ]
    write_lines(d / f"train.{SRC}", [s for s, _ in pairs])
    write_lines(d / f"train.{TGT}", [t for _, t in pairs])
    write_lines(d / f"mono.{TGT}", tgt[100:130] + [
        "", TOO_LONG, tgt[100],                                    # empty, too_long, duplicate
        valid[TGT][0], valid[SRC][1],                              # contaminated: valid (2)
        test[TGT][2], "  " + test[SRC][7].lower() + " ",           # test_a, test_b
    ])
    write_lines(d / f"mono.{SRC}", src[200:210] + [test[TGT][3]])  # contaminated: test_a
    return d


def test_every_reason_counted(raw, capsys):
    before = protected(raw)
    train_in = list(zip(lines(raw / f"train.{SRC}"), lines(raw / f"train.{TGT}")))
    mono_in = lines(raw / f"mono.{TGT}")
    summary = clean(raw, "--max-chars", 200, "--bitext-max-len-ratio", 3, "--no-langid")
    train, mono_t, mono_s = (summary["corpora"][k] for k in ("train", f"mono.{TGT}",
                                                              f"mono.{SRC}"))
    assert train["lines_in"] == 29 and train["lines_out"] == 21
    assert train["dropped"] == {"empty": 2, "too_long": 1, "contaminated": 2, "duplicate": 2,
                                "length_ratio": 1}
    assert train["contaminated_by"] == {"test_a": 1, "test_b": 1}
    assert list(zip(lines(raw / f"train.{SRC}"), lines(raw / f"train.{TGT}"))) == \
        train_in[:20] + [train_in[27]]
    assert mono_t["lines_in"] == 37 and mono_t["lines_out"] == 30
    assert mono_t["dropped"] == {"empty": 1, "too_long": 1, "contaminated": 4, "duplicate": 1}
    assert mono_t["contaminated_by"] == {"valid": 2, "test_a": 1, "test_b": 1}
    assert lines(raw / f"mono.{TGT}") == mono_in[:30]
    assert mono_s["dropped"]["contaminated"] == 1 and mono_s["lines_out"] == 10
    assert mono_s["contaminated_by"] == {"test_a": 1}
    assert summary["protected"] == {f"{n}.{lang}": 5 for n in ("valid", "test_a", "test_b")
                                    for lang in (SRC, TGT)}
    assert protected(raw) == before
    assert train["examples"]["length_ratio"] == [
        "Oui. ||| Yes, I would very much like to come with you tomorrow."]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"fairseq-bt-clean: train 29 -> 21 (dropped: ")


def test_second_run_changes_nothing(raw, capsys):
    clean(raw, "--max-chars", 200, "--bitext-max-len-ratio", 3)
    first = snapshot(raw)
    clean(raw, "--max-chars", 200, "--bitext-max-len-ratio", 3)
    assert snapshot(raw) == first  # clean.json included: the first run's counts stay
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
        "already clean, nothing changed")


def test_no_dedup_no_contamination(raw):
    """A switched-off step keeps what it would drop and is absent from the counts."""
    summary = clean(raw, "--no-dedup", "--no-contamination", "--no-langid")
    train = summary["corpora"]["train"]
    assert set(train["dropped"]) == {"empty", "too_long"}
    assert train["lines_out"] == 27  # 2 empty, nothing over the default --max-chars


def test_no_normalise(raw):
    """--no-normalise writes lines as they are; they are still compared normalised and
    case-folded with the valid and test sets."""
    summary = clean(raw, "--no-normalise", "--no-langid")
    train, mono = summary["corpora"]["train"], summary["corpora"][f"mono.{TGT}"]
    assert train["dropped"]["duplicate"] == 1  # the pair with doubled spaces is kept as it is
    assert "  " in lines(raw / f"train.{SRC}")[21]
    assert mono["contaminated_by"] == {"valid": 2, "test_a": 1, "test_b": 1}


def test_normalised_for_matching_and_writing(tmp_path):
    """Moses normalisation (curly quotes and ellipsis), whitespace squeezing and, for the
    contamination guard only, case folding make lines equal; lines are written normalised."""
    d = tmp_path / "raw"
    d.mkdir()
    write_lines(d / f"test_x.{SRC}", ["C’est ça…"])
    write_lines(d / f"test_x.{TGT}", ["He said “yes”."])
    write_lines(d / f"train.{SRC}", ["Il  pleut.", "Il pleut."])
    write_lines(d / f"train.{TGT}", ["It rains.", "It rains."])
    write_lines(d / f"mono.{SRC}", ["C'est ça...", "Je  suis là ."])
    write_lines(d / f"mono.{TGT}", ["It is raining.", 'HE SAID "YES".', "It is raining."])
    summary = clean(d, "--no-langid")
    assert summary["corpora"]["train"]["normalised"] == {SRC: 1, TGT: 0}
    assert summary["corpora"]["train"]["dropped"]["duplicate"] == 1
    assert summary["corpora"][f"mono.{SRC}"]["contaminated_by"] == {"test_x": 1}
    assert summary["corpora"][f"mono.{TGT}"]["contaminated_by"] == {"test_x": 1}
    assert summary["corpora"][f"mono.{TGT}"]["dropped"]["duplicate"] == 1
    assert lines(d / f"mono.{SRC}") == ["Je suis là ."]
    assert lines(d / f"train.{SRC}") == ["Il pleut."]


def mixed(tmp_path):
    """Real short Tatoeba sentences: 200 TGT with 100 SRC mixed in (every third line) in
    mono.TGT, 200 SRC with 100 TGT in mono.SRC."""
    d = tmp_path / "raw"
    d.mkdir()
    src, tgt = tatoeba("train", SRC), tatoeba("train", TGT)
    for lang in (SRC, TGT):
        write_lines(d / f"train.{lang}", (src if lang == SRC else tgt)[:50])
    mono = {TGT: (tgt[:200], src[:100]), SRC: (src[100:300], tgt[200:300])}
    for lang, (right, wrong) in mono.items():
        write_lines(d / f"mono.{lang}", [x for i in range(100)
                                         for x in (right[2 * i], right[2 * i + 1], wrong[i])])
    return d, mono


def test_language_identification_offline(tmp_path, monkeypatch):
    d, mono = mixed(tmp_path)

    def no_network(*args, **kwargs):
        raise AssertionError("language identification used the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    summary = clean(d)
    out = {lang: lines(d / f"mono.{lang}") for lang in (SRC, TGT)}
    report = {lang: summary["corpora"][f"mono.{lang}"] for lang in (SRC, TGT)}
    # every mixed-in line is dropped but one ("Go." is not told from French; one French line
    # is taken for Latin), and one English line is taken for Dutch ("We met earlier.")
    assert report[TGT]["wrong_languages"] == {SRC: 99, "la": 1, "nl": 1}
    assert out[TGT] == [x for x in mono[TGT][0] if x != "We met earlier."]
    assert report[SRC]["wrong_languages"] == {TGT: 99}
    written = Normaliser(SRC, keep_as_is=False)  # French lines change: "\u00a0?" -> "?"
    kept = 2 * (mono[SRC][1].index("Go.") + 1)  # the right lines before it
    assert out[SRC] == [written(x)[0] for x in
                        mono[SRC][0][:kept] + ["Go."] + mono[SRC][0][kept:]]
    assert summary["options"]["langid_threshold"] == 0.6  # the default


def test_unknown_language_code(tmp_path, capsys):
    d, _ = mixed(tmp_path)
    for lang in ("train", "mono"):
        (d / f"{lang}.{TGT}").rename(d / f"{lang}.xx")
    before = snapshot(d)
    with pytest.raises(SystemExit) as e:
        clean_main(["--raw-dir", str(d), "--source-lang", SRC, "--target-lang", "xx"])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1
    assert err[0].startswith("fairseq-bt-clean: error: --target-lang xx: language "
                             "identification knows no language 'xx' (it knows 176: af als am ")
    assert err[0].endswith(" zh); pass --no-langid to clean without it")
    assert snapshot(d) == before
    clean_main(["--raw-dir", str(d), "--source-lang", SRC, "--target-lang", "xx", "--no-langid"])
    assert (d / "clean.json").exists()


@pytest.mark.parametrize("name, content, message", [
    ("mono", b"fine\nalso fine\n\xff\xfe broken\n", "{d}/mono.{tgt}:3: invalid UTF-8"),
    ("mono", b"", "{d}/mono.{tgt}: empty file"),
    ("train", b"one\n\x00two\n", "{d}/train.{tgt}:2: contains a NUL byte"),
    ("train", b"one line\n", "{d}/train.{src} has 50 lines but {d}/train.{tgt} has 1: "
     "parallel files must be line-aligned"),
    ("test_z", b"x\n", "{d}/test_z.{src}: file not found"),
    ("mono", b"\n \n", "{d}/mono.{tgt}: no lines left after cleaning (dropped: {{'empty': 2}})"),
], ids=["invalid-utf8", "empty-file", "nul-byte", "line-counts", "test-side-missing",
        "nothing-left"])
def test_bad_input_one_line_nothing_written(tmp_path, capsys, name, content, message):
    d, _ = mixed(tmp_path)
    (d / f"{name}.{TGT}").write_bytes(content)
    before = snapshot(d)
    with pytest.raises(SystemExit) as e:
        clean(d)
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2
    assert err == ["fairseq-bt-clean: error: " + message.format(d=d, src=SRC, tgt=TGT)]
    assert snapshot(d) == before  # no file changed, no temp file, no clean.json


def test_command_and_full_disk(tmp_path):
    """The real command under a file size limit that the cleaned mono file cannot fit under
    (as on a full disk): one line naming it, exit status 2, and the bitext, written first, is
    not moved into place without it. Without the limit the same folder cleans."""
    d, _ = mixed(tmp_path)
    write_lines(d / f"mono.{TGT}", ["The cat sleeps."] + ["A dog runs in the park."] * 3 +
                [f"Line number {i} is an English sentence." for i in range(3000)])
    write_lines(d / f"train.{SRC}", ["Il  pleut."] * 50)  # cleaning changes it (one space)
    before = snapshot(d)
    cmd = [sys.executable, "-m", "fairseq_bt_plugin.cleaning.clean", "--raw-dir", str(d)] + \
        LANGS + ["--no-langid"]
    limit = 100_000  # mono.TGT is 128 kB, cleaned 128 kB; every other file is smaller
    p = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=lambda: (
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))))
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines() == [
        f"fairseq-bt-clean: error: {d}/mono.{TGT}: File too large"]
    assert snapshot(d) == before
    summary = clean(d, "--no-langid")  # without the limit
    assert summary["corpora"][f"mono.{TGT}"]["lines_out"] == 3002
