"""Sharded + merged == single process; killed + resumed == uninterrupted; changed options are
refused (real subprocesses, real decoding)."""
import os
import signal
import subprocess
import time

from fairseq_bt_plugin.generate.cli import main

from helpers.generate import generate_args, generate_cmd, make_input, outputs, run_generate

SAMPLE = ["--mode", "sample", "--nbest", "2", "--batch-size", "4", "--chunk-size", "10",
          "--max-len-a", "0", "--max-len-b", "6", "--max-len-ratio", "0", "--seed", "7"]


def test_sharded_and_merged_equals_single(corpus, reverse_model, tmp_path):
    inp = make_input(corpus, tmp_path / "mono.en", 43)
    single = run_generate(corpus, reverse_model, inp, tmp_path / "single", *SAMPLE)
    shards = []
    for i in range(3):
        d = tmp_path / f"shard{i}"
        run_generate(corpus, reverse_model, inp, d, *SAMPLE, "--num-shards", "3",
                     "--shard-id", str(i))
        shards.append(str(d))
    main(["merge", "--shards", ",".join(shards), "--output-dir", str(tmp_path / "merged")])
    assert outputs(tmp_path / "merged") == outputs(tmp_path / "single")
    import json

    merged = json.loads((tmp_path / "merged" / "bt.summary.json").read_text())
    for key in ("input_lines", "translated", "hypotheses", "filtered", "output_pairs"):
        assert merged[key] == single[key], key


def test_merge_refuses_missing_shard(corpus, reverse_model, tmp_path, capsys):
    inp = make_input(corpus, tmp_path / "mono.en", 12)
    d = tmp_path / "shard0"
    run_generate(corpus, reverse_model, inp, d, *SAMPLE, "--num-shards", "2", "--shard-id", "0")
    try:
        main(["merge", "--shards", str(d), "--output-dir", str(tmp_path / "merged")])
    except SystemExit as e:
        assert e.code == 2
    assert "missing shard ids: [1]" in capsys.readouterr().err
    assert not (tmp_path / "merged" / f"bt.{corpus.src}").exists()


def test_killed_run_resumes_to_uninterrupted_output(corpus, reverse_model, tmp_path):
    inp = make_input(corpus, tmp_path / "mono.en", 100)
    out = tmp_path / "killed"
    flags = SAMPLE[:2] + SAMPLE[4:]  # one sample per line
    proc = subprocess.Popen(generate_cmd(corpus, reverse_model, inp, out, *flags),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    work = out / "bt.work"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if len(list(work.glob("chunk-*.jsonl"))) >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = {p.name: p.stat().st_mtime_ns for p in work.glob("chunk-*.jsonl")}
    assert 2 <= len(done) < 10
    assert not (out / f"bt.{corpus.src}").exists() and not (out / "bt.summary.json").exists()

    subprocess.run(generate_cmd(corpus, reverse_model, inp, out, *flags), check=True,
                   capture_output=True)
    for name, mtime in done.items():  # finished chunks were not decoded again
        assert (work / name).stat().st_mtime_ns == mtime
    run_generate(corpus, reverse_model, inp, tmp_path / "whole", *flags)
    assert outputs(out) == outputs(tmp_path / "whole")


def test_rerun_with_other_options_is_refused(corpus, reverse_model, tmp_path, capsys):
    inp = make_input(corpus, tmp_path / "mono.en", 5)
    out = tmp_path / "out"
    run_generate(corpus, reverse_model, inp, out, *SAMPLE)
    before = (out / f"bt.{corpus.src}").read_bytes()
    try:
        main(generate_args(corpus, reverse_model, inp, out, *SAMPLE[:-1], "8"))
        raise AssertionError("not refused")
    except SystemExit as e:
        assert e.code == 2
    err = capsys.readouterr().err
    assert "other options" in err and "--seed 7 -> 8" in err, err
    assert (out / f"bt.{corpus.src}").read_bytes() == before


def test_rerun_after_the_checkpoint_or_input_changed_is_refused(corpus, reverse_model,
                                                                 tmp_path, capsys):
    """Same paths, new contents (a retrained checkpoint_best.pt, an edited input): the
    finished chunks of the old run are not reused."""
    import shutil

    model = tmp_path / "checkpoint_best.pt"
    shutil.copy(reverse_model, model)
    inp = make_input(corpus, tmp_path / "mono.txt", 5)
    out = tmp_path / "out"
    flags = ["--mode", "greedy", "--chunk-size", "2"]
    run_generate(corpus, model, inp, out, *flags)
    before = (out / f"bt.{corpus.src}").read_bytes()
    run_generate(corpus, model, inp, out, *flags)  # unchanged: resumes (nothing to do)

    def refused(changed):
        try:
            main(generate_args(corpus, model, inp, out, *flags))
            raise AssertionError("not refused")
        except SystemExit as e:
            assert e.code == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert f"{changed}" in err and "changed" in err and "to start over" in err, err
        assert (out / f"bt.{corpus.src}").read_bytes() == before

    make_input(corpus, inp, 5, skip=1)  # same size class, other lines
    refused(inp)
    make_input(corpus, inp, 5)
    os.utime(inp, ns=(inp.stat().st_atime_ns, inp.stat().st_mtime_ns - 10**9))
    refused(inp)  # same contents, but not the same file: refused too (mtime)
    shutil.rmtree(out)
    run_generate(corpus, model, inp, out, *flags)
    before = (out / f"bt.{corpus.src}").read_bytes()
    import torch  # retrain: same path, other weights

    state = torch.load(model, weights_only=False)
    for v in state["model"].values():
        v.add_(0.01)
    torch.save(state, model)
    refused(model)


def test_merge_refuses_shards_of_other_inputs(corpus, reverse_model, tmp_path, capsys):
    inp = make_input(corpus, tmp_path / "mono.txt", 6)
    flags = ["--mode", "greedy", "--chunk-size", "3", "--num-shards", "2"]
    run_generate(corpus, reverse_model, inp, tmp_path / "s0", *flags, "--shard-id", "0")
    make_input(corpus, inp, 6, skip=3)  # the input changed before shard 1 ran
    run_generate(corpus, reverse_model, inp, tmp_path / "s1", *flags, "--shard-id", "1")
    try:
        main(["merge", "--shards", f"{tmp_path / 's0'},{tmp_path / 's1'}", "--output-dir",
              str(tmp_path / "m")])
        raise AssertionError("not refused")
    except SystemExit as e:
        assert e.code == 2
    assert "was generated from other files" in capsys.readouterr().err
    assert not (tmp_path / "m" / f"bt.{corpus.src}").exists()
