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
from fairseq_bt_plugin.cleaning.guard import Guard, guard_key

from helpers import SRC, TATOEBA, TGT, write_lines
from helpers.tool_runner import snapshot

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
        (valid[SRC][0], valid[TGT][0]),   # contaminated: valid
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
    assert train["lines_in"] == 29 and train["lines_out"] == 20
    assert train["dropped"] == {"empty": 2, "too_long": 1, "contaminated": 3, "duplicate": 2,
                                "length_ratio": 1}
    assert train["contaminated_by"] == {"valid": 1, "test_a": 1, "test_b": 1}
    assert list(zip(lines(raw / f"train.{SRC}"), lines(raw / f"train.{TGT}"))) == train_in[:20]
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
    assert len(err) == 1 and err[0].startswith(f"fairseq-bt-clean: train 29 -> 20 (dropped: ")


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


GUARDED = "The old man is sitting on the bench."  # a test sentence of 8 words
VARIANTS = {  # each holds GUARDED as the guard compares lines: dropped
    "no final period": "The old man is sitting on the bench",
    "spaced !": "The old man is sitting on the bench !",
    "byte-order mark": "\ufeffThe old man is sitting on the bench.",
    "zero-width space": "The old man\u200b is sitting on the bench.\u200b",
    "inside a longer line": "Look: the old man is sitting on the bench, with his dog.",
}
KEPT = [  # share only a short test sentence ("Yes.") or a few of GUARDED's words
    "Yes, I am sure that he will come tomorrow.",
    "The old man is tired.",
    "A woman is sitting on the bench.",
]


def guarded_folder(tmp_path):
    """test_x: GUARDED and "Yes." (TGT), their translations (SRC); each variant of GUARDED
    and each line of KEPT as a bitext target, a monolingual line of both languages."""
    d = tmp_path / "raw"
    d.mkdir()
    write_lines(d / f"test_x.{SRC}", ["Le vieil homme est assis sur le banc.", "Oui."])
    write_lines(d / f"test_x.{TGT}", [GUARDED, "Yes."])
    src = tatoeba("train", SRC)[:30]
    lines_in = list(VARIANTS.values()) + KEPT
    write_lines(d / f"train.{SRC}", src)
    write_lines(d / f"train.{TGT}", tatoeba("train", TGT)[:30 - len(lines_in)] + lines_in)
    write_lines(d / f"mono.{TGT}", ["A dog runs."] + lines_in)
    write_lines(d / f"mono.{SRC}", ["Un chien court."] + [
        "Il a dit : « le vieil homme est assis sur le banc » puis il est parti."] + KEPT)
    return d


def test_guard_finds_a_test_sentence_changed_or_inside_a_longer_line(tmp_path):
    d = guarded_folder(tmp_path)
    summary = clean(d, "--no-langid")
    train, mono_t, mono_s = (summary["corpora"][k] for k in ("train", f"mono.{TGT}",
                                                              f"mono.{SRC}"))
    assert train["dropped"]["contaminated"] == mono_t["dropped"]["contaminated"] == len(VARIANTS)
    assert train["contaminated_by"] == mono_t["contaminated_by"] == {"test_x": len(VARIANTS)}
    assert lines(d / f"train.{TGT}")[-len(KEPT):] == KEPT
    assert lines(d / f"mono.{TGT}") == ["A dog runs."] + KEPT
    assert mono_s["contaminated_by"] == {"test_x": 1}  # the French sentence inside quotes
    assert lines(d / f"mono.{SRC}") == ["Un chien court."] + KEPT


def test_guard_rule():
    """The key of a line, and a short sentence found only as a whole line."""
    assert guard_key("\ufeffA  dog\u200b RUNS !") == guard_key("« a dog, runs. »") == \
        ("a", "dog", "runs")
    assert guard_key("don't e-mail 3.5 ...") == ("don't", "e-mail", "3.5")
    g = Guard()
    for key in (guard_key(GUARDED), guard_key("Yes."), guard_key("...")):
        g.add("test_x", key)
    assert g.find(guard_key("Yes!")) == ["test_x"] and g.find(guard_key("Yes, sure.")) == []
    assert g.find(guard_key("So the old man is sitting on the bench today")) == ["test_x"]
    assert g.find(guard_key("the old man is sitting on the")) == []
    assert g.find(guard_key("!")) == []


