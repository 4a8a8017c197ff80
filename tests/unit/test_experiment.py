"""Experiment files (fairseq_bt_plugin/experiment/): the raw data they name, downloads checked
against md5, overrides (environment variables, KEY=VALUE), and each error as one line that
names the file and the key, with nothing left behind. Data: the committed Tatoeba slice."""
import functools
import gzip
import hashlib
import http.server
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from fairseq_bt_plugin.errors import BTUserError
from fairseq_bt_plugin.experiment import cli, config, loader
from fairseq_bt_plugin.experiment.raw import materialise

from helpers import ROOT, SHARED_DATA, SRC, TATOEBA, TGT, TYPOED_SETTINGS, read_lines, write_lines

EXPERIMENTS = ROOT / "configs" / "experiments"


def write_experiment(path: Path, src: str, tgt: str, **keys) -> Path:
    """An experiment over the slice: 200 bitext pairs, valid 30, two test sets of 20, 50 mono
    lines of other training sentences; ``keys`` replace top-level keys."""
    def side(name, lang):
        return [str(TATOEBA / f"{name}.{lang}")]

    exp = {"name": "mine", "source_lang": src, "target_lang": tgt,
           "bitext": {"source": side("train", src), "target": side("train", tgt),
                      "max_pairs": 200},
           "valid": {"source": side("valid", src), "target": side("valid", tgt),
                     "max_pairs": 30},
           "tests": {"first": {"source": side("test", src), "target": side("test", tgt),
                               "max_pairs": 20},
                     "second": {"source": side("test", src), "target": side("test", tgt),
                                "skip": 20, "max_pairs": 20}},
           "mono": {"files": side("train", tgt), "skip": 500, "max_lines": 50}, **keys}
    path.write_text(yaml.safe_dump(exp, sort_keys=False), encoding="utf-8")
    return path


def raw_of(path: Path, out: Path, overrides=(), env=None):
    exp = loader.load(str(path), list(overrides), env)
    return materialise(exp, str(path), str(out))


def lines(path: Path):
    return path.read_text(encoding="utf-8").splitlines()


def test_raw_data_with_two_named_test_sets(tmp_path):
    src, tgt = SRC, TGT
    summary = raw_of(write_experiment(tmp_path / "e.yaml", src, tgt), tmp_path / "raw")
    want = {"train": ("train", 200, 0), "valid": ("valid", 30, 0), "test_first": ("test", 20, 0),
            "test_second": ("test", 20, 20)}
    for split, (name, n, skip) in want.items():
        for lang in (src, tgt):
            assert lines(tmp_path / "raw" / f"{split}.{lang}") == \
                read_lines(TATOEBA / f"{name}.{lang}", n, skip)
        assert summary[split]["kept"] == n
    assert lines(tmp_path / "raw" / f"mono.{tgt}") == read_lines(TATOEBA / f"train.{tgt}", 50, 500)
    assert not (tmp_path / "raw" / f"mono.{src}").exists()  # no mono_source given
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == sorted(
        [f"{s}.{lang}" for s in want for lang in (src, tgt)]
        + [f"mono.{tgt}", "data.json", "sources.txt"])
    # every corpus file read, once, by its absolute path (the data stage's record)
    assert (tmp_path / "raw" / "sources.txt").read_text().splitlines() == [
        str(TATOEBA / f"{name}.{lang}") for name in ("train", "valid", "test")
        for lang in (src, tgt)]


