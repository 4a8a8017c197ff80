"""bt_multilingual (fairseq's multilingual task + back-translation per pair) and
fairseq-bt-backtranslate --target-langs, on a 3-"language" toy made from the Tatoeba slice: the
source language, the same sentences with their words in reverse order (language "rv") and
uppercased (language "up"), each paired with the target language."""
import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from helpers import PLUGIN_DIR, TATOEBA, TINY_MODEL, read_lines, run, setup_task, write_lines

REV, UP = "rv", "up"
N_BITEXT = {0: 200, 1: 200, 2: 80}  # per pair (index in --lang-pairs): the third is low-resource
N_SYN, N_VALID, N_MONO = 100, 24, 30
TAG = "<BT>"


def _variants(src: str):
    return {src: lambda s: s, REV: lambda s: " ".join(reversed(s.split())), UP: str.upper}


def _binarize(tok_path: Path, dictionary, out_prefix: Path) -> None:
    from fairseq.data import indexed_dataset

    builder = indexed_dataset.make_builder(f"{out_prefix}.bin", impl="mmap",
                                           vocab_size=len(dictionary))
    for line in tok_path.read_text(encoding="utf-8").splitlines():
        builder.add_item(dictionary.encode_line(line, add_if_not_exist=False, append_eos=True))
    builder.finalize(f"{out_prefix}.idx")


@pytest.fixture(scope="module")
def multi(corpus, tmp_path_factory):
    """Bitext (bin/), synthetic corpora (syn/, with train.SRC-TGT.weights) and English
    monolingual text for the pairs SRC-TGT, rv-TGT, up-TGT; one joint sentencepiece model and
    one dictionary (dict.LANG.txt for every language)."""
    from fairseq.data import Dictionary
    from fairseq_bt_plugin.text_processing import TextProcessor, train_sentencepiece

    d = tmp_path_factory.mktemp("multi")
    src, tgt = corpus.src, corpus.tgt
    langs = list(_variants(src))
    pairs = [f"{lang}-{tgt}" for lang in langs]
    raw, tok, binp, syn = d / "raw", d / "tok", d / "bin", d / "syn"
    for p in (raw, tok, binp, syn):
        p.mkdir()
    src_train, tgt_train = (read_lines(TATOEBA / f"train.{x}", 1000) for x in (src, tgt))
    src_valid, tgt_valid = (read_lines(TATOEBA / f"valid.{x}", N_VALID) for x in (src, tgt))
    files = []
    for i, (lang, f) in enumerate(_variants(src).items()):
        n = N_BITEXT[i]
        syn_lo = 500 + 100 * i  # each pair's synthetic corpus: other lines
        parts = {"train": (src_train[:n], tgt_train[:n]),
                 "syn": (src_train[syn_lo:syn_lo + N_SYN], tgt_train[syn_lo:syn_lo + N_SYN]),
                 "valid": (src_valid, tgt_valid)}
        for split, (s_lines, t_lines) in parts.items():
            write_lines(raw / f"{split}.{lang}-{tgt}.{lang}", [f(x) for x in s_lines])
            write_lines(raw / f"{split}.{lang}-{tgt}.{tgt}", t_lines)
            files += [raw / f"{split}.{lang}-{tgt}.{lang}", raw / f"{split}.{lang}-{tgt}.{tgt}"]
    write_lines(raw / f"mono.{tgt}", tgt_train[900:900 + N_MONO])
    spm = train_sentencepiece([str(p) for p in files if p.name.startswith("train.")],
                              str(d / "spm"), 500)
    procs = {lang: TextProcessor(spm, lang) for lang in langs + [tgt]}
    dictionary = Dictionary()
    for p in files:
        lang = p.name.rsplit(".", 1)[1]
        lines = [procs[lang].encode(x) for x in p.read_text(encoding="utf-8").splitlines()]
        write_lines(tok / p.name, lines)
        if p.name.startswith("train."):
            for line in lines:
                dictionary.encode_line(line, add_if_not_exist=True)
    dictionary.finalize(padding_factor=1)
    for out in (binp, syn):
        for lang in langs + [tgt]:
            dictionary.save(str(out / f"dict.{lang}.txt"))
    for p in files:
        split, pair, lang = p.name.split(".")
        out = syn if split == "syn" else binp
        _binarize(tok / p.name, dictionary, out / f"{'train' if split == 'syn' else split}."
                  f"{pair}.{lang}")
    weights = {}
    for pair in pairs:
        weights[pair] = [0.5 + 0.25 * (i % 3) for i in range(N_SYN)]
        write_lines(syn / f"train.{pair}.weights", [f"{w:.2f}" for w in weights[pair]])
    return SimpleNamespace(root=d, bin=binp, syn=syn, raw=raw, spm=spm, langs=langs,
                           pairs=pairs, src=src, tgt=tgt, weights=weights,
                           mono=raw / f"mono.{tgt}")


