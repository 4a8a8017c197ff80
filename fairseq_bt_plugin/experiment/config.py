"""The experiment file's schema: the one place for its keys, defaults and help text, and for
the pipeline's variables.

An experiment file (YAML) sets some of these keys; the rest keep the defaults below. The
pipeline (``scripts/pipeline.sh FILE``) reads it through :mod:`.loader`; environment variables
and ``key=value`` arguments override it. A key's ``env`` (its metadata) names the environment
variable that overrides it, which is also the shell variable the pipeline's scripts read it
from (:func:`environment`); a mapping ``{"SUBKEY": "VAR"}`` names one of the keys inside it
(e.g. every test set's ``max_pairs``). ``shell`` names a shell variable that is no override.
Values the scripts read that no key holds as such are :data:`DERIVED`.
"""
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from fairseq.dataclass import FairseqDataclass
from omegaconf import MISSING

from ..cleaning import CleanConfig
from ..generate.config import MODES, WEIGHTS_CHOICES
from ..inference.config import BACKEND_CHOICES
from ..options import ChoiceEnum

INIT_CHOICES = ChoiceEnum(["scratch", "baseline"])
#: the generator's modes, and copy: the copied-text control (fairseq-bt-backtranslate copy)
BT_MODE_CHOICES = ChoiceEnum(MODES + ["copy"])


@dataclass
class FileConfig(FairseqDataclass):
    """One corpus file. In the experiment file a plain string is a ``path``."""
    path: str = field(
        default="",
        metadata={"help": "local file, plain text or .gz, one sentence per line; relative to "
                  "data_dir. Used when it exists (checked against md5 when one is given)"})
    url: str = field(
        default="",
        metadata={"help": "where to download the file from when path is empty or missing "
                  "(https://, http:// or file://); downloaded once into cache_dir"})
    md5: str = field(
        default="",
        metadata={"help": "md5 checksum of the file (required with url)"})


@dataclass
class ParallelConfig(FairseqDataclass):
    """Line-aligned text in both languages: the files of each side are read in order."""
    source: List[FileConfig] = field(
        default_factory=list, metadata={"help": "source-language files"})
    target: List[FileConfig] = field(
        default_factory=list,
        metadata={"help": "target-language files, line-aligned with source"})
    max_pairs: int = field(
        default=0, metadata={"help": "take at most this many pairs (0: all)"})
    skip: int = field(
        default=0, metadata={"help": "leave out this many pairs first (after shuffle)"})
    shuffle: bool = field(
        default=False,
        metadata={"help": "shuffle the pairs (with seed) before skip and max_pairs; the same "
                  "files shuffled with the same seed give the same order in every section, "
                  "so skip can keep two sections apart"})


@dataclass
class MonoConfig(FairseqDataclass):
    """Monolingual text in one language; blank lines are left out."""
    files: List[FileConfig] = field(
        default_factory=list, metadata={"help": "the files, read in order"})
    max_lines: int = field(
        default=0, metadata={"help": "take at most this many lines (0: all)"})
    skip: int = field(
        default=0, metadata={"help": "leave out this many lines first (after shuffle)"})
    shuffle: bool = field(
        default=False, metadata={"help": "shuffle the lines (with seed) before skip"})
    exclude: List[FileConfig] = field(
        default_factory=list,
        metadata={"help": "leave out every line that occurs in one of these files (e.g. a "
                  "whole parallel corpus), before max_lines"})
    dedup: bool = field(
        default=False,
        metadata={"help": "keep only the first occurrence of each line, before max_lines"})