def test_mono_exclude_dedup_and_shuffle(tmp_path):
    """exclude, dedup and blank lines before the cap; shuffle with skip keeps a bitext and the
    mono text of the same file apart."""
    src, tgt = SRC, TGT
    a, b = read_lines(TATOEBA / f"train.{tgt}", 5), read_lines(TATOEBA / f"train.{tgt}", 5, 5)
    write_lines(tmp_path / "m.txt", [a[0], "  ", b[0], a[1], b[0], b[1], b[2], b[3]])
    write_lines(tmp_path / "x.txt", a)
    with gzip.open(tmp_path / "m2.txt.gz", "wt", encoding="utf-8") as f:
        f.write(b[4] + "\n")
    exp = write_experiment(tmp_path / "e.yaml", src, tgt, mono={
        "files": ["m.txt", "m2.txt.gz"], "exclude": ["x.txt"], "dedup": True, "max_lines": 4})
    summary = raw_of(exp, tmp_path / "raw")
    assert lines(tmp_path / "raw" / f"mono.{tgt}") == b[:4]
    assert {k: v for k, v in summary[f"mono.{tgt}"].items() if k != "files"} == {
        "exclude_files": 1, "lines_read": 8, "blank": 1, "excluded": 2, "duplicates": 1,
        "kept": 4}
    n = len(read_lines(TATOEBA / f"train.{tgt}", 10 ** 6))
    shuffled = write_experiment(
        tmp_path / "s.yaml", src, tgt,
        bitext={"source": [str(TATOEBA / f"train.{src}")],
                "target": [str(TATOEBA / f"train.{tgt}")], "shuffle": True, "max_pairs": 300},
        mono={"files": [str(TATOEBA / f"train.{tgt}")], "shuffle": True, "skip": 300})
    raw_of(shuffled, tmp_path / "raw2")
    bitext, mono = lines(tmp_path / "raw2" / f"train.{tgt}"), lines(tmp_path / "raw2" / f"mono.{tgt}")
    assert bitext != read_lines(TATOEBA / f"train.{tgt}", 300)  # shuffled
    assert len(bitext) + len(mono) == n  # every line once: the same order, split at 300
    assert sorted(bitext + mono) == sorted(read_lines(TATOEBA / f"train.{tgt}", n))


def test_byte_order_marks_are_not_text(tmp_path):
    """Corpus files that start with a byte-order mark (bitext, valid, test, mono; plain and
    gzip): the raw data is written without it."""
    src, tgt = SRC, TGT
    names = {"train": 200, "valid": 30, "test": 40}
    for name, n in names.items():
        for lang in (src, tgt):
            write_lines(tmp_path / f"{name}.{lang}", read_lines(TATOEBA / f"{name}.{lang}", n))
    with gzip.open(tmp_path / "mono.gz", "wt", encoding="utf-8") as f:
        f.write("".join(x + "\n" for x in read_lines(TATOEBA / f"train.{tgt}", 50, 500)))
    for path in [p for p in tmp_path.iterdir() if p.suffix != ".gz"]:
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    with gzip.open(tmp_path / "mono.gz", "rb") as f:
        data = f.read()
    with gzip.open(tmp_path / "mono.gz", "wb") as f:
        f.write(b"\xef\xbb\xbf" + data)
    exp = write_experiment(tmp_path / "e.yaml", src, tgt, data_dir=str(tmp_path), **{
        k: {"source": [f"{f}.{src}"], "target": [f"{f}.{tgt}"]}
        for k, f in (("bitext", "train"), ("valid", "valid"))},
        tests={"t": {"source": [f"test.{src}"], "target": [f"test.{tgt}"]}},
        mono={"files": ["mono.gz"]})
    raw_of(exp, tmp_path / "raw")
    for split, (name, n) in zip(("train", "valid", "test_t"), names.items()):
        for lang in (src, tgt):
            assert lines(tmp_path / "raw" / f"{split}.{lang}") == \
                read_lines(TATOEBA / f"{name}.{lang}", n)
    assert lines(tmp_path / "raw" / f"mono.{tgt}") == read_lines(TATOEBA / f"train.{tgt}", 50, 500)


class Server:
    """A local HTTP server for a folder (no network)."""

    def __init__(self, folder: Path):
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
        handler.log_message = lambda *a: None
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_url_downloaded_once_into_the_cache_and_md5_checked(tmp_path):
    src, tgt = SRC, TGT
    site = tmp_path / "site"
    site.mkdir()
    for lang in (src, tgt):
        (site / f"dev.{lang}").write_bytes((TATOEBA / f"valid.{lang}").read_bytes())
    server = Server(site)
    valid = {"source": [{"url": f"{server.url}/dev.{src}", "md5": md5(site / f"dev.{src}")}],
             "target": [{"path": "no_such_file", "url": (site / f"dev.{tgt}").as_uri(),
                         "md5": md5(site / f"dev.{tgt}")}]}
    exp = write_experiment(tmp_path / "e.yaml", src, tgt, valid=valid,
                           cache_dir=str(tmp_path / "cache"))
    raw_of(exp, tmp_path / "raw")
    assert lines(tmp_path / "raw" / f"valid.{tgt}") == lines(TATOEBA / f"valid.{tgt}")
    cached = tmp_path / "cache" / md5(site / f"dev.{src}") / f"dev.{src}"
    assert cached.read_bytes() == (site / f"dev.{src}").read_bytes()
    server.close()  # once downloaded, no network needed
    raw_of(exp, tmp_path / "raw_again")
    assert lines(tmp_path / "raw_again" / f"valid.{src}") == lines(TATOEBA / f"valid.{src}")
    # a download whose md5 is not the file's: refused, nothing cached, nothing written
    server = Server(site)
    valid["source"][0] = {"url": f"{server.url}/dev.{src}", "md5": "0" * 32}
    bad = write_experiment(tmp_path / "bad.yaml", src, tgt, valid=valid,
                           cache_dir=str(tmp_path / "cache"))
    with pytest.raises(BTUserError, match=rf"^{bad}: valid.source\[0\]: {server.url}/dev.{src} "
                       r"\(download corrupted, or a wrong md5\): md5 [0-9a-f]{32}, expected 0{32}$"):
        raw_of(bad, tmp_path / "raw_bad")
    assert not (tmp_path / "cache" / ("0" * 32)).exists() or \
        not list((tmp_path / "cache" / ("0" * 32)).iterdir())
    assert not (tmp_path / "raw_bad").exists()
    server.close()


