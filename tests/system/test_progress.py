"""Progress of the pipeline's stages (fairseq_bt_plugin.stage_runner), the report's timing table,
TensorBoard event files: the status line alone on a fake growing fairseq log (terminal through
a pseudo-terminal, and off a terminal), then the tiny pipeline run of conftest's
``finished_run`` (two rounds; a re-run keeps its times: tests/system/test_pipeline.py)."""
import json
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fairseq_bt_plugin.errors import BTUserError
from fairseq_bt_plugin.report import markdown, stage_timings

from helpers import ROOT, SRC, TGT
from helpers.pipeline import TEST_SET

PROGRESS = ROOT / "fairseq_bt_plugin" / "stage_runner.py"  # run by path, as the stage scripts do

FAKE_TRAINING = r"""
import json, sys, time
print("[2026-01-01 00:00:00,000][fairseq_cli.train][INFO] - {'_name': None, 'optimization': "
      "{'_name': None, 'max_epoch': 0, 'max_update': 4, 'clip_norm': 0.0}}", flush=True)
for u in range(1, 5):
    time.sleep(0.7)
    print("[2026-01-01 00:00:01,000][train_inner][INFO] - "
          + json.dumps({"epoch": 1, "loss": "9.0", "num_updates": str(u)}), flush=True)
    if u == 2:
        print("[2026-01-01 00:00:02,000][valid][INFO] - "
              + json.dumps({"epoch": 1, "valid_loss": "8.125", "valid_num_updates": "2"}),
              flush=True)
time.sleep(1.2)
print("last words", flush=True)
sys.exit(int(sys.argv[1]))
"""


def progress_cmd(tmp_path, *options, status=0):
    fake = tmp_path / "fake_train.py"
    fake.write_text(FAKE_TRAINING)
    return [sys.executable, str(PROGRESS), "--stage", "train", "--name",
            "fake", "--timings", str(tmp_path / "timings.jsonl"), "--log",
            str(tmp_path / "train.stdout"), *options, "--", sys.executable, str(fake), str(status)]


def run_on_terminal(cmd):
    """Run ``cmd`` with stderr on a pseudo-terminal; what it wrote there, and its status."""
    master, slave = pty.openpty()
    p = subprocess.Popen(cmd, stderr=slave, stdout=subprocess.DEVNULL)
    os.close(slave)
    out = b""
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # the other side closed
            break
        if not data:
            break
        out += data
    os.close(master)
    return out.decode(), p.wait()


def test_a_terminal_gets_one_live_line(tmp_path):
    out, status = run_on_terminal(progress_cmd(tmp_path, "--interval", "60"))
    assert status == 0, out
    live = out.split("\r\x1b[K")
    # rewritten in place: no line break until the final line
    assert len(live) >= 4 and all("\n" not in x for x in live[1:-1]), repr(out)
    assert any(re.search(r"train fake: update [23]/4 \([57]\d%\) \| 0:0\d elapsed, ~0:0\d left "
                         r"\| valid loss 8.125$", x) for x in live), repr(out)
    assert re.search(r"train fake: done in 0:0\d \| 4/4 updates \| valid loss 8.125\r?\n$",
                     live[-1]), repr(out)
    assert "last words" in (tmp_path / "train.stdout").read_text()  # the full log is kept
    assert "last words" not in out