@dataclass
class BTConfig(FairseqDataclass):
    """How the monolingual text is back-translated and mixed into training."""
    mode: BT_MODE_CHOICES = field(
        default="beam",
        metadata={"env": "BT_MODE", "help": "fairseq-bt-backtranslate --mode; copy: no "
                  "back-translation but the control it must beat (Currey et al. 2017): each "
                  "monolingual sentence is its own source, tagged like synthetic ones "
                  "(fairseq-bt-backtranslate copy; no reverse model is trained for it, and "
                  "the generator's keys, bt.beam, bt.backend and bt.generate_args, are not "
                  "read)"})
    copies: bool = field(
        default=False,
        metadata={"env": "BT_COPIES", "help": "true: the +BT model also trains on the "
                  "monolingual text copied as its own source (bt.mode copy's corpus, "
                  "WORK/bt/mono_TGT_copy, tagged alike): back-translations and copies together, "
                  "which Currey et al. 2017 found complementary (the demo at convergence, 2 "
                  "seeds: +1.42 BLEU over back-translation alone; docs/results/"
                  "demo-convergence.md)"})
    beam: int = field(default=2, metadata={"env": "BT_BEAM", "help": "fairseq-bt-backtranslate --beam"})
    nbest: Optional[int] = field(
        default=None,
        metadata={"help": "synthetic sentences per monolingual sentence: fairseq-bt-backtranslate "
                  "--nbest (null: the generator's default)"})
    tag: str = field(
        default="<BT>",
        metadata={"env": "BT_TAG", "help": "tagged back-translation (Caswell et al. 2019): this token starts "
                  "every synthetic source sentence; empty: untagged"})
    backend: BACKEND_CHOICES = field(
        default="ctranslate2",
        metadata={"env": "BT_BACKEND", "help": "fairseq-bt-backtranslate --backend (ctranslate2: int8 on CPU, the same "
                  "held-out BLEU as fairseq's and several times faster: README, Benchmarks)"})
    weights: Optional[WEIGHTS_CHOICES] = field(
        default=None,
        metadata={"help": "weight each synthetic pair's loss: fairseq-bt-backtranslate --weights "
                  "(auto: 1/K for K sampled sources, the posterior over a beam's n-best list) "
                  "and task.bt_weighted=true (null: unweighted)"})
    synthetic_fraction: Optional[float] = field(
        default=None,
        metadata={"help": "task.bt_synthetic_fraction of the +BT model: the share of synthetic "
                  "pairs in each epoch (null: the task's default, upsample_primary)"})
    upsample_primary: Optional[int] = field(
        default=None,
        metadata={"help": "task.upsample_primary of the +BT model: the bitext repeated this "
                  "many times per epoch (null: the task's default)"})
    updates: float = field(
        default=2.0,
        metadata={"env": "BT_UPDATES", "help": "the +BT model trains this many times the profile's max_update (its "
                  "data is several times the bitext)"})
    patience: Optional[int] = field(
        default=None,
        metadata={"env": "BT_PATIENCE", "help": "checkpoint.patience of the +BT model (its data "
                  "are several times the bitext, its validation loss falls longer and more "
                  "slowly; null: patience's)"})
    init: INIT_CHOICES = field(
        default="scratch",
        metadata={"env": "BT_INIT", "help": "the +BT model's first weights: scratch (random) or baseline (the "
                  "baseline's, through fairseq's checkpoint.finetune_from_model: a new "
                  "optimizer and schedule; it then trains after the baseline has finished)"})
    filter: str = field(
        default="",
        metadata={"env": "BT_FILTER", "help": "METHOD:FRACTION: before the +BT training, drop that fraction of the "
                  "synthetic pairs, the worst by METHOD: dual (dual conditional cross-entropy "
                  "of the reverse model and the baseline) or reverse (the reverse model's own "
                  "score), e.g. dual:0.1 (fairseq-bt-filter); empty: off"})
    corpus: str = field(
        default="",
        metadata={"env": "BT_CORPUS", "help": "name of the synthetic corpus (WORK/bt/NAME); empty: mono_TGT, or "
                  "mono_TGT_MODE for a mode other than beam. A corpus is made once per name: "
                  "to compare generation settings (--sampling-topk, beam, ...) in one work "
                  "directory, give each its own name (a finished corpus made with other "
                  "settings is an error, not reused)"})
    shards: int = field(
        default=1,
        metadata={"env": "BT_SHARDS", "help": "split back-translation over this many workers (one per visible "
                  "GPU, or processes on CPU)"})
    generate_args: str = field(
        default="",
        metadata={"env": "BT_ARGS", "help": "more fairseq-bt-backtranslate flags, e.g. --fp16 --max-tokens 16000"})
    train_args: str = field(
        default="",
        metadata={"env": "BT_TRAIN_ARGS", "help": "more hydra overrides of the +BT model, e.g. "
                  "++task.bt_noise_word_dropout=0.1"})


