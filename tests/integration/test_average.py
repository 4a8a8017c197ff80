"""``fairseq-bt-average``: the last N saved states of a real tiny training, averaged."""
import shutil
import subprocess
import sys

import pytest
import torch

from helpers import train_tiny


@pytest.fixture(scope="module")
def training(corpus, tmp_path_factory):
    """8 updates, an interval checkpoint every 3 (updates 3 and 6) and checkpoint_last.pt at
    update 8 (between two intervals)."""
    d = tmp_path_factory.mktemp("avg")
    train_tiny(corpus.bin, d, ["--save-interval-updates", "3", "--keep-interval-updates", "5"],
               updates=8)
    return d


def average(*argv):
    """Run the tool as a user does; returns (exit status, stderr)."""
    p = subprocess.run([sys.executable, "-m", "fairseq_bt_plugin.average", *map(str, argv)],
                       capture_output=True, text=True)
    return p.returncode, p.stderr


def params(path):
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def test_the_average_is_the_mean_of_the_last_states(training):
    """--last 3: checkpoint_last.pt (update 8, newer than every interval checkpoint) and the
    interval checkpoints of updates 6 and 3; every parameter is the mean of theirs, the rest
    of the state is the newest's."""
    update = lambda name: int(name[:-len(".pt")].rsplit("_", 1)[1])  # noqa: E731
    names = sorted((p.name for p in training.glob("checkpoint_*_*.pt")), key=update)
    assert [update(n) for n in names] == [3, 6], names
    code, err = average("--checkpoint-dir", training, "--last", "3")
    assert code == 0, err
    assert "(updates 8, 6, 3)" in err
    avg = torch.load(training / "checkpoint_avg.pt", map_location="cpu", weights_only=False)
    sources = [training / "checkpoint_last.pt"] + [training / n for n in reversed(names)]
    states = [params(p) for p in sources]
    assert list(avg["model"]) == list(states[0])
    differ = 0
    for k, v in avg["model"].items():
        mean = sum(s[k].double() for s in states) / 3
        assert v.dtype == states[0][k].dtype and torch.equal(v, mean.to(v.dtype)), k
        differ += not torch.equal(v, states[0][k])
    assert differ > 10  # the states were different: the average is not one of them
    last = torch.load(sources[0], map_location="cpu", weights_only=False)
    assert avg["optimizer_history"] == last["optimizer_history"]
    assert avg["bt_averaged_from"] == [p.name for p in sources]


def test_too_few_states(training, tmp_path):
    """--last 4 of 3 saved states: a one-line error naming the folder and what to change, no
    output; --skip-if-fewer: says so, exit 0, no output."""
    out = tmp_path / "avg.pt"
    code, err = average("--checkpoint-dir", training, "--last", "4", "--output", out)
    assert code == 2 and not out.exists()
    assert err.strip().splitlines() == [
        f"fairseq-bt-average: error: {training}: 3 saved state(s) (interval checkpoints "
        "checkpoint_E_U.pt, checkpoint_last.pt), --last 4 needs 4: save more often "
        "(checkpoint.save_interval_updates) or keep more (checkpoint.keep_interval_updates)"]
    code, err = average("--checkpoint-dir", training, "--last", "4", "--output", out,
                        "--skip-if-fewer")
    assert code == 0 and "not averaged" in err and not out.exists()


def test_averaged_checkpoint_decodes(corpus, training, tmp_path):
    """The averaged checkpoint is a fairseq checkpoint: fairseq-bt-evaluate scores it."""
    import json

    from helpers import write_lines
    from fairseq_bt_plugin.evaluate import main
    from helpers.generate import make_input, mono_lines

    code, err = average("--checkpoint-dir", training, "--last", "2", "--output",
                        tmp_path / "avg.pt")
    assert code == 0, err
    inp, ref = tmp_path / "in.txt", tmp_path / "ref.txt"
    write_lines(inp, mono_lines(corpus, 6))  # TGT text: the training here is SRC->TGT, so
    write_lines(ref, mono_lines(corpus, 6))  # any text decodes; the score is not the point
    main(["--path", str(tmp_path / "avg.pt"), "--data-dir", str(corpus.bin), "--spm-model",
          str(corpus.spm), "--source-lang", corpus.src, "--target-lang", corpus.tgt,
          "--input", str(inp), "--reference", str(ref), "--output-prefix",
          str(tmp_path / "sys"), "--cpu", "--beam", "1", "--cpu-threads", "1"])
    assert json.loads((tmp_path / "sys.json").read_text())["sentences"] == 6


@pytest.fixture(scope="module")
def other_size(corpus, tmp_path_factory):
    """checkpoint_last.pt of a tiny model with feed-forward layers of 48 instead of 64: the
    same parameter names, other shapes."""
    return train_tiny(corpus.bin, tmp_path_factory.mktemp("avg_other"),
                      ["--encoder-ffn-embed-dim", "48", "--decoder-ffn-embed-dim", "48"],
                      updates=2)


def changed(training, tmp_path, change):
    """A folder with the training's checkpoint_last.pt (update 8) and its state of update 3
    with ``change`` applied to its parameters, as checkpoint_1_3.pt."""
    d = tmp_path / "ckpts"
    d.mkdir()
    shutil.copy(training / "checkpoint_last.pt", d / "checkpoint_last.pt")
    state = torch.load(next(training.glob("checkpoint_*_3.pt")), map_location="cpu",
                       weights_only=False)
    change(state["model"])
    torch.save(state, d / "checkpoint_1_3.pt")
    return d


@pytest.mark.parametrize("case", ["other_size", "broadcast", "dtype"])
def test_parameters_of_another_shape_or_dtype(training, other_size, tmp_path, case):
    """A state whose parameter has another shape (a model of another size, or a bias of one
    element that the mean would silently broadcast) or dtype: one line naming the parameter,
    both shapes and dtypes and both files; nothing written."""
    name, other, f32 = "encoder.layers.0.fc1.weight", "(64, 32) torch.float32", "torch.float32"
    if case == "other_size":
        d = changed(training, tmp_path, lambda p: None)
        (d / "checkpoint_last.pt").unlink()
        shutil.copy(other_size, d / "checkpoint_1_9.pt")  # the newest state by its name
        first, second, got = d / "checkpoint_1_9.pt", d / "checkpoint_1_3.pt", other
        want = f"(48, 32) {f32}"
    else:
        name = "encoder.layers.0.fc1.bias"
        if case == "broadcast":
            d = changed(training, tmp_path, lambda p: p.update({name: p[name][:1].clone()}))
            got, want = f"(1,) {f32}", f"(64,) {f32}"
        else:
            d = changed(training, tmp_path, lambda p: p.update({name: p[name].half()}))
            got, want = "(64,) torch.float16", f"(64,) {f32}"
        first, second = d / "checkpoint_last.pt", d / "checkpoint_1_3.pt"
    code, err = average("--checkpoint-dir", d, "--last", "2")
    assert code == 2 and not (d / "checkpoint_avg.pt").exists()
    assert err.strip().splitlines() == [
        f"fairseq-bt-average: error: {second}: parameter {name} is {got} but {want} in "
        f"{first} (a model of another size or precision): cannot average them"]
