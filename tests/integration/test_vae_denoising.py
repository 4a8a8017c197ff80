"""Task bt_denoising: monolingual (noised -> clean) pairs in the translation dictionary."""
import pytest
import torch
from fairseq.tasks import TASK_REGISTRY

from fairseq_bt_plugin.errors import BTUserError
from fairseq_bt_plugin.tasks.bt_denoising import BTDenoisingTask

from helpers import SRC, setup_task
from helpers.transfer import mono_bin


def denoising_task(corpus, *extra):
    return setup_task([str(mono_bin(corpus)), "--task", "bt_denoising", "--seed", "3"] + list(extra))


def test_registered_under_bt_name():
    assert TASK_REGISTRY["bt_denoising"] is BTDenoisingTask


def test_pairs_are_noised_input_and_clean_target(corpus):
    task, _ = denoising_task(corpus, "--mono-langs", SRC, "--noise-word-dropout", "0.2",
                             "--noise-shuffle-distance", "3")
    assert task.source_dictionary is task.target_dictionary
    assert len(task.source_dictionary) == len(task.load_dictionary(str(corpus.bin / f"dict.{SRC}.txt")))
    task.load_dataset("train")
    ds = task.dataset("train")
    assert len(ds) == 300
    items = [ds[i] for i in range(40)]
    assert sum(not torch.equal(x["source"], x["target"]) for x in items) > 20
    eos = task.source_dictionary.eos()
    for x in items:
        assert x["target"][-1] == eos and x["source"][-1] == eos
        assert len(x["source"]) <= len(x["target"]) == ds.tgt_sizes[x["id"]]
    # same epoch: same noise; next epoch: fresh noise; target never changes
    again = [ds[i]["source"] for i in range(40)]
    assert all(torch.equal(a, x["source"]) for a, x in zip(again, items))
    ds.set_epoch(2)
    epoch2 = [ds[i] for i in range(40)]
    assert any(not torch.equal(a["source"], x["source"]) for a, x in zip(epoch2, items))
    assert all(torch.equal(a["target"], x["target"]) for a, x in zip(epoch2, items))


def test_no_noise_is_a_plain_autoencoder(corpus):
    task, _ = denoising_task(corpus, "--noise-word-dropout", "0", "--noise-word-blank", "0",
                             "--noise-shuffle-distance", "0")
    task.load_dataset("valid")
    ds = task.dataset("valid")
    assert all(torch.equal(ds[i]["source"], ds[i]["target"]) for i in range(len(ds)))


def test_plain_transformer_with_vae_criterion_trains_on_ce(corpus):
    task, cfg = denoising_task(corpus, "--arch", "bt_transformer_tiny", "--criterion",
                               "bt_vae_seq2seq", "--kl-beta", "1", "--rec-weight", "1")
    model, crit = task.build_model(cfg.model), task.build_criterion(cfg.criterion)
    task.load_dataset("valid")
    ds = task.dataset("valid")
    sample = ds.collater([ds[i] for i in range(4)])
    model.eval()
    with torch.no_grad():
        loss, _, log = crit(model, sample)
        ce, _ = crit.compute_loss(model, model(**sample["net_input"]), sample)
    assert torch.equal(loss, ce) and "kl" not in log and "rec" not in log


def test_user_errors(corpus, tmp_path):
    with pytest.raises(BTUserError, match="dict.cs.txt: dictionary not found"):
        denoising_task(corpus, "--mono-langs", "cs")  # a language the corpus does not have
    with pytest.raises(BTUserError, match="--noise-"):
        denoising_task(corpus, "--noise-word-dropout", "1.5")
    task, _ = denoising_task(corpus)
    with pytest.raises(FileNotFoundError, match=f"no test data for {SRC}: tried .*test.{SRC}-None.{SRC}"):
        task.load_dataset("test")
