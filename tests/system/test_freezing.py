"""Freezing after ``fairseq-bt-init-checkpoint --init-freeze-updates``: it ends with its run
(a descendant run started from a later checkpoint freezes nothing) and it is exact under
fairseq's CPU distributed training (``legacy_ddp``) with weight decay, and with fairseq's
``FP16Optimizer`` (stepped on CPU: fp16 training itself needs a GPU in fairseq 0.12)."""
import pytest
import torch
from fairseq import checkpoint_utils, options
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq.optim.fp16_optimizer import FP16Optimizer

from fairseq_bt_plugin.transfer import Freezing

from helpers.transfer import check_frozen_until, fairseq_train, frozen_part, stock_child


def model_at(save_dir, update):
    """The checkpoint saved at ``update``: ``checkpoint_EPOCH_UPDATE.pt``, or
    ``checkpoint_last.pt`` when that update ended an epoch (fairseq then writes no update
    checkpoint under --no-epoch-checkpoints)."""
    paths = list(save_dir.glob(f"checkpoint_*_{update}.pt")) or [save_dir / "checkpoint_last.pt"]
    state = checkpoint_utils.load_checkpoint_to_cpu(str(paths[0]))
    assert state["optimizer_history"][-1]["num_updates"] == update, paths[0]
    return state


def test_descendants_of_a_frozen_run_do_not_freeze(corpus, tmp_path):
    """A run frozen until update 2 writes checkpoint_1_1.pt; new runs started from it with
    --finetune-from-model or --restore-file --reset-optimizer (update counter back to 0)
    train every parameter from update 1, and their checkpoints carry no freezing record."""
    child = stock_child(corpus, tmp_path)
    ft = tmp_path / "ft"
    fairseq_train(child.bin, ft, child.train + ["--finetune-from-model", str(child.init)], 1,
                  save_every=1)
    start = model_at(ft, 1)
    record = start["extra_state"]["bt_init"]
    assert record["until"] == 2 and record["saved_at_update"] == 1  # still frozen there
    for name, starts in (("finetune", ["--finetune-from-model", str(ft / "checkpoint_1_1.pt")]),
                         ("restore", ["--restore-file", str(ft / "checkpoint_1_1.pt"),
                                      "--reset-optimizer"])):
        out = fairseq_train(child.bin, tmp_path / name, child.train + starts, 1, save_every=1)
        assert "belonged to the run that wrote this checkpoint" in out.stdout + out.stderr
        after = model_at(tmp_path / name, 1)
        assert "bt_init" not in after["extra_state"], name
        for param, rows in record["frozen"].items():
            assert not torch.equal(frozen_part(after["model"], param, rows),
                                   frozen_part(start["model"], param, rows)), (name, param)


def test_frozen_exactly_under_two_cpu_processes_with_weight_decay(corpus, tmp_path):
    """fairseq's own spawn of 2 CPU workers (legacy_ddp all-reduces the dropped gradients as
    zeros) with AdamW-style weight decay: the frozen tensors and rows stay bit-identical to
    the initialisation for 2 updates, then train; the new rows train from update 1."""
    child = stock_child(corpus, tmp_path)
    save = tmp_path / "ddp"
    out = fairseq_train(child.bin, save, child.train + [
        "--finetune-from-model", str(child.init), "--weight-decay", "0.1",
        "--distributed-world-size", "2"], 3, save_every=1)
    assert "training on 2 devices" in out.stdout + out.stderr
    init = torch.load(child.init, weights_only=False)
    frozen = init["extra_state"]["bt_init"]["frozen"]
    check_frozen_until(init["model"], frozen, {u: model_at(save, u)["model"] for u in (1, 2, 3)},
                       until=2)


@pytest.mark.parametrize("flat", [True, False])
def test_fp16_optimizer_fp32_copy_keeps_the_frozen_values(monkeypatch, flat):
    """FP16Optimizer steps an fp32 copy of the half parameters (one flat tensor by default) with
    weight decay and copies it into the model: the frozen values are restored in both, so
    fairseq's own copy back into the model (as before every later step) keeps them."""
    if flat:  # fairseq keys the flat copy by CUDA device; on CPU parameters have index None
        monkeypatch.setattr(torch.cuda, "current_device", lambda: None)
    args = options.parse_args_and_arch(options.get_training_parser(), input_args=[
        "data", "--arch", "transformer", "--optimizer", "adam", "--lr", "0.1",
        "--weight-decay", "0.1", "--fp16"] + ([] if flat else ["--fp16-no-flatten-grads"]))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(6, 4), torch.nn.Linear(4, 4)).half()
    optimizer = FP16Optimizer.build_optimizer(convert_namespace_to_omegaconf(args),
                                              list(model.parameters()))
    assert optimizer.has_flat_params == flat
    frozen = {"0.weight": [0, 2, 3], "1.weight": None}
    freezing = Freezing(rows=frozen, until=2)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    for update in range(3):
        optimizer.zero_grad()
        optimizer.backward(model(torch.arange(6)).pow(2).sum())
        freezing.drop_gradients(model, update)
        optimizer.multiply_grads(1.0)
        freezing.optimizer_step(optimizer, model, update)
        optimizer._sync_fp32_params_to_fp16()  # what the next step starts from
        state = model.state_dict()
        for name, rows in frozen.items():
            same = torch.equal(frozen_part(state, name, rows), frozen_part(init, name, rows))
            assert same == (update < 2), (update, name)
        assert not torch.equal(frozen_part(state, "0.weight", [0, 2, 3], False),
                               frozen_part(init, "0.weight", [0, 2, 3], False))
