"""fairseq-bt-translate: a pipeline run's model translates raw text exactly as the pipeline's
evaluation did (its hypotheses, line for line), from the run (--run/--system), from a checkpoint
inside the run, or with every file given; stdin/stdout; --nbest; bad input one line, exit 2."""
import shutil
import subprocess

from helpers import SRC, TGT, run
from helpers.pipeline import TEST_SET

TOOL = "fairseq-bt-translate"


def translate(*args, **kwargs):
    return subprocess.run([shutil.which(TOOL), "--beam", "2", "--log-interval", "0",
                           *[str(a) for a in args]], capture_output=True, text=True, **kwargs)


def test_translations_are_the_pipelines_hypotheses(finished_run, tmp_path):
    work = finished_run[0]
    source = work / "raw" / f"test_{TEST_SET}.{SRC}"
    hyps = (work / "eval" / TEST_SET / "bt.hyp").read_text(encoding="utf-8")
    out = tmp_path / "bt.out"
    p = translate("--run", work, "--system", "bt", "--input", source, "--output", out)
    assert p.returncode == 0, p.stderr
    assert out.read_text(encoding="utf-8") == hyps
    # CTranslate2 (converted once, here outside the run): every line translated, in order
    p = translate("--run", work, "--system", "bt", "--input", source, "--backend", "ctranslate2",
                  "--ct2-model-dir", tmp_path / "ct2", "--ct2-inter-threads", "1")
    assert p.returncode == 0, p.stderr
    assert len(p.stdout.splitlines()) == len(hyps.splitlines())
    assert (tmp_path / "ct2" / "model.bin").is_file()
    # a checkpoint inside the run: dictionaries, sentencepiece model and languages found
    p = translate("--path", work / "models" / "bt" / "checkpoint_best.pt",
                  input=source.read_text(encoding="utf-8"))
    assert p.returncode == 0, p.stderr
    assert p.stdout == hyps
    # every file given (a copy of the model outside the run); an empty line inserted gives an
    # empty line in its place (the other lines make the same batches: the same translations)
    lines = source.read_text(encoding="utf-8").splitlines()
    lines.insert(2, "")
    expected = hyps.splitlines()
    expected.insert(2, "")
    shutil.copy(work / "models" / "bt" / "checkpoint_best.pt", tmp_path / "model.pt")
    p = translate("--path", tmp_path / "model.pt", "--data", work / "prep" / "bin",
                  "--spm-model", work / "prep" / "spm.model", "-s", SRC, "-t", TGT,
                  input="\n".join(lines) + "\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == expected
    # --nbest 2: two lines per input line, the best first
    p = translate("--run", work, "--system", "bt", "--nbest", "2", input="\n".join(lines) + "\n")
    assert p.returncode == 0, p.stderr
    got = p.stdout.splitlines()
    assert len(got) == 2 * len(lines) and got[0::2] == expected and got[4:6] == ["", ""]


def test_bad_input_is_one_line_exit_2_and_no_output(finished_run, tmp_path):
    work = finished_run[0]
    bad = tmp_path / "bad.txt"
    bad.write_bytes("une phrase\n".encode() + b"\xff\xfe\n")
    good = tmp_path / "good.txt"
    good.write_text("une phrase\n", encoding="utf-8")
    out = tmp_path / "out.txt"
    cases = [
        (["--run", work, "--system", "bt", "--input", bad, "--output", out],
         f"{bad}:2: invalid UTF-8"),
        (["--run", work, "--system", "nope", "--input", bad], "no system 'nope'"),
        (["--path", tmp_path / "missing.pt", "--spm-model", work / "prep" / "spm.model"],
         "checkpoint not found"),
        (["--run", work, "--system", "bt", "-s", TGT, "-t", SRC, "--input", good, "--output",
          out], f"translates {SRC}->{TGT}"),
    ]
    for args, message in cases:
        p = translate(*args)
        assert p.returncode == 2, (args, p.stderr)
        assert message in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert not out.exists()
    run([shutil.which(TOOL), "--help"])