def task_args(m, *extra):
    pairs = ",".join(m.pairs)
    return [str(m.bin), "--task", "bt_multilingual", "--lang-pairs", pairs,
            "--encoder-langtok", "src", "--decoder-langtok",
            "--extra-data", json.dumps({"bt": str(m.syn)}),
            "--extra-lang-pairs", json.dumps({"bt": pairs}), *extra]


def load_train(m, *extra, epoch=1):
    task, _ = setup_task(task_args(m, *extra))
    task.load_dataset("train", epoch=epoch)
    return task, task.dataset("train")


def batches(task, dataset, epoch=1):
    itr = task.get_batch_iterator(dataset, max_tokens=4000, seed=1, epoch=epoch)
    return list(itr.next_epoch_itr(shuffle=False))


# --------------------------------------------------------------------------------------------
def test_name_resolves_to_our_class_on_fairseqs_multilingual_task():
    import fairseq_bt_plugin  # noqa: F401
    from fairseq.tasks import TASK_REGISTRY
    from fairseq.tasks.translation_multi_simple_epoch import TranslationMultiSimpleEpochTask
    from fairseq_bt_plugin.tasks.bt_multilingual import BTMultilingualTask

    assert TASK_REGISTRY["bt_multilingual"] is BTMultilingualTask
    assert issubclass(BTMultilingualTask, TranslationMultiSimpleEpochTask)


def test_per_pair_mixing_counts_every_epoch(multi):
    """Fraction 0.5 for the first pair, 0.25 for the low-resource one, upsampling x2 of the
    second pair's bitext: per pair and epoch, bitext and synthetic counts as asked (fairseq's
    concat sampling: every pair's mix once); the fraction's synthetic sample changes."""
    from fairseq_bt_plugin.data.multilingual import pair_counts

    p0, p1, p2 = multi.pairs
    task, ds = load_train(multi, "--bt-synthetic-fraction", f"{p0}:0.5,{p2}:0.25",
                          "--bt-upsample-primary", f"{p1}:2")
    drawn = []
    for epoch in (1, 2):
        ds.set_epoch(epoch)
        counts = [c.tolist() for c in pair_counts(ds)]
        # 0.5 of 200: 200 synthetic (two passes over 100); 0.25 of 80: round(80/3) = 27
        assert counts == [[200, 200], [400, 100], [80, 27]], counts
        for k, d in enumerate(ds.datasets):  # batching reads this epoch's sizes
            lo, hi = ds.cumulated_sizes[k] - len(d), ds.cumulated_sizes[k]
            assert np.array_equal(ds.sizes[lo:hi], d.sizes[ds._cur_indices[lo:hi]])
        drawn.append(ds.datasets[2]._local[ds.datasets[2]._corpus == 1].tolist())
    assert drawn[0] != drawn[1]


def test_temperature_sampling_across_pairs(multi):
    """--sampling-method temperature: fairseq's ratios over the sizes of the pairs' mixes; the
    low-resource pair is upsampled, and each pair's draw holds both of its sources.
    --sampling-weights are keyed main:SRC-TGT."""
    from fairseq_bt_plugin.data.multilingual import pair_counts

    _, ds = load_train(multi, "--bt-synthetic-fraction", "0.5", "--sampling-method",
                       "temperature", "--sampling-temperature", "5")
    from fairseq.data.multilingual.sampling_method import temperature_sampling

    sizes = [len(d) for d in ds.datasets]
    assert sizes == [400, 400, 160]  # bitext + as many synthetic
    assert ds.sample_ratios.tolist() == pytest.approx(temperature_sampling(sizes, 5))
    counts = pair_counts(ds)
    assert ds.virtual_size_per_dataset[2] / sum(ds.virtual_size_per_dataset) > 160 / 960
    assert all(c[0] > 0 and c[1] > 0 for c in counts)
    p0, p1, p2 = multi.pairs
    _, ds = load_train(multi, "--sampling-weights",
                       json.dumps({f"main:{p0}": 1, f"main:{p1}": 1, f"main:{p2}": 2}))
    assert ds.virtual_size_per_dataset.tolist()[2] > ds.virtual_size_per_dataset.tolist()[0]


