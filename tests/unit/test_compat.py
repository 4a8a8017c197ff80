"""compat's patches of torch and fairseq, without a trained model: torch's own load default
for other callers (torch >= 2.6 weights_only), fairseq's batching, the fairseq version guard,
docs/patches.md's table, the data loader's buffer threads at exit. Real checkpoints:
integration/test_compat_checkpoints.py."""
import argparse
import pickle

import pytest
import torch

import fairseq_bt_plugin  # noqa: F401

from helpers import ROOT


def test_other_callers_keep_torch_default(tmp_path):
    path = tmp_path / "ckpt.pt"
    torch.save({"args": argparse.Namespace(arch="x")}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)  # this test module is not fairseq: torch's safe default stays
    assert torch.load(path, weights_only=False)["args"].arch == "x"


def test_patch_is_idempotent():
    from fairseq_bt_plugin import compat

    before = torch.load
    compat.patch_torch_load()
    assert torch.load is before


def test_batch_by_size_keeps_the_short_last_batch():
    import numpy as np
    from fairseq.data import data_utils

    indices = np.arange(50, dtype=np.int64)
    sizes = np.full(50, 10, dtype=np.int64)
    for kwargs in ({"max_sentences": 8}, {"max_tokens": 200}):
        batches = data_utils.batch_by_size(indices, lambda i: 10, num_tokens_vec=sizes,
                                           required_batch_size_multiple=8, **kwargs)
        flat = np.concatenate(batches).tolist()
        assert flat == list(range(50)), kwargs
        assert all(len(b) % 8 == 0 for b in batches[:-1]) and len(batches[-1]) == 2


def test_every_batch_respects_the_multiple_rule():
    """The kept remainder is smaller than the multiple: fairseq's own rule ("less than N or a
    multiple of N") holds for every batch, as for the short batches fairseq itself makes."""
    import numpy as np
    from fairseq.data import data_utils

    sizes = np.array([5] * 45 + [60] * 8, dtype=np.int64)  # long sentences last, as sorted
    batches = data_utils.batch_by_size(np.arange(53, dtype=np.int64), lambda i: sizes[i],
                                       num_tokens_vec=sizes, max_tokens=130,
                                       required_batch_size_multiple=8)
    lens = [len(b) for b in batches]
    assert np.concatenate(batches).tolist() == list(range(53))
    assert all(n < 8 or n % 8 == 0 for n in lens), lens


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_trainer_batches_keep_the_remainder_except_in_half_precision(corpus, precision):
    """fairseq's Trainer: fp32 training and validation see every sentence; half-precision
    training keeps fairseq's own batches, all multiples of --required-batch-size-multiple."""
    from fairseq.trainer import Trainer

    from helpers import N_TRAIN, N_VALID, setup_task

    mult = 8
    task, cfg = setup_task([str(corpus.bin), "--task", "translation", "-s", corpus.src,
                            "-t", corpus.tgt, "--batch-size", "16", "--cpu",
                            "--required-batch-size-multiple", str(mult)]
                           + (["--fp16"] if precision == "fp16" else []))
    task.load_dataset("valid")
    trainer = Trainer(cfg, task, task.build_model(cfg.model), task.build_criterion(cfg.criterion))
    train = [len(b) for b in trainer.get_train_iterator(epoch=1).frozen_batches]
    valid = [len(b) for b in trainer.get_valid_iterator("valid").frozen_batches]
    assert N_TRAIN % mult and sum(valid) == N_VALID
    if precision == "fp32":
        assert sum(train) == N_TRAIN and train[-1] == N_TRAIN % mult
    else:
        assert sum(train) == N_TRAIN - N_TRAIN % mult and all(n % mult == 0 for n in train)


def test_version_guard_skips_every_fairseq_patch_with_a_warning():
    """Importing the plugin next to a fairseq other than 0.12.x applies none of the fairseq
    patches and says so (the Python-level one-line error report stays)."""
    import subprocess
    import sys

    from fairseq_bt_plugin.compat import PATCHES

    code = ("import sys, fairseq, torch; fairseq.__version__ = '0.13.0'; "
            "import fairseq_bt_plugin; from fairseq.data import data_utils; "
            "print(hasattr(torch.load, '_fairseq_bt_patched'), "
            "hasattr(data_utils.batch_by_size, '_fairseq_bt_patched'), "
            "hasattr(sys.excepthook, '_fairseq_bt_patched'))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert p.stdout.split() == ["False", "False", "True"]
    assert "FairseqVersionWarning" in p.stderr and "fairseq 0.13.0" in p.stderr
    skipped = [patch.name for patch in PATCHES if patch.fairseq is not None]
    assert f": {', '.join(skipped)} (see README" in p.stderr


def test_docs_patches_lists_every_patch_in_order():
    """docs/patches.md's table names every entry of compat.PATCHES, in order."""
    import re

    from fairseq_bt_plugin.compat import PATCHES

    page = (ROOT / "docs" / "patches.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \| `([^`]+)` \|", page, flags=re.M)
    assert rows == [(p.name, p.replaces) for p in PATCHES]


def test_batch_buffer_threads_are_stopped_before_exit():
    """fairseq's BufferedIterator thread, still filling its buffer when training stops at
    --max-update, is stopped and joined at exit (it made finished runs abort with SIGABRT now
    and then); the iterator itself works as before."""
    import itertools
    import threading

    import torch
    from fairseq.data import iterators

    from fairseq_bt_plugin.compat import stop_background_consumers

    class Endless:
        def __len__(self):
            return 10**9

        def __iter__(self):
            return (torch.full((4,), i) for i in itertools.count())

    before = set(threading.enumerate())
    itr = iterators.BufferedIterator(2, Endless())
    assert [int(next(itr)[0]) for _ in range(5)] == [0, 1, 2, 3, 4]
    (consumer,) = set(threading.enumerate()) - before
    assert consumer.is_alive()  # blocked on its full buffer, as at the end of training
    stop_background_consumers(timeout=5)
    assert not consumer.is_alive()


def test_a_process_that_leaves_a_buffer_thread_running_exits_cleanly():
    import subprocess
    import sys

    script = ("import itertools, torch, fairseq_bt_plugin\n"
              "from fairseq.data import iterators\n"
              "class Endless:\n"
              "    __len__ = lambda self: 10**9\n"
              "    __iter__ = lambda self: (torch.randn(64, 64) @ torch.randn(64, 64)"
              " for _ in itertools.count())\n"
              "itr = iterators.BufferedIterator(2, Endless())\n"
              "next(itr)\nprint('done')\n")
    for _ in range(3):
        p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        assert p.returncode == 0 and p.stdout == "done\n", p.stderr[-2000:]
