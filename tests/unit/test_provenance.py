"""The stage stamps (fairseq_bt_plugin/provenance.py, run by its path as the stages run it):
reuse when settings and inputs match, one line naming the difference otherwise."""
import json
import subprocess
import sys

import pytest

from helpers import ROOT

TOOL = ROOT / "fairseq_bt_plugin" / "provenance.py"


def provenance(command, stamp, work, settings=(), inputs=(), redo="Delete it."):
    """The tool as a stage calls it: (exit status, stderr)."""
    argv = [sys.executable, str(TOOL), command, str(stamp), "--work", str(work)]
    argv += [a for s in settings for a in ("--setting", s)]
    argv += [a for i in inputs for a in ("--input", str(i))]
    if command == "check":
        argv += ["--redo", redo]
    p = subprocess.run(argv, capture_output=True, text=True)
    return p.returncode, p.stderr


@pytest.fixture
def made(tmp_path):
    """WORK with a model checkpoint, a corpus folder and a file outside WORK, and the stamp of
    an output made from all three."""
    work = tmp_path / "work"
    (work / "models" / "m").mkdir(parents=True)
    (work / "models" / "m" / "checkpoint_best.pt").write_bytes(b"weights")
    (work / "bt" / "c" / "bin").mkdir(parents=True)
    (work / "bt" / "c" / "bin" / "train.idx").write_bytes(b"ids")
    outside = tmp_path / "corpus.txt"
    outside.write_text("a line\n")
    inputs = [work / "models" / "m" / "checkpoint_best.pt", work / "bt" / "c" / "bin", outside]
    stamp = work / "models" / "out" / "DONE"
    stamp.parent.mkdir(parents=True)
    settings = ["profile=tiny", "++task.bt_data=WORK/bt/c/bin"]
    assert provenance("record", stamp, work, settings, inputs) == (0, "")
    return work, stamp, settings, inputs


def test_the_stamp_records_settings_and_content(made):
    work, stamp, settings, inputs = made
    record = json.loads(stamp.read_text())
    assert record["settings"] == settings
    assert set(record["inputs"]) == {"WORK/models/m/checkpoint_best.pt", "WORK/bt/c/bin",
                                     str(inputs[2])}
    import hashlib
    assert record["inputs"]["WORK/models/m/checkpoint_best.pt"] == \
        hashlib.sha256(b"weights").hexdigest()


def test_same_settings_and_inputs_are_reused(made):
    work, stamp, settings, inputs = made
    assert provenance("check", stamp, work, list(reversed(settings)), inputs) == (0, "")
    assert provenance("check", work / "models" / "new" / "DONE", work, settings, inputs)[0] == 1


def test_another_setting_is_named(made):
    work, stamp, settings, inputs = made
    code, err = provenance("check", stamp, work, ["profile=cpu_demo", settings[1]], inputs,
                           f"Delete {stamp.parent}.")
    assert code == 2 and err.splitlines() == [
        f"error: {stamp.parent} is not what this run asks for: it was made with "
        f"'profile=tiny', now 'profile=cpu_demo'. Delete {stamp.parent}."]
    code, err = provenance("check", stamp, work, settings + ["common.seed=2"], inputs)
    assert code == 2 and "'common.seed=2' is new" in err


def test_an_input_made_again_makes_it_stale(made):
    """A retrained model has other bytes: everything made from it is stale; a corpus file
    changed inside a folder input too; a gone model under WORK is named."""
    work, stamp, settings, inputs = made
    inputs[0].write_bytes(b"retrained")
    code, err = provenance("check", stamp, work, settings, inputs)
    assert code == 2 and err.splitlines() == [
        f"error: {stamp.parent} is not what this run asks for: "
        "WORK/models/m/checkpoint_best.pt, which it was made from, changed since (made again "
        "or replaced). Delete it."]
    inputs[0].write_bytes(b"weights")
    assert provenance("check", stamp, work, settings, inputs)[0] == 0
    (inputs[1] / "train.idx").write_bytes(b"other ids")
    code, err = provenance("check", stamp, work, settings, inputs)
    assert code == 2 and "WORK/bt/c/bin, which it was made from, changed since" in err
    (inputs[1] / "train.idx").write_bytes(b"ids")
    inputs[0].unlink()
    code, err = provenance("check", stamp, work, settings, inputs[1:])
    assert code == 2 and "WORK/models/m/checkpoint_best.pt, which it was made from, is gone" \
        in err


def test_a_file_outside_work_is_checked_when_present(made):
    """A corpus outside WORK that changed is named; one that is gone (WORK copied to another
    machine without it) is not checked."""
    work, stamp, settings, inputs = made
    inputs[2].write_text("another line\n")
    code, err = provenance("check", stamp, work, settings, inputs[:2])
    assert code == 2 and f"{inputs[2]}, which it was made from, changed since" in err
    inputs[2].unlink()
    assert provenance("check", stamp, work, settings, inputs[:2]) == (0, "")


def test_a_moved_work_is_the_same(made, tmp_path):
    import shutil

    work, stamp, settings, inputs = made
    moved = tmp_path / "moved"
    shutil.move(str(work), moved)
    inputs = [moved / "models" / "m" / "checkpoint_best.pt", moved / "bt" / "c" / "bin",
              inputs[2]]
    assert provenance("check", moved / "models" / "out" / "DONE", moved, settings,
                      inputs) == (0, "")


@pytest.mark.parametrize("old", ["", "profile=tiny\n"])
def test_a_mark_without_a_record_is_not_reused(made, old):
    """An empty DONE, or one of an older version (settings lines, no inputs): not reused."""
    work, stamp, settings, inputs = made
    stamp.write_text(old)
    code, err = provenance("check", stamp, work, settings, inputs)
    assert code == 2 and "it was made without a record of its settings and inputs" in err


def test_digests_are_cached_by_size_and_time(made):
    """A second check reads no file again: the digests are in WORK/.digests.json."""
    work, stamp, settings, inputs = made
    cache = json.loads((work / ".digests.json").read_text())
    assert str(inputs[0]) in cache and str(inputs[1] / "train.idx") in cache
    before = (work / ".digests.json").stat().st_mtime_ns
    assert provenance("check", stamp, work, settings, inputs)[0] == 0
    assert (work / ".digests.json").stat().st_mtime_ns == before


def test_a_json_setting_names_the_keys_that_differ(made):
    """The data stage's setting (the experiment's data keys as JSON): the keys, not the JSON."""
    work, stamp, _, inputs = made
    data = {"bitext": {"max_pairs": 300, "skip": 0}, "cleaning": {"no_dedup": False}}
    provenance("record", stamp, work, ["data=" + json.dumps(data)], inputs)
    data["bitext"]["max_pairs"], data["cleaning"]["no_dedup"] = 100, True
    code, err = provenance("check", stamp, work, ["data=" + json.dumps(data)], inputs)
    assert code == 2 and err.splitlines() == [
        f"error: {stamp.parent} is not what this run asks for: it was made with data: "
        "bitext.max_pairs 300, now 100, cleaning.no_dedup false, now true. Delete it."]