def test_language_and_bt_tags_in_place(multi):
    """Source: __SRC__ first, then <BT> on synthetic sources only; target: __TGT__ first
    (--decoder-langtok). Valid data: no tag. Each batch row's pair and source are reported."""
    task, ds = load_train(multi, "--bt-tag", TAG, "--bt-synthetic-fraction", "0.5")
    d = task.source_dictionary
    tag, tgt_tok = d.index(TAG), d.index(f"__{multi.tgt}__")
    assert tag != d.unk() and d.index(f"__{REV}__") != d.unk()
    seen = set()
    for batch in batches(task, ds):
        src = batch["net_input"]["src_tokens"]  # left-padded: first real token per row
        lengths = batch["net_input"]["src_lengths"]
        for row, n, syn, pair in zip(src, lengths, batch["bt_synthetic"], batch["bt_pair"]):
            first, second = row[-n].item(), row[-n + 1].item()
            lang = multi.langs[int(pair)]
            assert first == d.index(f"__{lang}__")
            assert (second == tag) == bool(syn)
            assert (row == tag).sum() == int(syn)
            seen.add((int(pair), bool(syn)))
        assert (batch["target"][:, 0] == tgt_tok).all()
    assert seen == {(p, s) for p in range(3) for s in (False, True)}
    task.load_dataset("valid")
    valid = task.dataset("valid")
    assert all((valid[i]["source"] != tag).all() for i in range(len(valid)))
    assert valid[0]["source"][0] == d.index(f"__{multi.src}__")


def test_noise_spares_language_token_and_tag(multi):
    task, ds = load_train(multi, "--bt-tag", TAG, "--bt-noise-word-dropout", "0.3",
                          "--bt-noise-shuffle-distance", "3")
    d = task.source_dictionary
    pair = ds.datasets[1]  # rv-TGT
    syn = pair.corpora[1]
    changed = 0
    for i in range(len(syn)):
        noised, raw = syn.src[i], syn.src.dataset.dataset[i]  # Prepend(Synthetic(raw))
        assert noised[0] == d.index(f"__{REV}__") and noised[1] == d.index(TAG)
        changed += not torch.equal(noised[2:], raw)
    assert changed > N_SYN // 2


def test_weights_per_pair(multi):
    task, ds = load_train(multi, "--bt-weighted")
    for batch in batches(task, ds)[:3]:
        for i, syn, pair, w in zip(batch["id"], batch["bt_synthetic"], batch["bt_pair"],
                                   batch["bt_weights"]):
            mix = ds.datasets[int(pair)]
            local = ds._cur_indices[int(i)]
            if syn:
                expected = multi.weights[multi.pairs[int(pair)]][mix._local[local]]
                assert w.item() == pytest.approx(expected)
            else:
                assert w.item() == 1.0


def test_bad_options_are_one_line_errors(multi):
    from fairseq_bt_plugin.errors import BTUserError

    with pytest.raises(BTUserError, match="--bt-synthetic-fraction: 'xx-en' is not one of"):
        load_train(multi, "--bt-synthetic-fraction", "xx-en:0.5")
    with pytest.raises(BTUserError, match="must be in \\(0, 1\\)"):
        load_train(multi, "--bt-synthetic-fraction", "1.5")
    with pytest.raises(BTUserError, match="reads the category 'bt' only, got \\['mined'\\]"):
        setup_task([str(multi.bin), "--task", "bt_multilingual", "--lang-pairs", multi.pairs[0],
                    "--extra-data", json.dumps({"mined": str(multi.syn)})])
    with pytest.raises(BTUserError, match="RoundRobin is not supported"):
        load_train(multi, "--sampling-method", "RoundRobin")
    with pytest.raises(BTUserError, match="weights file not found"):
        (multi.syn / f"train.{REV}-{multi.tgt}.weights").rename(multi.root / "moved")
        try:
            load_train(multi, "--bt-weighted")
        finally:
            (multi.root / "moved").rename(multi.syn / f"train.{REV}-{multi.tgt}.weights")