def pair_folders(tmp_path):
    """Two pairs into TGT beside each other, as the multilingual pipeline lays them out:
    SRC-TGT and up-TGT (the source uppercased), each with its own test set."""
    test = {lang: tatoeba("test", lang) for lang in (SRC, TGT)}
    folders = {}
    for lang, f, first in ((SRC, str, 0), ("up", str.upper, 5)):
        d = tmp_path / f"{lang}-{TGT}"
        d.mkdir()
        write_lines(d / f"test_t.{lang}", [f(x) for x in test[SRC][first:first + 5]])
        write_lines(d / f"test_t.{TGT}", test[TGT][first:first + 5])
        folders[lang] = d
    # the other pair's test sentences in SRC-TGT's bitext (target) and monolingual text
    write_lines(folders[SRC] / f"train.{SRC}", tatoeba("train", SRC)[:22])
    write_lines(folders[SRC] / f"train.{TGT}", tatoeba("train", TGT)[:20] + test[TGT][5:7])
    write_lines(folders[SRC] / f"mono.{TGT}", tatoeba("train", TGT)[100:110] + test[TGT][7:8])
    return folders


def test_protect_also_guards_with_the_other_pairs_sets(tmp_path):
    folders = pair_folders(tmp_path)
    d = folders[SRC]
    clean(d, "--no-langid")  # its own sets only: the other pair's test sentences stay
    assert len(lines(d / f"train.{TGT}")) == 22 and len(lines(d / f"mono.{TGT}")) == 11
    summary = clean(d, "--no-langid", "--protect-also", f"up-{TGT}")
    for corpus, n in (("train", 2), (f"mono.{TGT}", 1)):
        assert summary["corpora"][corpus]["contaminated_by"] == {f"up-{TGT}/test_t": n}
    assert summary["protected"][f"up-{TGT}/test_t.{TGT}"] == 5  # up-TGT's .up files: not SRC
    assert f"up-{TGT}/test_t.up" not in summary["protected"]
    assert lines(d / f"train.{TGT}") == tatoeba("train", TGT)[:20]


@pytest.mark.parametrize("other", ["train", "test_t"])
def test_a_valid_set_mostly_in_the_bitext_or_a_test_set(tmp_path, capsys, other):
    """Valid pairs found elsewhere: 2 of 4 are dropped from the bitext (valid_shared counts
    them); 3 of 4 are an error naming both corpora, nothing written."""
    d = pair_folders(tmp_path)[SRC]
    files = {lang: lines(d / f"{other}.{lang}") for lang in (SRC, TGT)}
    for lang in (SRC, TGT):
        write_lines(d / f"valid.{lang}", files[lang][:2] + tatoeba("valid", lang)[:2])
    summary = clean(d, "--no-langid")
    assert summary["valid_shared"] == {"train": 2 if other == "train" else 0,
                                       "test_t": 2 if other == "test_t" else 0}
    if other == "train":
        assert summary["corpora"]["train"]["contaminated_by"] == {"valid": 2}
    for lang in (SRC, TGT):
        write_lines(d / f"valid.{lang}", files[lang][2:5] + tatoeba("valid", lang)[:1])
    before = snapshot(d)
    with pytest.raises(SystemExit) as e:
        clean(d, "--no-langid")
    assert e.value.code == 2 and snapshot(d) == before
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"fairseq-bt-clean: error: {d}/valid.{SRC}, {d}/valid.{TGT}: 3 of the 4 valid pairs "
        f"are also pairs of {d}/{other}.{SRC}, {d}/{other}.{TGT}: the valid set must be held "
        f"out from {'training' if other == 'train' else 'the test set'}")


def test_byte_order_marks(tmp_path):
    """A byte-order mark starting a file is not text: the bitext and monolingual files are
    written without it; the valid and test files (never changed) guard without it."""
    d = guarded_folder(tmp_path)
    write_lines(d / f"valid.{SRC}", ["Bonjour tout le monde.", "Il pleut."])
    write_lines(d / f"valid.{TGT}", ["Hello everybody.", "It rains."])
    write_lines(d / f"mono.{TGT}", ["Hello everybody", "A dog runs."])
    first = {name: lines(d / name)[0] for name in (f"train.{SRC}", f"mono.{SRC}")}
    for name in list(first) + [f"valid.{TGT}", f"test_x.{TGT}"]:
        (d / name).write_bytes(b"\xef\xbb\xbf" + (d / name).read_bytes())
    summary = clean(d, "--no-langid", "--no-normalise")
    for name, line in first.items():
        assert lines(d / name)[0] == line, name
    assert summary["corpora"][f"mono.{TGT}"]["contaminated_by"] == {"valid": 1}
    assert (d / f"valid.{TGT}").read_bytes().startswith(b"\xef\xbb\xbf")  # never changed
