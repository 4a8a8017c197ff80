"""The training profiles in configs/: composed by ``fairseq-bt-hydra-train --config-dir configs
--config-name NAME --cfg job`` (hydra's own composition, as for training), each equals its
golden values (tests/golden_profiles.json: fairseq's defaults overridden by the profile, taken
before the profiles shared a base file)."""
import json
import subprocess
import sys
from pathlib import Path

import yaml

from helpers import ROOT

CONFIG_DIR = ROOT / "configs"
PROFILES = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml") if not p.stem.startswith("_"))
GOLDEN = ROOT / "tests" / "golden_profiles.json"
HYDRA_TRAIN = str(Path(sys.executable).parent / "fairseq-bt-hydra-train")


def flatten(node, prefix=""):
    """``{"a.b": value}`` for every leaf of a nested dict (lists are leaves)."""
    if not isinstance(node, dict):
        return {prefix: node}
    out = {}
    for key, value in node.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def composed_profile(name):
    """The flattened config that training with profile NAME composes (without the hydra
    section and the plugin's path); ``???`` for the required values."""
    p = subprocess.run([HYDRA_TRAIN, "--config-dir", str(CONFIG_DIR), "--config-name", name,
                        "--cfg", "job"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    flat = flatten(yaml.safe_load(p.stdout))
    return {k: v for k, v in flat.items() if not k.startswith("hydra.") and k != "common.user_dir"}


def fairseq_defaults():
    from fairseq.dataclass.configs import FairseqConfig
    from omegaconf import OmegaConf

    flat = flatten(OmegaConf.to_container(OmegaConf.structured(FairseqConfig), resolve=False,
                                          enum_to_str=True))
    return {k: v for k, v in flat.items() if k != "common.user_dir"}


def test_every_profile_is_golden():
    golden = json.loads(GOLDEN.read_text())
    assert set(PROFILES) == set(golden)
    base = fairseq_defaults()
    for name in PROFILES:
        expected = {k: v for k, v in base.items()
                    if not any(k == g.split(".")[0] for g in golden[name])}
        expected.update(golden[name])  # a group the profile sets replaces fairseq's empty one
        assert composed_profile(name) == expected, name


def own_keys(name):
    """The keys a config file sets itself, and the base files its defaults list names."""
    node = yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text())
    bases = [d for d in node.pop("defaults", []) if d != "_self_"]
    return set(flatten(node)), bases


def test_profiles_do_not_set_a_key_of_their_base():
    """The base files merge after the profile (see configs/_base.yaml): a key set in both
    would silently take the base's value."""
    for name in PROFILES:
        keys, todo = own_keys(name)
        while todo:
            base_keys, more = own_keys(todo.pop())
            assert not keys & base_keys, (name, keys & base_keys)
            keys |= base_keys
            todo += more