def hydra_train_task(m, *overrides):
    """The task ``fairseq-bt-hydra-train`` sets up with these overrides of the tiny profile, as
    scripts/pipeline_multi.sh passes them: hydra's composition (``--cfg job``: every value with
    the type hydra parsed it to), then the plugin's legacy task config, then fairseq's task."""
    import yaml
    from fairseq import tasks
    from omegaconf import OmegaConf

    from fairseq_bt_plugin.cli import legacy_task_config

    pairs = ",".join(m.pairs)
    composed = run([str(Path(sys.executable).parent / "fairseq-bt-hydra-train"), "--config-dir",
                    str(Path(PLUGIN_DIR).parent / "configs"), "--config-name", "tiny", "--cfg",
                    "job", f"task.data={m.bin}", "task.source_lang=x", "task.target_lang=y",
                    "task._name=bt_multilingual", "~task.source_lang", "~task.target_lang",
                    f"++task.lang_pairs='{pairs}'", "++task.encoder_langtok=src",
                    "++task.decoder_langtok=true", f"++task.extra_data='{{\"bt\": \"{m.syn}\"}}'",
                    f"++task.extra_lang_pairs='{{\"bt\": \"{pairs}\"}}'", *overrides]).stdout
    cfg = legacy_task_config(OmegaConf.create(yaml.safe_load(composed)))
    task = tasks.setup_task(cfg.task)
    task.load_dataset("train", epoch=1)
    return task.dataset("train")


UPSAMPLED = [[400, 100], [400, 100], [160, 100]]  # the bitext twice
BOTH = [[200, 200], [200, 200], [80, 80]]  # per pair [bitext, synthetic]: fraction 0.5
MIXED = [[200, 200], [400, 100], [80, 27]]  # 0.5 for the first pair, 0.25 the third, x2 second


@pytest.mark.parametrize("overrides,counts", [
    (["++task.bt_upsample_primary=2"], UPSAMPLED),  # an int
    (["++task.bt_synthetic_fraction=0.5"], BOTH),  # a float
    (["++task.bt_synthetic_fraction={fr-en:0.5,up-en:0.25}",  # mappings
      "++task.bt_upsample_primary={rv-en:2}"], MIXED),
    (["++task.bt_synthetic_fraction=[fr-en:0.5,up-en:0.25]",  # a list, a string
      "++task.bt_upsample_primary='rv-en:2'"], MIXED),
], ids=["int", "float", "mapping", "list"])
def test_mixing_options_as_hydra_parses_them(multi, overrides, counts):
    """--bt-upsample-primary / --bt-synthetic-fraction as hydra overrides (the option's help
    examples): hydra hands the task an int, a float, a mapping or a list; each mixes per pair
    as the same string on the command line does."""
    from fairseq_bt_plugin.data.multilingual import pair_counts

    assert multi.pairs == ["fr-en", "rv-en", "up-en"]
    assert [c.tolist() for c in pair_counts(hydra_train_task(multi, *overrides))] == counts


@pytest.mark.parametrize("bt,counts", [({"upsample_primary": 2}, UPSAMPLED),
                                       ({"synthetic_fraction": 0.5}, BOTH)])
def test_mixing_keys_of_an_experiment_file_with_pairs(multi, tmp_path, bt, counts):
    """bt.upsample_primary / bt.synthetic_fraction of an experiment file with pairs: the
    multilingual +BT model's overrides (MULTI_BT_OVERRIDES) set up its task as asked."""
    import yaml

    from fairseq_bt_plugin.data.multilingual import pair_counts
    from fairseq_bt_plugin.experiment import loader
    from fairseq_bt_plugin.experiment.cli import shell_settings

    for i, split in enumerate(("train", "valid", "test", "mono")):  # any text will do
        for lang in multi.langs + [multi.tgt]:
            write_lines(tmp_path / f"{split}.{lang}",
                        read_lines(TATOEBA / f"train.{multi.tgt}", 10, 10 * i))
    pairs = {lang: {"bitext": {"source": f"train.{lang}", "target": f"train.{multi.tgt}"},
                    "valid": {"source": f"valid.{lang}", "target": f"valid.{multi.tgt}"},
                    "tests": {"t": {"source": f"test.{lang}", "target": f"test.{multi.tgt}"}}}
             for lang in multi.langs}
    exp = {"name": "m", "target_lang": multi.tgt, "allow_any_language": True, "pairs": pairs,
           "mono": {"files": [f"mono.{multi.tgt}"]}, "bt": bt}
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(exp), encoding="utf-8")
    args = shell_settings(loader.load(str(tmp_path / "m.yaml")), "")["MULTI_BT_OVERRIDES"]
    assert [c.tolist() for c in pair_counts(hydra_train_task(multi, *args.split()))] == counts


# --------------------------------------------------------------------------------------------
def train_cmd(m, save_dir: Path, updates: int, *extra):
    return [sys.executable, "-m", "fairseq_cli.train", *task_args(m, *extra), "--user-dir",
            PLUGIN_DIR, "--criterion", "bt_label_smoothed_cross_entropy",
            "--save-dir", str(save_dir), "--max-update", str(updates), "--log-interval", "1",
            "--no-epoch-checkpoints", "--save-interval-updates", "4",
            "--disable-validation", "--share-all-embeddings"] + TINY_MODEL


