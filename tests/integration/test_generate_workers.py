"""--workers: the batches of each chunk decoded by several processes and merged in order give
the output of one process, for beam search and for sampling, resume, and die with the run
(real decoding)."""
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from helpers.generate import generate_cmd, make_input, outputs, run_generate

FLAGS = ["--batch-size", "4", "--chunk-size", "10", "--max-len-a", "0", "--max-len-b", "6",
         "--max-len-ratio", "0", "--keep-duplicates", "--keep-identical"]
LINES = 27  # 3 chunks of up to 3 batches


@pytest.mark.parametrize("mode", ["beam", "sample"])
def test_workers_give_the_single_process_output(corpus, reverse_model, tmp_path, mode):
    inp = make_input(corpus, tmp_path / "mono.txt", LINES)
    runs = {}
    for workers in ("1", "2", "0"):  # 0: one per core
        out = tmp_path / f"workers{workers}"
        summary = run_generate(corpus, reverse_model, inp, out, "--mode", mode, "--nbest", "2",
                               "--workers", workers, *FLAGS)
        runs[workers] = outputs(out)
        assert summary["input_lines"] == summary["translated"] == LINES
        assert summary["hypotheses"] == 2 * LINES
        assert len(runs[workers][0]) == len(runs[workers][1]) == summary["output_pairs"]
    assert runs["2"] == runs["1"] and runs["0"] == runs["1"]


def test_resumed_with_other_workers(corpus, reverse_model, tmp_path):
    inp = make_input(corpus, tmp_path / "mono.txt", LINES)
    out = tmp_path / "out"
    flags = ["--mode", "sample", *FLAGS]
    run_generate(corpus, reverse_model, inp, out, *flags, "--workers", "1")
    whole = outputs(out)
    (out / "bt.work" / "chunk-000001.jsonl").unlink()  # as if killed during chunk 1
    run_generate(corpus, reverse_model, inp, out, *flags, "--workers", "2")
    assert outputs(out) == whole


def _alive_children(pid: int):
    """Processes whose parent is ``pid`` and that are not zombies."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


def _dead(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_killed_run_leaves_no_workers(corpus, reverse_model, tmp_path):
    inp = make_input(corpus, tmp_path / "mono.txt", 400)
    proc = subprocess.Popen(generate_cmd(corpus, reverse_model, inp, tmp_path / "out",
                                         "--workers", "2", *FLAGS),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, workers = time.time() + 120, []
    while time.time() < deadline and proc.poll() is None and len(workers) < 2:
        workers = _alive_children(proc.pid)
        time.sleep(0.05)
    assert proc.poll() is None and len(workers) == 2, "no workers seen before the run ended"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline and not all(map(_dead, workers)):
        time.sleep(0.05)
    assert all(map(_dead, workers))