def test_plain_lines_off_a_terminal_and_beside_a_live_line(tmp_path):
    p = subprocess.run(progress_cmd(tmp_path, "--interval", "1"), capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    lines = p.stderr.splitlines()
    assert "\r" not in p.stderr and "\x1b" not in p.stderr
    assert len(lines) >= 3 and all(x.startswith("  train fake: ") for x in lines), p.stderr
    assert any("update " in x and "/4 (" in x and " elapsed" in x for x in lines[:-1])
    assert re.fullmatch(r"  train fake: done in 0:0\d \| 4/4 updates \| valid loss 8.125",
                        lines[-1])
    # --plain on a terminal (the baseline beside the reverse model): whole lines, each one
    # first clearing the other stage's live line
    out, status = run_on_terminal(progress_cmd(tmp_path, "--interval", "1", "--plain"))
    assert status == 0
    lines = out.replace("\r\n", "\n").rstrip("\n").split("\n")
    assert len(lines) >= 3 and all(x.startswith("\r\x1b[K  train fake: ") for x in lines), out


def test_a_failure_prints_the_last_log_lines_and_records_it(tmp_path):
    p = subprocess.run(progress_cmd(tmp_path, "--interval", "60", status=3), capture_output=True,
                       text=True)
    assert p.returncode == 3
    assert "train fake: failed (exit 3) in 0:0" in p.stderr
    assert p.stderr.rstrip().endswith("last words")
    entry = json.loads((tmp_path / "timings.jsonl").read_text())
    assert entry["status"] == "failed" and entry["stage"] == "train" and entry["seconds"] > 2


def test_a_stopped_stage_stops_its_command(tmp_path):
    """The pipeline's EXIT trap stops a background baseline with SIGTERM: the training under
    the progress line must stop with it, not run on alone."""
    pid_file = tmp_path / "child.pid"
    child = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    p = subprocess.Popen([sys.executable, "-m", "fairseq_bt_plugin.stage_runner", "--stage", "x",
                          "--timings", str(tmp_path / "t.jsonl"), "--log", str(tmp_path / "log"),
                          "--interval", "60", "--", sys.executable, "-c", child],
                         stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (pid_file.exists() and pid_file.read_text()) and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # the stage has run at least this long when stopped
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == 128 + signal.SIGTERM
    child_pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(child_pid, 0)
    entry = json.loads((tmp_path / "t.jsonl").read_text())  # counted when the run resumes
    assert entry["status"] == "stopped" and entry["seconds"] >= 0.5


def test_timings_keep_the_last_finished_run_of_each_stage(tmp_path):
    """... with the runs stopped (Ctrl-C, SIGTERM) just before it added: it resumed them."""
    path = tmp_path / "timings.jsonl"
    rows = [("prepare", "", "done", 3.0), ("train", "reverse", "failed", 50.0),
            ("train", "baseline", "done", 20.0), ("train", "reverse", "done", 40.0),
            ("train", "baseline", "done", 25.0), ("evaluate", "bt", "stopped", 7.0),
            ("train", "bt", "stopped", 30.0), ("train", "bt", "stopped", 12.5),
            ("evaluate", "bt", "failed", 1.0), ("train", "bt", "done", 10.0),
            ("evaluate", "bt", "done", 2.0)]
    path.write_text("".join(json.dumps({"stage": s, "name": n, "status": st, "seconds": x})
                            + "\n" for s, n, st, x in rows))
    t = stage_timings(str(path))
    assert [(x["stage"], x["name"], x["seconds"], x["runs"]) for x in t["stages"]] == [
        ("prepare", "", 3.0, 1), ("train", "baseline", 25.0, 1), ("train", "reverse", 40.0, 1),
        ("train", "bt", 52.5, 3), ("evaluate", "bt", 2.0, 1)]
    assert t["total_seconds"] == 122.5
    assert stage_timings(str(tmp_path / "none.jsonl")) == {"stages": [], "total_seconds": 0}
    # the report's table; a note where stages overlapped (BASELINE_PARALLEL=1)
    empty = {"title": "x", "test_sets": [], "systems": [], "bootstrap": None, "cleaning": None,
             "back_translation": {}, "reused_models": {}, "code": None, "experiment": None,
             "command": "", "timings": t}
    assert "| train | reverse | 0:40 | 33% |" in markdown(empty)
    assert "| train | bt | 0:52 (3 runs) | 43% |" in markdown(empty)
    assert "side by side" not in markdown(empty)
    t["stages"][1].update(start="2026-01-01T00:00:00", end="2026-01-01T00:00:25")
    t["stages"][2].update(start="2026-01-01T00:00:10", end="2026-01-01T00:00:50")
    assert "Some stages ran side by side" in markdown(empty)
    with open(path, "a") as f:
        f.write('{"stage": "train"\n')
    with pytest.raises(BTUserError, match=rf"^{re.escape(str(path))}:12: not a timing line"):
        stage_timings(str(path))


# --- the tiny pipeline run (conftest's finished_run) ---------------------------------------

#: models -> updates (tiny: 6 updates per model, bt 2 x 6, fine-tuning 0.334 x 6 more)
MODELS = {"reverse": 6, "baseline": 6, "bt": 12, "bt_ft": 14, "reverse_r2": 6, "bt_r2": 12,
          "bt_r2_ft": 14}
#: the synthetic corpora of the two rounds
CORPORA = {f"mono_{TGT}", f"mono_{SRC}_r2", f"mono_{TGT}_r2"}


def test_every_stage_shows_its_progress_off_a_terminal(finished_run):
    work, out = finished_run
    assert "\r" not in out
    for name, max_update in MODELS.items():
        assert re.search(rf"^  train {name}: \d+:\d\d elapsed", out, re.M), name
        assert re.search(rf"^  train {name}: done in \d+:\d\d \| {max_update}/{max_update} "
                         rf"updates \| valid loss \d+\.\d+$", out, re.M), name
        assert re.search(rf"^  evaluate {name} {TEST_SET}: done in \d+:\d\d \| [\d.]+ "
                         rf"sentences/s$", out, re.M), name
        assert re.search(rf"^{name}: BLEU [\d.]+ chrF", out, re.M)  # the scores still shown
        assert (work / "models" / name / "train.stdout").exists()  # fairseq's whole log
        assert "BLEU" in (work / "eval" / TEST_SET / f"{name}.log").read_text()  # evaluation's
    # the generator's own lines, every PROGRESS_INTERVAL seconds and at its end
    assert re.search(r"^fairseq-bt-backtranslate: chunk \d+: \d+ input lines, \d+ sentences "
                     r"decoded in this run, [\d.]+ sentences/s$", out, re.M)


def test_the_report_says_where_the_time_went(finished_run):
    work, _ = finished_run
    report = json.loads((work / "report.json").read_text())
    stages = {(t["stage"], t["name"]): t["seconds"] for t in report["timings"]["stages"]}
    assert {p.name for p in (work / "bt").iterdir()} == CORPORA
    expected = ({("prepare", "")} | {("back-translate", c) for c in CORPORA}
                | {("train", m) for m in MODELS} | {("evaluate", f"{m} {TEST_SET}") for m in MODELS}
                | {("export", "best")})
    assert set(stages) == expected
    assert all(x > 0 for x in stages.values())
    assert report["timings"]["total_seconds"] == pytest.approx(sum(stages.values()), abs=0.1)
    md = (work / "report.md").read_text()
    assert "## Where the time went" in md and "side by side" not in md  # one at a time
    for (stage, name), seconds in stages.items():
        m, s = divmod(int(round(seconds)), 60)
        assert re.search(rf"^\| {stage} \| {name} \| {m}:{s:02d} \| \d+% \|$", md, re.M), name


def tensorboard_scalars(folder: Path):
    """Scalar tag names in the TensorBoard event files of ``folder`` (TFRecord framing:
    length, its CRC, an Event protobuf, its CRC)."""
    from tensorboardX.proto.event_pb2 import Event

    tags = set()
    for path in folder.glob("events.out.tfevents.*"):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            (n,) = struct.unpack("<Q", data[pos:pos + 8])
            event = Event.FromString(data[pos + 12:pos + 12 + n])
            tags |= {v.tag for v in event.summary.value if v.HasField("simple_value")}
            pos += 12 + n + 4
    return tags


def test_every_model_logs_to_tensorboard(finished_run):
    work, _ = finished_run
    assert {p.name for p in (work / "tensorboard").iterdir()} == set(MODELS)
    for name in MODELS:
        train = tensorboard_scalars(work / "tensorboard" / name / "train_inner")
        assert {"loss", "nll_loss", "lr"} <= train, name
        assert "loss" in tensorboard_scalars(work / "tensorboard" / name / "valid"), name
        # the plugin's per-source losses where the model trains on synthetic data too
        if name in ("bt", "reverse_r2", "bt_r2"):
            assert {"loss_bitext", "loss_synth", "synth_frac"} <= train


def test_run_by_path_without_fairseq(tmp_path):
    """The stage scripts' form starts without importing fairseq, torch or omegaconf
    (``-X importtime`` lists every module imported) and records the stage as ``python -m``
    does."""
    timings = tmp_path / "t.jsonl"
    stage = ["--stage", "x", "--name", "y", "--timings", str(timings), "--interval", "5", "--",
             sys.executable, "-c", "pass"]
    by_path = subprocess.run([sys.executable, "-X", "importtime", str(PROGRESS), *stage],
                             capture_output=True, text=True, cwd=tmp_path)
    as_module = subprocess.run([sys.executable, "-m", "fairseq_bt_plugin.stage_runner", *stage],
                               capture_output=True, text=True)
    assert by_path.returncode == 0 and as_module.returncode == 0, by_path.stderr[-2000:]
    modules = {line.rsplit("|", 1)[-1].strip().split(".")[0]
               for line in by_path.stderr.splitlines() if line.startswith("import time:")}
    assert "json" in modules and not {"fairseq", "torch", "omegaconf"} & modules, sorted(modules)
    lines = [json.loads(x) for x in timings.read_text().splitlines()]
    assert [(x["stage"], x["name"], x["status"]) for x in lines] == [("x", "y", "done")] * 2
    help_text = subprocess.run([sys.executable, str(PROGRESS), "--help"], capture_output=True,
                               text=True).stdout
    assert "--interval INTERVAL" in help_text and "JSON-lines file" in help_text
