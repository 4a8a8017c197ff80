"""--backend ctranslate2: same text as fairseq's greedy search, seeded sampling, shards."""
import pytest

from fairseq_bt_plugin.generate.cli import main

from generate_helpers import make_input, outputs, run_generate

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