@dataclass
class SystemsConfig(FairseqDataclass):
    """The systems trained beside the baseline (bitext only) and the reverse model."""
    bt_name: str = field(
        default="bt",
        metadata={"env": "BT_NAME", "help": "name of the +BT system: a new name in the same work directory "
                  "trains one more variant beside the finished ones"})
    finetune: float = field(
        default=0.334,
        metadata={"env": "BT_FINETUNE", "help": "system BT_NAME_ft: the +BT model goes on with the bitext alone for "
                  "this share of max_update (0: no fine-tuned system)"})
    rounds: int = field(
        default=1,
        metadata={"env": "ROUNDS", "help": "rounds of iterative back-translation (Hoang et al. 2018; > 1 needs "
                  "mono_source)"})


@dataclass
class ReverseModelConfig(FairseqDataclass):
    """An existing target->source model that back-translates instead of one trained here: a
    fairseq checkpoint (checkpoint, data, spm) or a CTranslate2 model directory (ct2_dir, spm,
    target_spm where its output has its own sentencepiece model)."""
    checkpoint: str = field(
        default="", metadata={"env": "REVERSE_CHECKPOINT", "help": "its checkpoint (.pt); empty: train a reverse model"})
    data: str = field(
        default="", metadata={"env": "REVERSE_DATA", "help": "the folder with its dict.SRC.txt and dict.TGT.txt"})
    ct2_dir: str = field(
        default="", metadata={"env": "REVERSE_CT2_DIR", "help": "a CTranslate2 model directory instead of a checkpoint (e.g. an OPUS-MT model "
                              "converted by ct2-opus-mt-converter; decoded with CTranslate2, its output re-encoded with this run's "
                              "sentencepiece model)"})
    spm: str = field(default="", metadata={"env": "REVERSE_SPM", "help": "its sentencepiece model (ct2_dir: of its input, the target language)"})
    target_spm: str = field(
        default="", metadata={"env": "REVERSE_TARGET_SPM", "help": "ct2_dir: the sentencepiece model of its output (the source language) "
                              "when it is not spm's"})


@dataclass
class PairConfig(FairseqDataclass):
    """One pair SRC->target_lang of an experiment with several source languages (``pairs``)."""
    bitext: ParallelConfig = field(
        default_factory=ParallelConfig, metadata={"env": {"max_pairs": "BITEXT"}, "help": "the pair's parallel training data"})
    valid: ParallelConfig = field(
        default_factory=ParallelConfig, metadata={"env": {"max_pairs": "VALID"}, "help": "the pair's validation set"})
    tests: Dict[str, ParallelConfig] = field(
        default_factory=dict,
        metadata={"env": {"*.max_pairs": "TEST"}, "help": "the pair's named test sets (NAME: letters, digits, _ -), each "
                  "scored and reported"})


@dataclass
class MultilingualConfig(FairseqDataclass):
    """The multilingual models of an experiment with ``pairs`` (task bt_multilingual)."""
    updates: float = field(
        default=2.0,
        metadata={"env": "MULTI_UPDATES", "help": "the multilingual model and the multilingual reverse model train "
                  "this many times the profile's max_update (they see every pair); the "
                  "multilingual +BT model this times bt.updates"})
    sampling_temperature: float = field(
        default=1.5,
        metadata={"env": "MULTI_TEMPERATURE", "help": "fairseq's temperature sampling across the pairs (1: in proportion "
                  "to their sizes; higher: the smaller pairs more often)"})
    train_args: str = field(
        default="",
        metadata={"env": "MULTI_TRAIN_ARGS", "help": "more hydra overrides of the multilingual models, e.g. "
                  "++task.bt_upsample_primary=2"})


