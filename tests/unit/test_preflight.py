"""The settings step checks what the tools will get before any work
(fairseq_bt_plugin/experiment/preflight.py): every hydra override list composed against the
profile, fairseq's schema and the selected task/model/criterion (fairseq's ``++`` adds an
unknown key without a word), and the generator's flags parsed by fairseq-bt-backtranslate. Each
error is one line naming where the value came from and the closest valid key or flag; every
shipped profile and experiment, with the overrides the drivers add, passes."""
import functools
import re

import pytest

from fairseq_bt_plugin.experiment import cli, loader, preflight

from helpers import ROOT, SRC, TATOEBA, TGT

CONFIGS = ROOT / "configs"
EXPERIMENTS = CONFIGS / "experiments"
PROFILES = sorted(p.stem for p in CONFIGS.glob("*.yaml") if not p.name.startswith("_"))
MULTI = EXPERIMENTS / "multi30k_multi.yaml"


def experiment(tmp_path, **keys):
    """A one-pair experiment over the committed slice (files are read later, not here)."""
    def side(lang):
        return [str(TATOEBA / f"train.{lang}")]

    path = tmp_path / "e.yaml"
    keys = {"profile": "tiny", **keys}
    lines = [f"name: e\nsource_lang: {SRC}\ntarget_lang: {TGT}",
             f"bitext: {{source: {side(SRC)}, target: {side(TGT)}}}",
             f"valid: {{source: {side(SRC)}, target: {side(TGT)}}}",
             f"tests: {{t: {{source: {side(SRC)}, target: {side(TGT)}}}}}",
             f"mono: {{files: {side(TGT)}}}"] + [f"{k}: {v}" for k, v in keys.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def settings(path, overrides=(), env=None):
    """The settings step's checks (``settings --configs``) in process."""
    overrides, env = list(overrides), env or {}
    exp = loader.load(str(path), overrides, env)
    origin = functools.partial(loader.origin, str(path), overrides=overrides, env=env)
    preflight.check_generate_args(exp, cli.generate_args(exp), origin)
    preflight.check_overrides(exp, str(CONFIGS), origin)
    return exp


#: (file keys, KEY=VALUE, environment, where the error says the value came from, the error)
TYPOS = {
    "optimization": ({}, [], {"TRAIN_ARGS": "++optimization.max_updat=100"},
                     "train_args (environment variable TRAIN_ARGS): ++optimization.max_updat=100",
                     "unknown key 'optimization.max_updat' (did you mean "
                     "'optimization.max_update'?)"),
    "model": ({"train_args": "++model.dropuot=0.3"}, [], {}, "train_args: ++model.dropuot=0.3",
              "unknown key 'model.dropuot' (did you mean 'model.dropout'?)"),
    "common": ({}, ["train_args=common.seed=2 ++common.sed=3"], {},
               "train_args (KEY=VALUE argument): ++common.sed=3",
               "unknown key 'common.sed' (did you mean 'common.seed'?)"),
    "a group": ({"train_args": "+bogus.key=1"}, [], {}, "train_args: +bogus.key=1",
                "unknown key 'bogus.key'"),
    "without +": ({"train_args": "optimization.max_updat=100"}, [], {},
                  "train_args: optimization.max_updat=100",
                  "unknown key 'optimization.max_updat' (did you mean "
                  "'optimization.max_update'?)"),
    "the +BT task": ({}, [], {"BT_TRAIN_ARGS": "++task.bt_noise_word_dropot=0.1"},
                     "bt.train_args (environment variable BT_TRAIN_ARGS): "
                     "++task.bt_noise_word_dropot=0.1 (models bt)",
                     "unknown key 'task.bt_noise_word_dropot' (did you mean "
                     "'task.bt_noise_word_dropout'?)"),
    "architecture": ({"train_args": "model._name=bt_transformer_tinyy"}, [], {},
                     "train_args: model._name=bt_transformer_tinyy",
                     "unknown model 'bt_transformer_tinyy' (did you mean "
                     "'bt_transformer_tiny'?)"),
    "criterion key": ({"train_args": "++criterion.label_smothing=0.2"}, [], {},
                      "train_args: ++criterion.label_smothing=0.2",
                      "unknown key 'criterion.label_smothing' (did you mean "
                      "'criterion.label_smoothing'?)"),
    "a value": ({"train_args": "optimization.max_update=many"}, [], {},
                "train_args: optimization.max_update=many",
                "Value 'many' of type 'str' could not be converted to Integer"),
    "a task value": ({"train_args": "++task.bt_synthetic_fraction=half"}, [], {},
                     "train_args: ++task.bt_synthetic_fraction=half",
                     "Value 'half' of type 'str' could not be converted to Float"),
}


@pytest.mark.parametrize("case", TYPOS)
def test_an_override_training_would_ignore_or_reject_is_one_line(case, tmp_path):
    keys, overrides, env, source, message = TYPOS[case]
    path = experiment(tmp_path, **keys)
    with pytest.raises(loader.BTUserError) as e:
        settings(path, overrides, env)
    text = str(e.value)
    assert "\n" not in text and text.startswith(f"{path}: {source}"), text
    assert text.endswith(f": {message}"), text


def test_the_multilingual_models_overrides_are_checked_against_bt_multilingual():
    """bt_multilingual is a legacy (argparse) task: its keys are its options."""
    with pytest.raises(loader.BTUserError) as e:
        settings(MULTI, [], {"MULTI_TRAIN_ARGS": "++task.sampling_temperatur=2"})
    assert str(e.value).startswith(
        f"{MULTI}: multilingual.train_args (environment variable MULTI_TRAIN_ARGS): "
        "++task.sampling_temperatur=2 (models multi, multi_reverse): unknown key "
        "'task.sampling_temperatur' (did you mean 'task.sampling_temperature'?)"), e.value
    settings(MULTI, ["bt.upsample_primary=2", "bt.weights=sequence"],
             {"MULTI_TRAIN_ARGS": "++task.sampling_temperature=2"})


def test_an_unknown_profile_key_names_the_profile(tmp_path):
    configs = tmp_path / "configs"
    configs.mkdir()
    for p in CONFIGS.glob("*.yaml"):
        (configs / p.name).write_text(p.read_text(encoding="utf-8"), encoding="utf-8")
    tiny = (configs / "tiny.yaml").read_text(encoding="utf-8")
    (configs / "mine.yaml").write_text(tiny.replace("dropout: 0.2", "dropuot: 0.2"),
                                       encoding="utf-8")
    exp = loader.load(str(experiment(tmp_path, profile="mine")))
    with pytest.raises(loader.BTUserError, match=rf"^{configs}/mine.yaml \(models reverse, "
                       r"baseline\): unknown key 'model.dropuot' \(did you mean "
                       r"'model.dropout'\?\)$"):
        preflight.check_overrides(exp, str(configs), lambda key: key)


# ---- the generator's flags ---------------------------------------------------------------

@pytest.mark.parametrize("keys, env, message", [
    ({}, {"BT_ARGS": "--sampling-topkk 10"}, "bt.generate_args (environment variable BT_ARGS): "
     "fairseq-bt-backtranslate --sampling-topkk 10: unrecognized arguments: --sampling-topkk 10 "
     "(did you mean --sampling-topk?)"),
    ({"bt": "{generate_args: --nbest 4}"}, {}, "bt.generate_args: fairseq-bt-backtranslate --nbest "
     "4: --nbest 4 is larger than --beam 2"),
    ({"bt": "{mode: beam, generate_args: --sampling-topk 10}"}, {}, "bt.generate_args: "
     "fairseq-bt-backtranslate --sampling-topk 10: --sampling-topk/--sampling-topp need --mode "
     "sample"),
    ({}, {"BT_ARGS": "--max-tokens"}, "bt.generate_args (environment variable BT_ARGS): "
     "fairseq-bt-backtranslate --max-tokens: argument "
     "--max-tokens: expected one argument"),
])
def test_the_generator_flags_are_parsed_before_any_work(keys, env, message, tmp_path):
    path = experiment(tmp_path, **keys)
    with pytest.raises(loader.BTUserError) as e:
        settings(path, [], env)
    assert str(e.value) == f"{path}: {message}"


def test_nbest_over_the_beam_is_an_error_of_the_experiment(tmp_path):
    path = experiment(tmp_path, bt="{nbest: 4, beam: 2}")
    with pytest.raises(loader.BTUserError, match=r": bt.nbest 4 is larger than bt.beam 2 "):
        loader.load(str(path))
    with pytest.raises(loader.BTUserError, match=r": bt.nbest 2 with bt.mode greedy"):
        loader.load(str(path), ["bt.mode=greedy", "bt.nbest=2"])
    assert loader.load(str(path), ["bt.mode=sample"]).bt.nbest == 4  # N samples


def test_the_flags_the_tests_and_readme_use_pass(tmp_path):
    path = experiment(tmp_path)
    for flags in ("--max-len-a 1.2 --max-len-b 5 --chunk-size 30", "--fp16 --max-tokens 16000",
                  "--cpu", "--samples-per-sentence 2"):
        settings(path, [], {"BT_ARGS": flags, "BT_BEAM": "2"})
    settings(path, [], {"BT_MODE": "sample", "BT_ARGS": "--sampling-topk 10"})


# ---- every shipped configuration passes ----------------------------------------------------

#: keys that add the drivers' conditional overrides
EVERY_OVERRIDE = ["average_last=3", "bt.weights=sequence", "bt.upsample_primary=2",
                  "bt.synthetic_fraction=0.5", "patience=3", "bt.patience=5"]


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("name", sorted(p.stem for p in EXPERIMENTS.glob("*.yaml")))
def test_every_shipped_profile_and_experiment_passes(name, profile):
    path = str(EXPERIMENTS / f"{name}.yaml")
    overrides = [f"profile={profile}", *EVERY_OVERRIDE]
    exp = loader.load(path, overrides + ([] if loader.load(path).pairs else ["bt.init=baseline"]))
    origin = functools.partial(loader.origin, path)
    preflight.check_generate_args(exp, cli.generate_args(exp), origin)
    preflight.check_overrides(exp, str(CONFIGS), origin, every_run=True)


def test_the_drivers_overrides_are_those_composed(tmp_path):
    """Every hydra key scripts/pipeline*.sh and train.sh pass is in preflight.training_runs
    (which the test above composes for every profile): its copy of them cannot drift."""
    groups = "task|model|criterion|optimizer|lr_scheduler|checkpoint|optimization|common|dataset"
    pattern = re.compile(rf"(?<![\w.$/])[+~]*((?:{groups})\.[a-z_]+)")
    scripts = ROOT / "scripts"
    text = "".join((scripts / f).read_text(encoding="utf-8") for f in
                   ("pipeline.sh", "pipeline_multi.sh", "stages/driver.sh"))
    train = (scripts / "stages" / "train.sh").read_text(encoding="utf-8")
    call = train[train.index("fairseq-bt-hydra-train --config-dir"):]
    passed = set(pattern.findall(text + call[:call.index("||")]))
    assert {"task.bt_data", "checkpoint.continue_once", "task.extra_data"} <= passed

    composed = set()
    for path, overrides in ((experiment(tmp_path), ["bt.init=baseline"]), (MULTI, [])):
        exp = loader.load(str(path), overrides + EVERY_OVERRIDE)
        for run in preflight.training_runs(exp, str).values():
            composed |= {preflight._key(item) for _, item in run}
    assert passed - composed == set()


def test_the_bt_models_patience_is_its_own(tmp_path):
    """bt.patience: the +BT model (and the multilingual one) stops after its own number of
    validations; every other model after patience's (composed as fairseq-bt-hydra-train
    composes the drivers' lists: the later value wins)."""
    for path, expected in ((experiment(tmp_path), {"reverse, baseline": 3, "bt": 7, "bt_ft": 3}),
                           (MULTI, {"multi, multi_reverse": 3, "multi_bt": 7})):
        exp = loader.load(str(path), ["patience=3", "bt.patience=7"])
        runs = preflight.training_runs(exp, str)
        with preflight._hydra(str(CONFIGS), exp.profile) as compose:
            got = {name: compose([item for _, item in run]).checkpoint.patience
                   for name, run in runs.items()}
        assert {k: got[k] for k in expected} == expected, got
    with pytest.raises(loader.BTUserError, match=r"bt.patience must be >= 1, or -1"):
        loader.load(str(experiment(tmp_path)), ["bt.patience=0"])


def test_fairseq_composes_as_before_after_the_check(corpus):
    """The check leaves hydra's process-wide version base as it was: fairseq's own
    composition (hydra.experimental, refused under version base 1.2 or later) still works in
    the same process."""
    from helpers import setup_task

    exp = loader.load(str(ROOT / "configs" / "experiments" / "multi30k_demo.yaml"))
    preflight.check_overrides(exp, str(CONFIGS), lambda key: key)
    task, cfg = setup_task([str(corpus.bin), "-s", SRC, "-t", TGT, "--task", "translation"])
    assert cfg.task.source_lang == SRC