def test_env_and_key_value_override_the_file(tmp_path):
    """File < environment variables (set, even empty) < KEY=VALUE; the pipeline's settings."""
    src, tgt = SRC, TGT
    path = write_experiment(tmp_path / "e.yaml", src, tgt, bt={"beam": 3, "nbest": 2,
                                                              "weights": "sequence"},
                            work="runs/x")
    exp = loader.load(str(path), ["bt.beam=4", "tests.first.max_pairs=10"],
                      {"BT_BEAM": "5", "BT_TAG": "", "BITEXT": "100", "TEST": "7",
                       "BASELINE_PARALLEL": "", "ROUNDS": "1", "UNRELATED": "x"})
    assert exp.bt.beam == 4 and exp.bt.tag == "" and exp.bitext.max_pairs == 100
    assert exp.tests["first"].max_pairs == 10 and exp.tests["second"].max_pairs == 7
    assert exp.baseline_parallel is None and exp.work == os.path.abspath("runs/x")
    settings = cli.shell_settings(exp, "")
    assert settings["BT_BEAM"] == "4" and settings["BT_TAG"] == "" and settings["TEST_SETS"] == \
        "first second"
    assert settings["BT_GENERATE_FLAGS"] == "--nbest 2 --weights sequence"
    assert settings["BT_ARGS"] == "" and settings["BT_TRAIN_ARGS"] == ""  # the keys' own values
    assert settings["BT_OVERRIDES"] == "++task.bt_weighted=true"
    assert settings["CLEAN_ARGS"] == "" and settings["BT_CORPUS"] == ""
    assert cli.shell_settings(loader.load(str(path), [], {"BT_CORPUS": "mono_topk"}),
                              "")["BT_CORPUS"] == "mono_topk"
    exp = loader.load(str(path), ["cleaning.no_langid=true", "cleaning.max_chars=300"],
                      {"BT_ARGS": "--fp16", "BASELINE_PARALLEL": "1", "WORK": "elsewhere"})
    settings = cli.shell_settings(exp, "")
    assert settings["BT_GENERATE_FLAGS"] == "--nbest 2 --weights sequence --fp16"
    assert settings["BT_ARGS"] == "--fp16"
    assert settings["CLEAN_ARGS"] == "--max-chars 300 --no-langid"  # fairseq: a flag flips a bool
    assert settings["BASELINE_PARALLEL"] == "1" and settings["WORK"] == os.path.abspath("elsewhere")


def test_settings_command_prints_shell_assignments(tmp_path, monkeypatch):
    """What pipeline.sh evaluates: quoted assignments; --save writes
    WORK/experiments/SHA.yaml (named by its contents: other settings, another file), which
    loads to the same settings."""
    path = write_experiment(tmp_path / "e.yaml", SRC, TGT,
                            work=str(tmp_path / "w"), train_args="a='x y' b")
    env = {**os.environ, "BT_TAG": "", "PYTHONPATH": str(ROOT)}
    script = ('eval "$("$2" -m fairseq_bt_plugin.experiment settings "$1" bt.beam=7 --save)"'
              ' && printf "%s|%s|%s|%s" "$BT_TAG" "$BT_BEAM" "$TRAIN_ARGS" "$EXPERIMENT_FILE"')
    p = subprocess.run(["bash", "-c", script, "-", str(path), sys.executable], env=env,
                       capture_output=True,
                       text=True, cwd=tmp_path)
    saved = Path(p.stdout.split("|")[-1])
    assert p.returncode == 0 and p.stdout == f"|7|a='x y' b|{saved}", p.stderr
    assert saved.parent == tmp_path / "w" / "experiments" and saved.suffix == ".yaml"
    assert not (tmp_path / "w" / "experiment.yaml").exists()  # the pipeline's, at its report
    other = subprocess.run(["bash", "-c", script.replace("bt.beam=7", "bt.beam=8"), "-",
                            str(path), sys.executable], env=env, capture_output=True,
                           text=True, cwd=tmp_path)
    assert other.returncode == 0 and Path(other.stdout.split("|")[-1]) != saved
    assert "beam: 7" in saved.read_text()
    monkeypatch.chdir(tmp_path)  # relative work and cache_dir: the current directory's
    again = loader.load(str(saved))
    assert again.bt.beam == 7 and again.bt.tag == "" and again == loader.load(
        str(path), ["bt.beam=7"], {"BT_TAG": ""})


