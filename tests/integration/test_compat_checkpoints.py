"""fairseq's checkpoint loads with the plugin (torch >= 2.6 weights_only default): a trained
checkpoint loads, and a bad one is reported alike by fairseq-train and fairseq-bt-train."""
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


def test_fairseq_train_with_user_dir_reports_a_bad_checkpoint_like_the_wrapper(corpus, tmp_path):
    """Both paths import the plugin, so both patch fairseq alike: one line, exit status 2."""
    import subprocess
    import sys
    from pathlib import Path

    from helpers import PLUGIN_DIR, TINY_MODEL

    bad = tmp_path / "trunc.pt"
    torch.save({"model": torch.zeros(1000)}, bad)
    bad.write_bytes(bad.read_bytes()[:2000])
    args = [str(corpus.bin), "--task", "translation", "-s", corpus.src, "-t", corpus.tgt,
            "--restore-file", str(bad), "--save-dir", str(tmp_path / "save")] + TINY_MODEL
    bin_dir = Path(sys.executable).parent
    messages = []
    for prog, cmd in (("fairseq-train", ["fairseq-train", "--user-dir", PLUGIN_DIR]),
                      ("fairseq-bt-train", ["fairseq-bt-train"])):
        p = subprocess.run([str(bin_dir / cmd[0])] + cmd[1:] + args, capture_output=True,
                           text=True)
        assert p.returncode == 2 and "Traceback" not in p.stderr, (prog, p.stderr[-2000:])
        last = p.stderr.strip().splitlines()[-1]
        assert last.startswith(f"{prog}: error: {bad}: not a fairseq checkpoint, or truncated")
        messages.append(last[len(prog):])
    assert messages[0] == messages[1]