def test_training_logs_loss_per_pair_and_source_and_resumes(multi, tmp_path):
    """fairseq-train logs loss_PAIR_bitext / loss_PAIR_synth for every pair; stopped after 4
    updates and resumed, the run logs the losses of an uninterrupted one."""
    extra = ["--bt-tag", TAG, "--bt-synthetic-fraction", "0.5", "--bt-weighted",
             "--sampling-method", "temperature", "--max-tokens", "1500"]
    full = run(train_cmd(multi, tmp_path / "full", 8, *extra)).stdout
    for pair in multi.pairs:
        for part in ("bitext", "synth"):
            assert re.search(rf"\bloss_{re.escape(pair)}_{part} [0-9.]+", full), (pair, part)
    run(train_cmd(multi, tmp_path / "resumed", 4, *extra))
    resumed = run(train_cmd(multi, tmp_path / "resumed", 8, *extra)).stdout

    def last_losses(log):
        line = [x for x in log.splitlines() if "num_updates 8" in x or "| 8 " in x]
        return re.findall(r"\bloss_\S+ [0-9.]+", line[-1])

    assert last_losses(full) and last_losses(full) == last_losses(resumed)


# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reverse_multi(multi, tmp_path_factory):
    """One tiny TGT -> {SRC, rv, up} model (bt_multilingual, bitext only), the target
    language's token on both sides (--encoder-langtok tgt --decoder-langtok)."""
    save = tmp_path_factory.mktemp("reverse_multi")
    pairs = ",".join(f"{multi.tgt}-{lang}" for lang in multi.langs)
    run([sys.executable, "-m", "fairseq_cli.train", str(multi.bin), "--user-dir", PLUGIN_DIR,
         "--task", "bt_multilingual", "--lang-pairs", pairs, "--encoder-langtok", "tgt",
         "--decoder-langtok", "--save-dir", str(save), "--max-update", "30",
         "--no-epoch-checkpoints", "--disable-validation", "--share-all-embeddings"]
        + TINY_MODEL + ["--lr", "0.005"])
    return save / "checkpoint_last.pt"


def generate_multi(m, model, out: Path, *extra):
    from fairseq_bt_plugin.generate.cli import generate_all
    from fairseq_bt_plugin.generate.config import BTGenerateConfig, parse

    threads = torch.get_num_threads()
    args = ["--input", str(m.mono), "--path", str(model), "--data", str(m.bin), "--spm-model",
            str(m.spm), "-s", m.tgt, "--target-langs", ",".join(m.langs), "--output-dir",
            str(out), "--cpu", "--cpu-threads", "1", "--max-len-a", "1.2", "--max-len-b", "5",
            "--chunk-size", "10", "--log-interval", "1000", "--max-len-ratio", "0", *extra]
    try:
        return generate_all(parse(BTGenerateConfig, args, "fairseq-bt-backtranslate", ""))
    finally:
        torch.set_num_threads(threads)


def final_files(out: Path, langs):
    return {p.relative_to(out): p.read_bytes() for lang in langs
            for p in sorted((out / lang).glob("bt.*")) if p.is_file()}


def test_generate_every_line_into_every_language_binarized_and_resumed(multi, reverse_multi,
                                                                       tmp_path):
    """--target-langs: every monolingual line back-translated into each language (a run per
    language in OUT/LANG), binarized into one corpus with a weights file per pair that
    bt_multilingual trains on; removed outputs and chunks are redone to the same files."""
    from fairseq_bt_plugin.data.multilingual import pair_counts

    out, binarized = tmp_path / "out", tmp_path / "bt_bin"
    summaries = generate_multi(multi, reverse_multi, out, "--binarize-to", str(binarized))
    assert [s["options"]["target_lang"] for s in summaries] == multi.langs
    for lang, s in zip(multi.langs, summaries):
        assert s["input_lines"] == s["translated"] == N_MONO, lang
        kept = s["output_pairs"]
        assert kept + sum(s["filtered"].values()) == N_MONO
        assert len((out / lang / f"bt.{lang}").read_text(encoding="utf-8").splitlines()) == kept
        for suffix in (f"{lang}.idx", f"{multi.tgt}.idx", "weights"):
            assert (binarized / f"train.{lang}-{multi.tgt}.{suffix}").exists()
        assert len((binarized / f"train.{lang}-{multi.tgt}.weights").read_text().split()) == kept
    assert not (binarized / "train.weights").exists()
    before = final_files(out, multi.langs)

    task, _ = setup_task([str(multi.bin), "--task", "bt_multilingual", "--lang-pairs",
                          ",".join(multi.pairs), "--extra-data",
                          json.dumps({"bt": str(binarized)}), "--extra-lang-pairs",
                          json.dumps({"bt": ",".join(multi.pairs)}), "--bt-weighted"])
    task.load_dataset("train")
    counts = pair_counts(task.dataset("train"))
    assert [int(c[1]) for c in counts] == [s["output_pairs"] for s in summaries]

    import shutil

    shutil.rmtree(out / UP)
    (out / REV / "bt.work" / "chunk-000001.jsonl").unlink()
    for p in (out / REV).glob("bt.*"):
        if p.is_file():
            p.unlink()
    generate_multi(multi, reverse_multi, out, "--binarize-to", str(binarized))
    assert final_files(out, multi.langs).keys() == before.keys()
    for k, v in before.items():
        if not k.name.endswith("summary.json"):
            assert final_files(out, multi.langs)[k] == v, k