def test_example_file_is_generated_from_the_schema():
    """configs/experiments/example.yaml has every key with its help (it is what
    ``fairseq-bt-experiment example`` prints) and loads."""
    assert (EXPERIMENTS / "example.yaml").read_text(encoding="utf-8") == cli.example_text()
    exp = loader.load(str(EXPERIMENTS / "example.yaml"))
    assert exp.data_dir == str(EXPERIMENTS / "corpus") and set(exp.tests) == {"news", "web"}


@pytest.mark.parametrize("name", ["multi30k_demo", "multi30k_full", "tatoeba_fr_en"])
def test_shipped_experiments_load(name):
    exp = loader.load(str(EXPERIMENTS / f"{name}.yaml"))
    assert exp.name == name and exp.tests


def test_demo_settings_are_the_former_pipeline_defaults():
    """make demo = the pipeline's settings before experiment files (docs/results/demo.md),
    but for the back-translation backend, ctranslate2 since (same held-out BLEU, faster); no
    filter (the reverse-score filter gained nothing on ``bt_ft``: docs/results/demo-filter.md)."""
    demo = str(EXPERIMENTS / "multi30k_demo.yaml")
    s = cli.shell_settings(loader.load(demo), "")
    assert {k: s[k] for k in ("SRC", "TGT", "BITEXT", "MONO", "SPM_VOCAB", "PROFILE", "BT_TAG",
                              "BT_MODE", "BT_BEAM", "BT_BACKEND", "BT_GENERATE_FLAGS",
                              "BT_OVERRIDES", "BT_UPDATES", "BT_FINETUNE", "BT_NAME", "BT_FILTER", "TRAIN_ARGS", "EVAL_BEAM",
                              "ROUNDS", "BASELINE_PARALLEL", "PROGRESS_INTERVAL")} == {
        "SRC": "de", "TGT": "en", "BITEXT": "3000", "MONO": "10000", "SPM_VOCAB": "4000",
        "PROFILE": "cpu_demo", "BT_TAG": "<BT>", "BT_MODE": "beam", "BT_BEAM": "2",
        "BT_BACKEND": "ctranslate2", "BT_GENERATE_FLAGS": "", "BT_OVERRIDES": "", "BT_UPDATES": "3.0",
        "BT_FINETUNE": "0.334", "BT_NAME": "bt", "BT_FILTER": "", "TRAIN_ARGS": "", "EVAL_BEAM": "5",
        "ROUNDS": "1", "BASELINE_PARALLEL": "", "PROGRESS_INTERVAL": "60"}
    assert s["WORK"] == os.path.abspath("runs/demo")
    # docs/results/demo-filter.md's command: BT_FILTER (or bt.filter) turns the filter on
    assert cli.shell_settings(loader.load(demo, [], {"BT_FILTER": "reverse:0.1"}), "")[
        "BT_FILTER"] == "reverse:0.1"
    s = cli.shell_settings(loader.load(demo, ["bt.filter=dual:0.1"], {}), "")
    assert (s["BT_FILTER"], s["BT_FILTER_METHOD"], s["BT_FILTER_FRACTION"]) == (
        "dual:0.1", "dual", "0.1")