@dataclass
class ExperimentConfig(FairseqDataclass):
    name: str = field(
        default=MISSING,
        metadata={"shell": "EXPERIMENT_NAME", "help": "name of the experiment: the report's title and the default work "
                  "directory (letters, digits, . _ -)"})
    source_lang: str = field(
        default="",
        metadata={"env": "SRC", "help": "source language code, e.g. de (an experiment with pairs names its "
                  "source languages there instead)"})
    target_lang: str = field(
        default=MISSING, metadata={"env": "TGT", "help": "target language code, e.g. en"})
    vars: Dict[str, Any] = field(
        default_factory=dict,
        metadata={"help": "values of your own, for ${vars.NAME} in other keys (e.g. a URL "
                  "prefix)"})
    allow_any_language: bool = field(
        default=False,
        metadata={"help": "accept a language code the Moses normaliser has no rules for (it "
                  "then normalises with its generic rules)"})
    work: str = field(
        default="runs/${name}",
        metadata={"env": "WORK", "help": "run directory, relative to the current directory"})
    data_dir: str = field(
        default="",
        metadata={"env": "CORPUS", "help": "folder that relative corpus paths start from, itself relative to "
                  "this file's folder (empty: this file's folder)"})
    cache_dir: str = field(
        default="data/downloads",
        metadata={"env": "DOWNLOAD_DIR", "help": "downloads (url:) go to CACHE_DIR/MD5/NAME, once; relative to the "
                  "current directory"})
    seed: int = field(default=1, metadata={"help": "seed of shuffle: true"})
    bitext: ParallelConfig = field(
        default_factory=ParallelConfig, metadata={"env": {"max_pairs": "BITEXT"}, "help": "the parallel training data"})
    valid: ParallelConfig = field(
        default_factory=ParallelConfig,
        metadata={"env": {"max_pairs": "VALID"}, "help": "the validation set (model selection, early stopping)"})
    tests: Dict[str, ParallelConfig] = field(
        default_factory=dict,
        metadata={"env": {"*.max_pairs": "TEST"}, "help": "named test sets (NAME: letters, digits, _ -), each scored and "
                  "reported"})
    pairs: Dict[str, PairConfig] = field(
        default_factory=dict,
        metadata={"help": "several source languages into target_lang (many-to-one), instead "
                  "of source_lang, bitext, valid and tests: SRC: {bitext, valid, tests} per "
                  "pair. Per pair a reverse model, a baseline and a +BT model; one "
                  "multilingual model on every pair's bitext, one multilingual reverse model "
                  "back-translating mono into every source language, and the multilingual "
                  "+BT model (multilingual:). For one pair only: mono_source, "
                  "systems.rounds, bt.filter, bt.init, reverse_model (errors) and "
                  "systems.finetune (not used); the multilingual back-translation is one "
                  "fairseq generator (bt.backend and bt.shards: the bilingual ones)"})
    multilingual: MultilingualConfig = field(
        default_factory=MultilingualConfig,
        metadata={"help": "the multilingual models (with pairs)"})
    mono: MonoConfig = field(
        default_factory=MonoConfig,
        metadata={"env": {"max_lines": "MONO"}, "help": "target-language monolingual text to back-translate"})
    mono_source: MonoConfig = field(
        default_factory=MonoConfig,
        metadata={"env": {"max_lines": "MONO"}, "help": "source-language monolingual text (systems.rounds > 1)"})
    cleaning: CleanConfig = field(
        default_factory=CleanConfig,
        metadata={"help": "fairseq-bt-clean's options (see fairseq-bt-clean --help)"})
    spm_vocab: int = field(
        default=4000, metadata={"env": "SPM_VOCAB", "help": "joint sentencepiece vocabulary size"})
    profile: str = field(
        default="cpu_demo",
        metadata={"env": "PROFILE", "help": "training profile: configs/PROFILE.yaml (cpu_demo, cpu_experiment, "
                  "gpu_experiment, base_gpu, tiny)"})
    train_args: str = field(
        default="", metadata={"env": "TRAIN_ARGS", "help": "more hydra overrides for every model"})
    patience: Optional[int] = field(
        default=None,
        metadata={"env": "PATIENCE", "help": "every model stops after this many validations "
                  "without a lower validation loss (checkpoint.patience; null: the profile's, "
                  "-1: none), its profile's max_update being a cap; the report says which "
                  "stopped each model"})
    bt: BTConfig = field(default_factory=BTConfig, metadata={"help": "back-translation"})
    systems: SystemsConfig = field(
        default_factory=SystemsConfig, metadata={"help": "the systems to train"})
    eval_beam: int = field(
        default=5, metadata={"env": "EVAL_BEAM", "help": "beam size of the test-set evaluation"})
    baseline_parallel: Optional[bool] = field(
        default=None,
        metadata={"env": "BASELINE_PARALLEL", "help": "true: train the baseline beside the reverse model and BT (on CPU "
                  "each with half the cores); false: one model at a time; null: true with a "
                  "GPU profile, false with a CPU one"})
    progress_interval: int = field(
        default=60,
        metadata={"env": "PROGRESS_INTERVAL", "help": "seconds between progress lines when the output is not a terminal"})
    export_system: str = field(
        default="best",
        metadata={"env": "EXPORT_SYSTEM", "help": "the system the pipeline exports at its end "
                  "(fairseq-bt-export: a CTranslate2 directory with its model card, "
                  "WORK/export/NAME; a run with pairs: each pair's into "
                  "WORK/export/PAIR/NAME): best: the one of highest BLEU on the first test set; "
                  "a system's name; empty: none"})
    reverse_model: ReverseModelConfig = field(
        default_factory=ReverseModelConfig,
        metadata={"help": "reuse an existing reverse model"})
    average_last: int = field(
        default=0,
        metadata={"env": "AVERAGE_LAST", "help": "N > 1: every model keeps its last N interval checkpoints, and "
                  "evaluation and back-translation decode with their average, "
                  "checkpoint_avg.pt (fairseq-bt-average; a model with fewer saved states "
                  "uses its checkpoint_best.pt)"})
    launcher: str = field(
        default="",
        metadata={"env": "LAUNCHER", "help": "command prefix of every training, back-translation and evaluation, "
                  "e.g. srun --ntasks=1 --gres=gpu:1 (empty: none)"})


