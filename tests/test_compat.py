"""torch >= 2.6 weights_only default: fairseq's checkpoint loads work with the plugin."""
import argparse
import pickle

import pytest
import torch

import fairseq_bt_plugin  # noqa: F401
from fairseq import checkpoint_utils


def test_fairseq_loads_a_real_checkpoint(reverse_model):
    state = checkpoint_utils.load_checkpoint_to_cpu(str(reverse_model))
    assert state["cfg"]["model"].arch == "bt_transformer_tiny"
    with pytest.raises(pickle.UnpicklingError):
        torch.load(reverse_model)  # torch's own default, from a non-fairseq caller


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
