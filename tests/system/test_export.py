"""fairseq-bt-export: a pipeline run's model as a self-contained CTranslate2 directory whose
card's snippet translates with ctranslate2 and sentencepiece alone (fairseq_bt_plugin and
fairseq never imported), the same translations as the run's model through CTranslate2."""
import json
import re
import shutil
import subprocess
import sys

from helpers import SRC, TGT
from helpers.pipeline import TEST_SET

TOOL = "fairseq-bt-export"


def export(*args):
    return subprocess.run([shutil.which(TOOL), *[str(a) for a in args]], capture_output=True,
                          text=True)


def test_exported_directory_translates_without_this_package(finished_run, tmp_path):
    work = finished_run[0]
    out = tmp_path / "export"
    p = export("--run", work, "--system", "bt", "--output", out)
    assert p.returncode == 0, p.stderr
    for name in ("model.bin", "spm.model", "README.md", "model.json", f"dict.{SRC}.txt",
                 f"dict.{TGT}.txt"):
        assert (out / name).is_file(), name
    assert not list(tmp_path.glob("export.tmp*"))
    info = json.loads((out / "model.json").read_text(encoding="utf-8"))
    assert (info["source_lang"], info["target_lang"], info["quantization"]) == (SRC, TGT, "int8")
    report = json.loads((work / "report.json").read_text(encoding="utf-8"))
    bleu = [s["bleu"] for s in report["systems"] if s["system"] == "bt"]
    assert [s["bleu"] for s in info["run"]["scores"]] == bleu
    assert info["run"]["code"]["commit"] == report["code"]["commit"]
    card = (out / "README.md").read_text(encoding="utf-8")
    assert f"| {TEST_SET} | {bleu[0]} |" in card

    snippet = re.search(r"```python\n(.*?)```", card, flags=re.S).group(1)
    assert len(snippet.strip().splitlines()) <= 12
    (tmp_path / "translate.py").write_text(
        snippet + "assert not any(m.split('.')[0] in ('fairseq', 'fairseq_bt_plugin') "
        "for m in sys.modules)\n", encoding="utf-8")
    source = (work / "raw" / f"test_{TEST_SET}.{SRC}").read_text(encoding="utf-8")
    p = subprocess.run([sys.executable, "-I", str(tmp_path / "translate.py"), str(out)],
                       input=source, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert len(p.stdout.splitlines()) == len(source.splitlines())


def test_an_existing_directory_is_kept_unless_forced(finished_run, tmp_path):
    work = finished_run[0]
    out = tmp_path / "export"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    p = export("--run", work, "--system", "bt", "--output", out)
    assert p.returncode == 2 and "exists (give --force" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and (out / "mine.txt").exists()
    p = export("--run", work, "--system", "bt", "--output", out, "--force", "--quantization",
               "float32")
    assert p.returncode == 0, p.stderr
    assert not (out / "mine.txt").exists()
    assert json.loads((out / "model.json").read_text())["quantization"] == "float32"
    p = export("--run", work, "--system", "nope", "--output", tmp_path / "x")
    assert p.returncode == 2 and "no system 'nope'" in p.stderr
    assert not (tmp_path / "x").exists()