def test_each_setting_is_declared_once_with_its_key(tmp_path):
    """The pipeline's variables come from the schema's metadata (its ``env`` and ``shell``) and
    config.DERIVED: shell_settings gives exactly those, each documented in docs/pipeline.md and
    example.yaml; each variable a stage script or driver requires (``${VAR:?`` or ``${VAR?``) is
    one of them."""
    path = write_experiment(tmp_path / "e.yaml", SRC, TGT, bt={"nbest": 2, "weights": "sequence",
                            "filter": "reverse:0.25", "generate_args": "--fp16",
                            "train_args": "++task.bt_noise_word_dropout=0.1"},
                            baseline_parallel=True)
    settings = cli.shell_settings(loader.load(str(path), ["bitext.max_pairs=0"]), "saved.yaml")
    own = [var for var, keys in loader.ENV.items() if "*" not in keys[0]]
    assert list(settings) == own + list(config.shell_only()) + list(config.DERIVED)
    manual = (ROOT / "docs" / "pipeline.md").read_text(encoding="utf-8")
    manual = manual.split("## Settings and environment variables")[1].split("\n## ")[0]
    assert [var for var in loader.ENV if f"`{var}`" not in manual] == []
    example = " ".join(cli.example_text().replace("#", " ").split())
    assert [var for var in loader.ENV if f"environment variable {var}" not in example] == []
    required = set()
    for script in (ROOT / "scripts").rglob("*.sh"):
        required |= set(re.findall(r"\$\{([A-Z][A-Z_]*):?\?", script.read_text()))
    not_settings = {"VENV", "PYTHON", "DATA", "M30K", "TATOEBA"}  # setup_env.sh, studies
    assert required - not_settings <= set(settings), required - set(settings)


