"""A user's own corpus through nothing but a new experiment file: ``scripts/pipeline.sh
FILE`` with every setting in the file (no environment variables), files plain and .gz,
relative to the file, two named test sets; and a broken file stopping the pipeline with one
line and no raw data left behind."""
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from fairseq_bt_plugin.experiment import loader

from helpers import ROOT, SRC, TATOEBA, TGT, read_lines, write_lines

#: the pipeline's settings, for a run where the environment sets none of them
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in loader.ENV}


def user_corpus(folder: Path) -> None:
    """A user's files: bitext in two parts (one gzipped), a dev set, two test sets, news."""
    folder.mkdir()
    for lang in (SRC, TGT):
        write_lines(folder / f"part1.{lang}", read_lines(TATOEBA / f"train.{lang}", 150))
        with gzip.open(folder / f"part2.{lang}.gz", "wt", encoding="utf-8") as f:
            f.writelines(x + "\n" for x in read_lines(TATOEBA / f"train.{lang}", 150, 150))
        write_lines(folder / f"dev.{lang}", read_lines(TATOEBA / f"valid.{lang}", 40))
        write_lines(folder / f"news.{lang}", read_lines(TATOEBA / f"test.{lang}", 30))
        write_lines(folder / f"web.{lang}", read_lines(TATOEBA / f"test.{lang}", 30, 30))
    write_lines(folder / f"mono.{TGT}", read_lines(TATOEBA / f"train.{TGT}", 101, 600))


def run(exp: Path, cwd: Path):
    env = {**CLEAN_ENV, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run(["bash", str(ROOT / "scripts" / "pipeline.sh"), str(exp)], env=env,
                          cwd=cwd, capture_output=True, text=True, timeout=900)


EXPERIMENT = {
    "name": "my_pair", "source_lang": SRC, "target_lang": TGT, "work": "run",
    "data_dir": "corpus",
    "bitext": {"source": [f"part1.{SRC}", f"part2.{SRC}.gz"],
               "target": [f"part1.{TGT}", f"part2.{TGT}.gz"]},
    "valid": {"source": f"dev.{SRC}", "target": f"dev.{TGT}"},
    "tests": {"news": {"source": f"news.{SRC}", "target": f"news.{TGT}"},
              "web": {"source": f"web.{SRC}", "target": f"web.{TGT}"}},
    "mono": {"files": [f"mono.{TGT}"]},
    "profile": "tiny", "spm_vocab": 300, "eval_beam": 2,
    "bt": {"generate_args": "--max-len-a 1.2 --max-len-b 5"},
    "systems": {"finetune": 0},
}


def test_own_files_through_an_experiment_file_alone(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    user_corpus(folder / "corpus")
    exp = folder / "my_pair.yaml"
    exp.write_text(yaml.safe_dump(EXPERIMENT, sort_keys=False), encoding="utf-8")
    p = run(exp, tmp_path)  # run from elsewhere: work is relative to the current directory
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    work = tmp_path / "run"
    assert f"== data: my_pair (all bitext pairs, all monolingual {TGT} sentences; test sets: " \
        "news web)" in p.stdout
    raw = work / "raw"
    # the bitext was read (300 pairs) and cleaned in place (Moses-normalised: "dit\u202f?"
    # becomes "dit ?"); the test sets are kept as they are
    clean = json.loads((raw / "clean.json").read_text(encoding="utf-8"))["corpora"]["train"]
    assert clean["lines_in"] == 300
    for lang in (SRC, TGT):
        assert len((raw / f"train.{lang}").read_text(encoding="utf-8").splitlines()) == \
            clean["lines_out"]
        for name, skip in (("news", 0), ("web", 30)):
            assert (raw / f"test_{name}.{lang}").read_text(encoding="utf-8").splitlines() == \
                read_lines(TATOEBA / f"test.{lang}", 30, skip)
    assert (raw / "DONE").exists() and not (work / "raw.tmp").exists()
    report = json.loads((work / "report.json").read_text())
    assert {s["system"] for s in report["systems"]} == {"reverse", "baseline", "bt"}
    assert (work / "report.md").read_text().startswith(f"# my_pair {SRC}->{TGT}: baseline vs")
    saved = yaml.safe_load((work / "experiment.yaml").read_text())
    assert saved["work"] == str(work) and saved["profile"] == "tiny"


def test_a_broken_file_stops_with_one_line_and_no_raw_data(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    user_corpus(folder / "corpus")
    (folder / "corpus" / f"web.{TGT}").write_text("one line\n", encoding="utf-8")
    exp = folder / "my_pair.yaml"
    exp.write_text(yaml.safe_dump(EXPERIMENT, sort_keys=False), encoding="utf-8")
    p = run(exp, tmp_path)
    assert p.returncode == 2
    assert p.stderr.splitlines() == [
        f"fairseq-bt-experiment: error: {exp}: tests.web: the "
        f"source side has 30 lines ({folder / 'corpus' / f'web.{SRC}'}) but the target side 1 "
        f"({folder / 'corpus' / f'web.{TGT}'}): parallel files must be line-aligned"], p.stderr
    assert sorted(x.name for x in (tmp_path / "run").iterdir()) == ["experiments"]


def test_the_experiment_file_is_required(tmp_path):
    """No file (or KEY=VALUE first): the usage, exit status 2, nothing started."""
    for args in ([], ["bt.beam=4"]):
        p = subprocess.run(["bash", str(ROOT / "scripts" / "pipeline.sh"), *args], cwd=tmp_path,
                           capture_output=True, text=True)
        assert p.returncode == 2 and "bash scripts/pipeline.sh EXPERIMENT.yaml" in p.stderr
    assert not list(tmp_path.iterdir())