def test_generator_forces_each_language_token(multi, reverse_multi):
    """For -t LANG the source starts with __LANG__ (--encoder-langtok tgt), fairseq's
    generator starts the output with __LANG__ (--decoder-langtok), and the synthetic sentence
    and its score are what follows it."""
    from fairseq_bt_plugin.generate.config import BTGenerateConfig, parse
    from fairseq_bt_plugin.generate.decoder import reverse_model
    from fairseq_bt_plugin.inference.reader import Chunk

    lines = multi.mono.read_text(encoding="utf-8").splitlines()[:4]
    for lang in multi.langs:
        cfg = parse(BTGenerateConfig, [
            "--input", str(multi.mono), "--path", str(reverse_multi), "--data", str(multi.bin),
            "--spm-model", str(multi.spm), "-s", multi.tgt, "-t", lang, "--output-dir", "unused",
            "--cpu", "--max-len-b", "5"], "fairseq-bt-backtranslate", "")
        translator = reverse_model(cfg)
        tok = translator.tgt_dict.index(f"__{lang}__")
        assert tok != translator.tgt_dict.unk()
        assert translator.src_langtok == tok and translator.tgt_langtok == tok
        calls = []
        inference_step = translator.task.inference_step

        def spy(generator, models, sample, **kw):
            calls.append(sample["net_input"]["src_tokens"])
            result = inference_step(generator, models, sample, **kw)
            calls.append([h[0]["tokens"][0].item() for h in result])
            calls.append(sorted((translator.tgt_dict.string(h[0]["tokens"][1:]),
                                 round(h[0]["positional_scores"][1:].sum().item(), 4))
                                for h in result))
            return result

        translator.task.inference_step = spy
        hyps, _, _ = translator.translate_chunk(
            Chunk(index=0, lines=list(enumerate(lines)), num_lines=len(lines)))
        src_tokens, first_out, rest = calls
        left_padded_first = [row[row.ne(translator.src_dict.pad())][0].item()
                             for row in src_tokens]
        assert left_padded_first == [tok] * len(lines) and first_out == [tok] * len(lines)
        # the synthetic sentence and its log-probability: what follows the forced token
        assert sorted((h.synthetic_pieces, round(h.logprob, 4)) for h in hyps) == rest


def test_generate_language_options_are_checked():
    from fairseq_bt_plugin.errors import BTUserError
    from fairseq_bt_plugin.generate.config import BTGenerateConfig, parse

    base = ["--input", "x", "--path", "x", "--spm-model", "x", "-s", "en", "--output-dir", "x"]
    for extra, message in (([], "-t LANG or --target-langs"),
                           (["-t", "de", "--target-langs", "de,fr"], "not both"),
                           (["--target-langs", "de,de"], "repeated"),
                           (["--target-langs", "de,en"], "source language"),
                           (["--target-langs", "de,fr", "--backend", "ctranslate2"],
                            "needs --backend fairseq")):
        with pytest.raises(BTUserError, match=message):
            parse(BTGenerateConfig, base + extra, "fairseq-bt-backtranslate", "")
    # a -t run keeps the options (and hash) of runs made before --target-langs: they resume
    from fairseq_bt_plugin.generate.config import hashed_options

    one = parse(BTGenerateConfig, base + ["-t", "de"], "fairseq-bt-backtranslate", "")
    assert "target_langs" not in hashed_options(one)