def test_a_driver_hands_on_the_environment_it_was_given(tmp_path):
    """pipeline.sh hands an experiment with pairs to pipeline_multi.sh: the settings it loaded
    are not exported before (MONO holds mono.max_lines but sets mono_source.max_lines too, BITEXT
    the top-level max_pairs but every pair's too), so the second driver loads what the first
    did; export_settings then gives the stages every one."""
    path = write_experiment(tmp_path / "e.yaml", SRC, TGT, work=str(tmp_path / "w"),
                            mono_source={"files": [str(TATOEBA / f"train.{SRC}")],
                                         "max_lines": 7})
    child = """eval "$(python -m fairseq_bt_plugin.experiment settings "$1")"; echo "$DATA_SETTINGS" """
    script = (f'root={ROOT}; source "$root/scripts/stages/driver.sh"; load_settings "$1"; '
              f"[ \"$(bash -c '{child}' - \"$1\")\" = \"$DATA_SETTINGS\" ] || exit 3; "
              'export_settings; bash -c \'echo "$BT_BEAM $MONO $WORK"\'')
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    p = subprocess.run(["bash", "-c", script, "-", str(path)], env=env, capture_output=True,
                       text=True, cwd=tmp_path)
    assert p.returncode == 0 and p.stdout.split() == ["2", "50", str(tmp_path / "w")], p.stderr
    assert '"max_lines": 7' in cli.data_settings(loader.load(str(path)))  # what was compared
    assert loader.load(str(path), [], {"MONO": "5"}).mono_source.max_lines == 5
    # PATIENCE (patience) reaches every model's training as checkpoint.patience
    script = (f'root={ROOT}; source "$root/scripts/stages/driver.sh"; load_settings "$1"; '
              'echo "${train_args[*]}"')
    p = subprocess.run(["bash", "-c", script, "-", str(path)], env={**env, "PATIENCE": "3"},
                       capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 0 and p.stdout.split() == ["checkpoint.patience=3"], p.stderr


# ---- errors: one line naming the file and the key; nothing written -------------------------

def bad_lines(tmp_path: Path, name: str, n: int, lang: str) -> str:
    path = tmp_path / f"{name}.{lang}"
    write_lines(path, read_lines(TATOEBA / f"train.{lang}", n))
    return str(path)


def error_cases(tmp_path: Path, src: str, tgt: str):
    """(keys of the experiment, KEY=VALUE overrides, the error's text after 'FILE: ')"""
    short = {"source": [bad_lines(tmp_path, "short", 9, src)],
             "target": [bad_lines(tmp_path, "long", 10, tgt)]}
    empty = tmp_path / f"empty.{src}"
    empty.write_text("")
    latin1 = tmp_path / f"latin1.{src}"
    latin1.write_bytes("un\ndeux\nd\u00e9j\u00e0\n".encode("latin-1"))
    valid = {"source": [str(TATOEBA / f"valid.{src}")], "target": [str(TATOEBA / f"valid.{tgt}")],
             "max_pairs": 30}  # write_experiment's valid set
    with_md5 = {"source": [{"path": str(TATOEBA / f"valid.{src}"), "md5": "f" * 32}],
                "target": valid["target"]}
    return {
        "missing file": ({}, [f"bitext.source={tmp_path / 'nope'}"],
                         rf"bitext.source\[0\]: {tmp_path / 'nope'}: file not found"),
        "bitext lines": ({"bitext": short}, [], "bitext: the source side has 9 lines .* but the "
                         "target side 10 .*: parallel files must be line-aligned"),
        "valid lines": ({"valid": short}, [], "valid: the source side has 9 lines"),
        "test lines": ({"tests": {"t": short}}, [], "tests.t: the source side has 9 lines"),
        "empty file": ({}, [f"valid.source={empty}"], rf"valid.source\[0\]: {empty}: empty file"),
        "not UTF-8": ({}, [f"valid.source={latin1}"],
                      rf"valid.source\[0\]: {latin1}:3: invalid UTF-8"),
        "out of range": ({}, ["bt.beam=0"], "bt.beam must be >= 1, got 0"),
        "no patience": ({}, ["patience=0"], r"patience must be >= 1, or -1 \(none\), got 0"),
        "unknown language": ({"source_lang": "xx"}, [], "source_lang: unknown language code "
                             "'xx' for the Moses normaliser"),
        "test equals valid": ({"tests": {"same": valid}}, [], "tests.same: the same pairs as "
                              "valid"),
        "unknown key": ({"bitxt": {}}, [], "bitxt: Key 'bitxt' not in 'ExperimentConfig'"),
        "unknown nested key": ({}, ["tests.first.sorce=[a]"],
                               "tests.first.sorce: Key 'sorce' not in 'ParallelConfig'"),
        "wrong type": ({}, ["bitext.max_pairs=many"], "bitext.max_pairs: Value 'many'"),
        "bad md5": ({"valid": with_md5}, [], rf"valid.source\[0\]: {TATOEBA}/valid.{src}: "
                    rf"md5 [0-9a-f]{{32}}, expected f{{32}}"),
        "url without md5": ({}, ["mono.files=[{url: 'https://example.org/m.gz'}]"],
                            r"mono.files\[0\]: url https://example.org/m.gz needs its md5"),
        "rounds without mono_source": ({}, ["systems.rounds=2"],
                                       "mono_source.files: no files given"),
        "corpus name": ({}, ["bt.corpus=../x"], "bt.corpus: '../x': use letters"),
        "copy filtered": ({}, ["bt.mode=copy", "bt.filter=reverse:0.1"],
                          "bt.filter with bt.mode copy .*: leave bt.filter unset"),
        "copy weighted": ({}, ["bt.mode=copy", "bt.weights=uniform"],
                          "bt.weights with bt.mode copy"),
        "copy with copies": ({}, ["bt.mode=copy", "bt.copies=true"],
                             "bt.copies with bt.mode copy"),
        "unknown mode": ({}, ["bt.mode=copies"], "bt.mode: Invalid value 'copies'"),
        "patience twice": ({}, ["patience=5", "train_args='checkpoint.patience=9'"],
                           "patience and train_args both set checkpoint.patience: give it once"),
        "bt.patience twice": ({}, ["bt.patience=5", "bt.train_args='++checkpoint.patience=9'"],
                              "bt.patience and bt.train_args both set checkpoint.patience"),
        "ct2_dir and checkpoint": ({}, [f"reverse_model.ct2_dir={tmp_path}",
                                        f"reverse_model.checkpoint={empty}"],
                                   "reverse_model: give ct2_dir or checkpoint and data, not both"),
        "ct2_dir without spm": ({}, [f"reverse_model.ct2_dir={tmp_path}"],
                                r"reverse_model: ct2_dir needs spm \(its sentencepiece model\)"),
        "ct2_dir filtered": ({}, [f"reverse_model.ct2_dir={tmp_path}",
                                  f"reverse_model.spm={empty}", "bt.filter=reverse:0.1"],
                             "bt.filter with reverse_model.ct2_dir: the filter scores with "
                             "fairseq checkpoints"),
        "target_spm alone": ({}, [f"reverse_model.target_spm={empty}"],
                             "reverse_model.target_spm is for a ct2_dir"),
        "ct2_dir not found": ({}, [f"reverse_model.ct2_dir={tmp_path / 'nope'}",
                                   f"reverse_model.spm={empty}"],
                              f"reverse_model.ct2_dir: {tmp_path / 'nope'}: not found"),
    }


CASES = ["missing file", "bitext lines", "valid lines", "test lines", "empty file", "not UTF-8",
         "out of range", "no patience",
         "unknown language", "test equals valid", "unknown key", "unknown nested key",
         "wrong type", "bad md5", "url without md5", "rounds without mono_source", "corpus name",
         "copy filtered", "copy weighted", "copy with copies", "unknown mode", "ct2_dir and checkpoint",
         "ct2_dir without spm", "ct2_dir filtered", "target_spm alone", "ct2_dir not found",
         "patience twice", "bt.patience twice"]


@pytest.mark.parametrize("case", CASES)
def test_errors_name_the_file_and_the_key(case, tmp_path):
    keys, overrides, message = error_cases(tmp_path, SRC, TGT)[case]
    path = write_experiment(tmp_path / "e.yaml", SRC, TGT, **keys)
    with pytest.raises(BTUserError) as e:
        raw_of(path, tmp_path / "raw", overrides)
    text = str(e.value)
    assert "\n" not in text and text.startswith(f"{path}: "), text
    assert re.search(message, text), text
    assert not (tmp_path / "raw").exists()


@pytest.mark.parametrize("name, bad", [("a,b", ","), ("it's", "'"), ("run[1]", "[ ]")])
def test_a_work_path_that_training_cannot_use(tmp_path, name, bad):
    """A WORK whose path hydra's overrides do not take: one line naming it, from the loader
    and from the pipeline before any work (WORK not made)."""
    path = write_experiment(tmp_path / "e.yaml", SRC, TGT)
    work = tmp_path / name
    message = (f"{path}: work (WORK): {work}: a work directory's path cannot hold {bad} "
               f"(training passes it to hydra, which takes none of "
               f"{loader.WORK_PATH_CHARACTERS} there, and fairseq): choose another folder")
    with pytest.raises(BTUserError) as e:
        loader.load(str(path), [], {"WORK": str(work)})
    assert str(e.value) == message
    env = {**os.environ, "WORK": str(work), "PYTHONPATH": str(ROOT),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    p = subprocess.run(["bash", str(ROOT / "scripts" / "pipeline.sh"), str(path)],
                       capture_output=True, text=True, env=env, cwd=tmp_path)
    assert p.returncode == 2 and p.stderr == f"fairseq-bt-experiment: error: {message}\n"
    assert not work.exists()


def test_command_line_error_is_one_line_and_writes_nothing(tmp_path):
    path = write_experiment(tmp_path / "e.yaml", SRC, TGT,
                            valid={"source": [str(tmp_path / "missing")],
                                   "target": [str(TATOEBA / f"valid.{TGT}")]})
    p = subprocess.run([sys.executable, "-m", "fairseq_bt_plugin.experiment", "raw", str(path),
                        "--out", str(tmp_path / "raw")], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 2 and p.stderr == (
        f"fairseq-bt-experiment: error: {path}: valid.source[0]: {tmp_path / 'missing'}: file "
        "not found\n"), p.stderr
    assert not (tmp_path / "raw").exists()


def test_a_key_given_twice_is_an_error_with_its_line(tmp_path):
    """YAML lets the last of two equal keys win: the file is rejected instead, at the second."""
    path = write_experiment(tmp_path / "e.yaml", SRC, TGT)
    text = path.read_text(encoding="utf-8")
    path.write_text(text + "bt:\n  beam: 3\n  mode: beam\n  beam: 4\n", encoding="utf-8")
    line = len(text.splitlines()) + 4
    where = re.escape(str(path))
    with pytest.raises(BTUserError, match=rf"^{where}:{line}: duplicate key 'beam'$"):
        loader.load(str(path))
    path.write_text(text + f"source_lang: {SRC}\n", encoding="utf-8")
    with pytest.raises(BTUserError, match=rf":{line - 3}: duplicate key 'source_lang'$"):
        loader.load(str(path))


def test_language_codes_like_no_stay_strings(tmp_path):
    """YAML 1.2's booleans: Norwegian (no), and on/off/yes, are codes, not false/true; a bool
    key still takes yes/no."""
    path = write_experiment(tmp_path / "e.yaml", SRC, TGT, allow_any_language=True)
    text = path.read_text(encoding="utf-8")
    assert f"source_lang: {SRC}\n" in text
    path.write_text(text.replace(f"source_lang: {SRC}\n", "source_lang: no\n")
                    + "cleaning: {no_langid: yes}\n", encoding="utf-8")
    exp = loader.load(str(path))
    assert exp.source_lang == "no" and exp.cleaning.no_langid is True
    assert loader.load(str(path), ["source_lang=on"]).source_lang == "on"
    assert loader.load(str(path), ["bt.beam=3", "mono.dedup=true"]).mono.dedup is True


def test_a_variable_like_a_setting_but_none_is_an_error(tmp_path):
    """BT_UPDATE=3 would be ignored without a word: one line naming the closest setting. The
    variables the tests and scripts read themselves (NOT_SETTINGS) and others pass."""
    path = write_experiment(tmp_path / "e.yaml", SRC, TGT)
    for var, close in TYPOED_SETTINGS.items():
        with pytest.raises(BTUserError) as e:
            loader.load(str(path), [], {"BT_BEAM": "3", var: "3"})
        assert str(e.value).startswith(f"{path}: environment variable {var}=3 is not a setting "
                                       f"of the pipeline (did you mean {close}? "), e.value
    env = {**dict.fromkeys(loader.NOT_SETTINGS, "1"), "UNRELATED": "x", "MULTI_UPDATES": "3"}
    assert loader.load(str(path), [], env).multilingual.updates == 3


# ---- the shipped experiments on the real corpora (optional extras: ../shared/data) ----------

def zcat_head(path: Path, n: int):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [line for _, line in zip(range(n), f)]


def raw_text(folder: Path, name: str):
    with open(folder / name, encoding="utf-8") as f:
        return f.readlines()


def multi30k_upstream(site: Path, shared: Path) -> None:
    """The layout of GitHub multi30k/dataset's data/ (task*/raw/FILE) for a local server."""
    for task in ("task1", "task2"):
        (site / task / "raw").mkdir(parents=True)
        for f in (shared / task).glob("*.gz"):
            (site / task / "raw" / f.name).symlink_to(f)


@pytest.mark.shared_data("multi30k")
def test_demo_data_is_the_former_pipelines(tmp_path):
    """multi30k_demo.yaml makes raw/ byte for byte as the pipeline did before experiment files
    (``zcat FILE | head -n N`` of task1 and of ../shared's mono/, which
    task2 + exclude + dedup rebuilds), from ../shared and, without it, downloaded."""
    shared = SHARED_DATA / "multi30k"
    demo = str(EXPERIMENTS / "multi30k_demo.yaml")
    expected = {}
    for lang in ("de", "en"):
        expected[f"train.{lang}"] = zcat_head(shared / "task1" / f"train.{lang}.gz", 3000)
        expected[f"valid.{lang}"] = zcat_head(shared / "task1" / f"val.{lang}.gz", 1014)
        expected[f"test_flickr2016.{lang}"] = zcat_head(
            shared / "task1" / f"test_2016_flickr.{lang}.gz", 1000)
        expected[f"mono.{lang}"] = zcat_head(
            shared / "mono" / f"task2_train.{lang}.dedup_notask1.gz", 10000)
    materialise(loader.load(demo, [f"data_dir={shared}"]), demo, str(tmp_path / "raw"))
    for name, want in expected.items():
        assert raw_text(tmp_path / "raw", name) == want, name
    site = tmp_path / "site"
    multi30k_upstream(site, shared)
    server = Server(site)
    cache = tmp_path / "cache"
    exp = loader.load(demo, [f"data_dir={tmp_path / 'nothing'}", f"vars.upstream={server.url}",
                             f"cache_dir={cache}"])
    materialise(exp, demo, str(tmp_path / "downloaded"))
    server.close()
    assert len(list(cache.glob("*/*.gz"))) == 22  # task1 de/en (12), task2 train de/en (10)
    for name, want in expected.items():
        assert raw_text(tmp_path / "downloaded", name) == want, name


@pytest.mark.shared_data("tatoeba/fra-eng")
def test_tatoeba_example_data(tmp_path):
    """tatoeba_fr_en.yaml: a random 10000 pairs as bitext; 10000 English sentences of other
    pairs of train as monolingual text; dev and test whole."""
    path = str(EXPERIMENTS / "tatoeba_fr_en.yaml")
    summary = materialise(loader.load(path), path, str(tmp_path / "raw"))
    assert {k: v["kept"] for k, v in summary.items()} == {
        "train": 10000, "valid": 2000, "test_tatoeba": 2000, "mono.en": 10000, "mono.fr": 10000}
    assert summary["mono.en"]["duplicates"] > 0  # English sentences with several translations
