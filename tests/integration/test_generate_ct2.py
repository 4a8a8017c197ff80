"""--backend ctranslate2: same text as fairseq's greedy search, seeded sampling, shards,
threads, compute types, the conversion cached."""
import pytest

from fairseq_bt_plugin.generate.cli import main

from helpers.generate import generate_args, make_input, outputs, run_generate

pytest.importorskip("ctranslate2")

FIXED = ["--max-len-a", "0", "--max-len-b", "6", "--max-len-ratio", "0", "--keep-duplicates",
         "--batch-size", "8"]


def test_greedy_text_matches_fairseq(corpus, reverse_model, tmp_path):
    inp = make_input(corpus, tmp_path / "mono.en", 23)
    for backend in ("fairseq", "ctranslate2"):
        run_generate(corpus, reverse_model, inp, tmp_path / backend, "--mode", "greedy",
                     "--backend", backend, *FIXED)
    fs, ct = outputs(tmp_path / "fairseq"), outputs(tmp_path / "ctranslate2")
    assert ct[1] == fs[1] and len(ct[0]) == 23
    assert sum(a == b for a, b in zip(ct[0], fs[0])) >= 20
    assert (tmp_path / "ctranslate2" / "bt.work" / "ct2_model" / "model.bin").exists()


def test_sampling_is_seeded_and_shards_merge(corpus, reverse_model, tmp_path):
    inp = make_input(corpus, tmp_path / "mono.en", 25)
    flags = ["--backend", "ctranslate2", "--mode", "sample", "--nbest", "2", "--chunk-size",
             "10", "--ct2-model-dir", str(tmp_path / "ct2"), *FIXED]
    run_generate(corpus, reverse_model, inp, tmp_path / "a", *flags)
    run_generate(corpus, reverse_model, inp, tmp_path / "b", *flags)
    assert outputs(tmp_path / "a") == outputs(tmp_path / "b")
    for i in range(2):
        run_generate(corpus, reverse_model, inp, tmp_path / f"s{i}", *flags, "--num-shards",
                     "2", "--shard-id", str(i))
    main(["merge", "--shards", f"{tmp_path / 's0'},{tmp_path / 's1'}", "--output-dir",
          str(tmp_path / "m")])
    assert outputs(tmp_path / "m") == outputs(tmp_path / "a")
    run_generate(corpus, reverse_model, inp, tmp_path / "c", *flags, "--seed", "9")
    assert outputs(tmp_path / "c")[0] != outputs(tmp_path / "a")[0]


@pytest.mark.parametrize("mode", ["beam", "sample"])
def test_threads_do_not_change_the_output(corpus, reverse_model, tmp_path, mode):
    """Batches decoded on 1 or 3 threads at once (sampling: seeded per batch)."""
    inp = make_input(corpus, tmp_path / "mono.txt", 25)
    flags = ["--backend", "ctranslate2", "--mode", mode, "--nbest", "2", "--chunk-size", "10",
             "--ct2-model-dir", str(tmp_path / "ct2"), *FIXED[:-1], "4"]
    for threads in ("1", "3"):
        summary = run_generate(corpus, reverse_model, inp, tmp_path / threads, *flags,
                               "--ct2-inter-threads", threads, "--ct2-intra-threads", "1")
        assert summary["translated"] == 25 and summary["hypotheses"] == 50
    assert outputs(tmp_path / "1") == outputs(tmp_path / "3")


def test_compute_type_and_cached_conversion(corpus, reverse_model, tmp_path):
    inp = make_input(corpus, tmp_path / "mono.txt", 9)
    ct2 = ["--backend", "ctranslate2", "--ct2-model-dir", str(tmp_path / "ct2"), *FIXED]
    first = run_generate(corpus, reverse_model, inp, tmp_path / "a", *ct2)
    assert first["ct2_convert_seconds"] > 0 and first["options"]["ct2_compute_type"] == "auto"
    again = run_generate(corpus, reverse_model, inp, tmp_path / "b", *ct2,
                         "--ct2-compute-type", "float32")
    assert again["ct2_convert_seconds"] == 0  # converted once, whatever the compute type
    assert len(outputs(tmp_path / "b")[1]) == 9


def test_unsupported_compute_type_is_one_line(corpus, reverse_model, tmp_path, capsys):
    inp = make_input(corpus, tmp_path / "mono.txt", 3)
    with pytest.raises(SystemExit) as e:
        main(generate_args(corpus, reverse_model, inp, tmp_path / "o", "--backend",
                           "ctranslate2", "--ct2-compute-type", "float16", *FIXED))
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "--ct2-compute-type float16" in err and "int8" in err and "\n" not in err, err
    assert not (tmp_path / "o").exists()  # checked before converting or writing
