"""The tiny pipeline run of the system tests: ``scripts/pipeline.sh`` on an experiment file
(:func:`experiment_file`) that takes :data:`RAW`'s lines of the committed Tatoeba slice
(tests/data/); the profile and small settings come from environment variables (:data:`ENV`),
which override the file."""
import os
import subprocess
import sys
from pathlib import Path

import yaml

from helpers import ROOT, SRC, TATOEBA, TGT


#: raw/ split -> (slice file, lines, first line) per language: mono texts are other lines of
#: the training slice than the bitext, and not translations of each other; one test set
#: (``test_NAME``), named TEST_SET
TEST_SET = "tatoeba"
RAW = {"train": {SRC: ("train", 300, 0), TGT: ("train", 300, 0)},
       "valid": {SRC: ("valid", 40, 0), TGT: ("valid", 40, 0)},
       f"test_{TEST_SET}": {SRC: ("test", 37, 0), TGT: ("test", 37, 0)},
       "mono": {SRC: ("train", 101, 800), TGT: ("train", 101, 600)}}
#: chunks of 30 lines: the 101 monolingual lines are 4 chunks, for sharded back-translation
#: a progress line every second (tests/system/test_progress.py reads them)
#: no export stage (a CTranslate2 conversion each run) but where a test asks for it
ENV = dict(PROFILE="tiny", SPM_VOCAB="300", EVAL_BEAM="2", PROGRESS_INTERVAL="1",
           BT_ARGS="--max-len-a 1.2 --max-len-b 5 --chunk-size 30", EXPORT_SYSTEM="")
#: the export stage on, as the pipeline's default
EXPORT = {"EXPORT_SYSTEM": "best"}


def experiment_file(path: Path, **keys) -> Path:
    """An experiment file (at ``path``) whose data are :data:`RAW`'s lines, plus ``keys``."""
    def parallel(split):
        name, n, skip = RAW[split][SRC]
        return {"source": [str(TATOEBA / f"{name}.{SRC}")],
                "target": [str(TATOEBA / f"{name}.{TGT}")], "max_pairs": n, "skip": skip}

    def mono(lang):
        name, n, skip = RAW["mono"][lang]
        return {"files": [str(TATOEBA / f"{name}.{lang}")], "max_lines": n, "skip": skip}

    exp = {"name": "tiny", "source_lang": SRC, "target_lang": TGT, "bitext": parallel("train"),
           "valid": parallel("valid"), "tests": {TEST_SET: parallel(f"test_{TEST_SET}")},
           "mono": mono(TGT), "mono_source": mono(SRC), **keys}
    path.write_text(yaml.safe_dump(exp, sort_keys=False), encoding="utf-8")
    return path


def pipeline(work: Path, rounds: int = 1, extra_env=None, args=(), **popen):
    """``scripts/pipeline.sh EXPERIMENT args`` into ``work`` (the experiment file beside it,
    :func:`experiment_file` unless one is there)."""
    exp = work.with_name(f"{work.name}.yaml")
    if not exp.exists():
        experiment_file(exp)
    env = {**os.environ, **ENV, "WORK": str(work), "ROUNDS": str(rounds), **(extra_env or {}),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.Popen(["bash", str(ROOT / "scripts" / "pipeline.sh"), str(exp), *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            **popen)


def finish(p):
    out, _ = p.communicate(timeout=900)
    assert p.returncode == 0, out[-3000:]
    return out


def lines(path: Path) -> int:
    with open(path, encoding="utf-8") as f:
        return sum(1 for _ in f)