#: the scripts' variables computed from several keys (``fairseq-bt-experiment settings``)
DERIVED = {
    "EXPERIMENT_FILE": "WORK/experiments/SHA.yaml: the experiment as this run applies it",
    "PAIRS": "with pairs: SRC-TGT of each pair (empty: one pair)",
    "SRC_LANGS": "with pairs: their source languages",
    "TEST_SETS": "the names of the test sets",
    "BT_GENERATE_FLAGS": "fairseq-bt-backtranslate's flags: bt.nbest, bt.weights, bt.generate_args",
    "BT_OVERRIDES": "the +BT model's hydra overrides: bt.synthetic_fraction, "
                    "bt.upsample_primary, bt.weights, bt.train_args",
    "MULTI_BT_OVERRIDES": "the same for the multilingual +BT model",
    "BT_FILTER_METHOD": "bt.filter's METHOD (empty: no filter)",
    "BT_FILTER_FRACTION": "bt.filter's FRACTION",
    "CLEAN_ARGS": "fairseq-bt-clean's flags (cleaning)",
    "DATA_SETTINGS": "the keys that decide the raw data, as JSON (the data stage's record)",
}


def _fields(cls: type, prefix: str = ""):
    """``(key, field)`` of every field of ``cls``, nested ones included (``*``: any name of a
    mapping)."""
    hints = {f.name: f.type for f in dataclasses.fields(cls)}
    for f in dataclasses.fields(cls):
        if f.name.startswith("_"):
            continue
        yield prefix + f.name, f
        inner = getattr(hints[f.name], "__args__", None)
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _fields(hints[f.name], f"{prefix}{f.name}.")
        elif inner and dataclasses.is_dataclass(inner[-1]) and not f.metadata.get("env"):
            yield from _fields(inner[-1], f"{prefix}{f.name}.*.")


def environment() -> Dict[str, List[str]]:
    """Each environment variable of the pipeline -> the keys it overrides, in the schema's
    order (the first: the value of its shell variable)."""
    table: Dict[str, List[str]] = {}
    for key, f in _fields(ExperimentConfig):
        env = f.metadata.get("env")
        for sub, var in ({"": env} if isinstance(env, str) else env or {}).items():
            table.setdefault(var, []).append(f"{key}.{sub}" if sub else key)
    return table


def shell_only() -> Dict[str, str]:
    """Shell variable -> the key it holds, for the keys with no override (``shell``)."""
    return {f.metadata["shell"]: key for key, f in _fields(ExperimentConfig)
            if "shell" in f.metadata}