def test_generate_sharded_per_language_and_merged_equals_single(multi, reverse_multi, tmp_path):
    """--target-langs with --num-shards: each language's shards merge (one merge per
    language) into exactly the single-process output of that language."""
    from fairseq_bt_plugin.generate.cli import main

    sample = ["--mode", "sample", "--seed", "3"]
    generate_multi(multi, reverse_multi, tmp_path / "single", *sample)
    for i in range(2):
        generate_multi(multi, reverse_multi, tmp_path / f"shard{i}", *sample, "--num-shards",
                       "2", "--shard-id", str(i))
    for lang in multi.langs:
        main(["merge", "--shards", ",".join(str(tmp_path / f"shard{i}" / lang) for i in range(2)),
              "--output-dir", str(tmp_path / "merged" / lang)])
        for suffix in (lang, multi.tgt, "scores", "weights"):
            merged = (tmp_path / "merged" / lang / f"bt.{suffix}").read_bytes()
            assert merged == (tmp_path / "single" / lang / f"bt.{suffix}").read_bytes()


# --------------------------------------------------------------------------------------------
def test_bilingual_child_initialised_from_the_multilingual_model(multi, reverse_multi, tmp_path):
    """Transfer to a new pair: a bt_translation child --init-from the bt_multilingual model.
    The parent's embeddings have a row per entry of its task's dictionary (the file's entries,
    then fairseq's language tokens): each token of the child's own dictionary (another order,
    some missing, one new) gets that token's row; the new token keeps its own initialisation."""
    from fairseq import checkpoint_utils
    from fairseq.data import Dictionary

    parent_dict = Dictionary.load(str(multi.bin / f"dict.{multi.tgt}.txt"))
    parent = checkpoint_utils.load_checkpoint_to_cpu(str(reverse_multi))["model"]
    assert parent["encoder.embed_tokens.weight"].size(0) > len(parent_dict)  # + __xx__ tokens
    words = parent_dict.symbols[parent_dict.nspecial:]
    child_dict = Dictionary()
    for word in list(reversed(words))[10:] + ["▁newword"]:
        child_dict.add_symbol(word)
    child_dir = tmp_path / "child"
    child_dir.mkdir()
    for lang in (UP, multi.tgt):
        child_dict.save(str(child_dir / f"dict.{lang}.txt"))
    args = [str(child_dir), "--task", "bt_translation", "-s", UP, "-t", multi.tgt,
            "--share-all-embeddings"]
    task, cfg = setup_task(args)
    torch.manual_seed(3)
    own = task.build_model(cfg.model).state_dict()
    task, cfg = setup_task(args + ["--init-from", str(reverse_multi)])
    torch.manual_seed(3)
    child = task.build_model(cfg.model).state_dict()
    real = len(child_dict) - child_dict.nspecial  # every word but the new one is the parent's
    assert task.transfer.coverage == {"source": (real - 1) / real, "target": (real - 1) / real}
    for name in ("encoder.embed_tokens.weight", "decoder.output_projection.weight"):
        for i, sym in enumerate(child_dict.symbols):
            if sym == "▁newword":
                assert torch.equal(child[name][i], own[name][i]), sym
            else:
                assert torch.equal(child[name][i], parent[name][parent_dict.index(sym)]), sym
    assert torch.equal(child["encoder.layers.0.fc1.weight"], parent["encoder.layers.0.fc1.weight"])


def _tool(name, *args, **kwargs):
    import shutil
    import subprocess

    return subprocess.run([shutil.which(name), *[str(a) for a in args]], capture_output=True,
                          text=True, **kwargs)


def test_ctranslate2_translates_a_multilingual_model_as_fairseq(multi, reverse_multi, tmp_path):
    """--backend ctranslate2 with a multilingual model: each source starts with the model's
    language token and the output's is forced and left out, as fairseq's generator does: the
    same greedy translations into each language (up to rare ties). Exported (fairseq-bt-export
    -s -t) the directory records the tokens, translates any pair of the model as the checkpoint
    does through CTranslate2, and its card's snippet (ctranslate2 and sentencepiece alone)
    prepends and strips them too. A pair the model lacks is one line, exit 2."""
    pytest.importorskip("ctranslate2")
    from fairseq_bt_plugin.inference.translator import language_symbols, multilingual_settings
    from fairseq_bt_plugin.translate import main as translate

    model = ["--path", reverse_multi, "--data", multi.bin, "--spm-model", multi.spm, "-s",
             multi.tgt, "--cpu", "--beam", "1", "--max-len-a", "1", "--max-len-b", "5"]
    ct2 = ["--backend", "ctranslate2", "--ct2-compute-type", "float32",
           "--ct2-model-dir", tmp_path / "ct2", "--ct2-inter-threads", "1"]
    lines = multi.mono.read_text(encoding="utf-8").splitlines()
    n = len(lines)
    out = {}
    for lang in multi.langs[:2]:
        for name, extra in (("fairseq", []), ("ct2", ct2)):
            path = tmp_path / f"{name}.{lang}"
            translate([str(a) for a in model + ["-t", lang, "--input", multi.mono, "--output",
                                                path] + extra])
            out[name, lang] = path.read_text(encoding="utf-8").splitlines()
        assert len(out["ct2", lang]) == n
        same = sum(a == b for a, b in zip(out["fairseq", lang], out["ct2", lang]))
        assert same >= n - 2, (lang, out["fairseq", lang][:3], out["ct2", lang][:3])
    # a conversion without its language-token settings (made before they were recorded) is
    # made again, not used without the tokens
    settings_file = tmp_path / "ct2" / "multilingual.json"
    settings_file.unlink()
    again = tmp_path / "again"
    translate([str(a) for a in model + ["-t", lang, "--input", multi.mono, "--output", again]
               + ct2])
    assert again.read_text(encoding="utf-8").splitlines() == out["ct2", lang]
    assert settings_file.is_file()
    # the tokens are those of fairseq's data manager for the pair
    from fairseq import checkpoint_utils

    from fairseq_bt_plugin.inference.translator import language_tokens
    from fairseq_bt_plugin.inference.translator_ct2 import task_config

    state = checkpoint_utils.load_checkpoint_to_cpu(str(reverse_multi))
    settings = multilingual_settings(task_config(state))
    lang = multi.langs[1]
    symbols = language_symbols(settings, multi.tgt, lang)
    assert symbols == (f"__{lang}__", f"__{lang}__")  # --encoder-langtok tgt --decoder-langtok
    from fairseq_bt_plugin.inference.translator import Translator
    from fairseq_bt_plugin.inference.config import DecodingConfig

    fs = Translator(DecodingConfig(path=str(reverse_multi), data_dir=str(multi.bin),
                                   spm_model=str(multi.spm), source_lang=multi.tgt,
                                   target_lang=lang, cpu=True))
    assert tuple(fs.src_dict[i] for i in (fs.src_langtok, fs.tgt_langtok)) == symbols

    exported = tmp_path / "export"
    p = _tool("fairseq-bt-export", "--path", reverse_multi, "--data", multi.bin, "--spm-model",
              multi.spm, "-s", multi.tgt, "-t", multi.langs[0], "--output", exported,
              "--quantization", "float32")
    assert p.returncode == 0, p.stderr
    card = json.loads((exported / "model.json").read_text(encoding="utf-8"))
    first = f"__{multi.langs[0]}__"
    assert (card["source_prefix"], card["target_prefix"]) == ([first], [first])
    assert card["lang_pairs"] == [f"{multi.tgt}-{x}" for x in multi.langs]
    for lang, extra in ((multi.langs[0], []), (lang, ["-t", lang])):
        p = _tool("fairseq-bt-translate", "--model", exported, "--beam", "1", "--max-len-a",
                  "1", "--max-len-b", "5", "--ct2-inter-threads", "1", "--ct2-compute-type",
                  "float32", "--input", multi.mono, *extra)
        assert p.returncode == 0, p.stderr
        assert p.stdout.splitlines() == out["ct2", lang]
    p = _tool("fairseq-bt-translate", "--model", exported, "-t", "xx", "--input", multi.mono)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1
    assert f"not {multi.tgt}-xx" in p.stderr and not p.stdout

    snippet = re.search(r"```python\n(.*?)```", (exported / "README.md").read_text(
        encoding="utf-8"), flags=re.S).group(1)
    (tmp_path / "snippet.py").write_text(snippet, encoding="utf-8")
    source = multi.mono.read_text(encoding="utf-8")
    p = subprocess_run([sys.executable, "-I", tmp_path / "snippet.py", exported], source)
    beam5 = _tool("fairseq-bt-translate", "--model", exported, "--input", multi.mono)
    assert p.returncode == 0 and beam5.returncode == 0, p.stderr + beam5.stderr
    same = sum(a == b for a, b in zip(p.stdout.splitlines(), beam5.stdout.splitlines()))
    assert len(p.stdout.splitlines()) == n and same >= n - 3, (p.stdout, beam5.stdout)


def subprocess_run(cmd, stdin):
    import subprocess

    return subprocess.run([str(c) for c in cmd], input=stdin, capture_output=True, text=True)
