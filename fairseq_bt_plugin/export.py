"""``fairseq-bt-export``: a trained model as a self-contained CTranslate2 directory.

The directory holds the CTranslate2 model (int8 weights by default), the sentencepiece model,
the fairseq dictionaries and a model card (``README.md`` and ``model.json``: languages,
architecture, the checkpoint, and for a model of a pipeline run its test scores with their
sacrebleu signatures, the commit and the experiment file that made it). It is usable without
this package: ``ctranslate2`` and ``sentencepiece`` translate with it (the card shows how).
Written under a temporary name and moved into place when complete; an existing directory is
replaced only with ``--force``.
"""
import dataclasses
import datetime
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from fairseq.dataclass import FairseqDataclass
from omegaconf import MISSING

from .errors import check, run_reporting_user_errors
from .inference.config import same_field
from .options import ChoiceEnum, parse_dataclass
from .translate import TranslateConfig, checkpoint_languages, resolve, run_of_checkpoint

PROG = "fairseq-bt-export"
QUANTIZATION_CHOICES = ChoiceEnum(["int8", "float32", "int8_float32", "float16", "bfloat16"])
FILES = ("model.bin", "spm.model", "README.md", "model.json")

#: translating with the exported directory: ctranslate2 and sentencepiece only
SNIPPET = '''import json, sys
import ctranslate2, sentencepiece

model = sys.argv[1]  # the exported directory
card = json.load(open(f"{{model}}/model.json"))  # the prefixes: a multilingual model's language tokens
sp = sentencepiece.SentencePieceProcessor(model_file=f"{{model}}/spm.model")
translator = ctranslate2.Translator(model, device="cpu", compute_type="int8")
sources = [card["source_prefix"] + sp.encode(line.strip(), out_type=str) for line in sys.stdin]
results = translator.translate_batch(sources, target_prefix=[card["target_prefix"]] * len(sources), beam_size=5)
n = len(card["target_prefix"])
print("\\n".join(sp.decode(r.hypotheses[0][n:]) for r in results))
'''


@dataclass
class ExportConfig(FairseqDataclass):
    path: str = field(default="", metadata={"help": "fairseq checkpoint (or --run/--system)"})
    run: str = same_field(TranslateConfig, "run")
    system: str = field(default="", metadata={"help": "--run: the system to export (a folder "
                                              "of WORK/models/, e.g. bt_ft); best: the one of "
                                              "highest BLEU on --test-set (reverse models "
                                              "aside)"})
    test_set: str = field(default="", metadata={"help": "--system best: the test set that "
                                                "decides (WORK/eval/SET/)"})
    data_dir: str = same_field(TranslateConfig, "data_dir")
    spm_model: str = same_field(TranslateConfig, "spm_model")
    source_lang: str = same_field(TranslateConfig, "source_lang")
    target_lang: str = same_field(TranslateConfig, "target_lang")
    output: str = field(default=MISSING, metadata={"help": "the directory to write ('{system}' "
                                                   "in it: the system's name)"})
    quantization: QUANTIZATION_CHOICES = field(
        default="int8", metadata={"help": "weights of the CTranslate2 model (int8: about a "
                                  "quarter of float32's size; float32: as trained)"})
    force: bool = field(default=False, metadata={"help": "replace an existing --output"})
    experiment_file: str = field(
        default="", metadata={"help": "--run: the experiment file that made the run, for the "
                              "model card (default: WORK/experiment.yaml, where the pipeline's "
                              "report keeps it)"})


def _architecture(path: str) -> Dict[str, Any]:
    """The model's architecture and sizes as the checkpoint records them."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=False)
    cfg = state.get("cfg") or {}
    model = cfg.get("model") if state.get("args") is None else state["args"]
    get = (lambda k: getattr(model, k, None)) if not isinstance(model, dict) else model.get
    keys = ("encoder_layers", "decoder_layers", "encoder_embed_dim", "encoder_ffn_embed_dim",
            "encoder_attention_heads", "dropout", "share_all_embeddings")
    out = {"arch": get("_name") or get("arch"), **{k: get(k) for k in keys}}
    params = sum(v.numel() for v in state["model"].values() if hasattr(v, "numel"))
    out["parameters"] = int(params)
    updates = (state.get("optimizer_history") or [{}])[-1].get("num_updates")
    out["num_updates"] = updates
    return out


def _run_record(work: str, system: str, experiment_file: str = "") -> Dict[str, Any]:
    """What the run holds of ``system``, read from its files as ``fairseq-bt-report`` reads
    them (the pipeline exports before it writes the report): the scores of every test set it
    was evaluated on (``WORK/eval``), how its training ended, the code and the experiment
    file (``experiment_file``, else the run's ``WORK/experiment.yaml``)."""
    from .report import code_version, evaluation_results, experiment, read_training_log

    keys = ("test_set", "pair", "sentences", "bleu", "chrf", "chrfpp", "bleu_signature",
            "chrf_signature", "chrfpp_signature", "beam")
    pair, _, name = system.rpartition("/")  # PAIR/NAME: a pair's system of a multilingual run
    scores = [{k: s.get(k) for k in keys if k in s} for s in evaluation_results(work)
              if s.get("system") == name and (not pair or s.get("pair") == pair)]
    log = os.path.join(work, "models", system, "hydra_train.log")
    experiment_file = experiment_file or os.path.join(work, "experiment.yaml")
    made_by = experiment(experiment_file) if os.path.isfile(experiment_file) else None
    return {"run": os.path.abspath(work), "scores": scores,
            "training": read_training_log(log)[1] if os.path.isfile(log) else None,
            "code": code_version(), "experiment": made_by and made_by["text"]}


def _card(info: Dict[str, Any]) -> str:
    """README.md of the exported directory."""
    src, tgt = info["source_lang"], info["target_lang"]
    lines = [f"# {info['name']}: {src}->{tgt} translation model", "",
             f"A CTranslate2 model ({info['quantization']} weights) exported by {PROG} from "
             f"`{info['checkpoint']}` on {info['exported']}.", "",
             "## Translate", "",
             "With `pip install ctranslate2 sentencepiece` alone (`translate.py`, as below; one "
             "sentence per line on stdin):", "", "```python", SNIPPET.format().rstrip(), "```",
             "", f"`python translate.py DIR < input.{src} > output.{tgt}`. The pipeline that "
             "trained the model also applies sacremoses' `MosesPunctNormalizer(lang)` before "
             "encoding and decodes with its evaluation's options (`fairseq-bt-translate` with the "
             "checkpoint does both).", "",
             "## Model", "", "| key | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in info["architecture"].items()]
    run = info.get("run") or {}
    if run.get("scores"):
        lines += ["", "## Scores (the run's evaluation)", "",
                  "| test set | BLEU | chrF | chrF++ | beam |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {s.get('test_set')}" + (f" ({s['pair']})" if s.get("pair") else "")
                  + f" | {s.get('bleu')} | {s.get('chrf')} | "
                  f"{s.get('chrfpp', '')} | {s.get('beam')} |" for s in run["scores"]]
        sigs = sorted({s.get(k) for s in run["scores"] for k in
                       ("bleu_signature", "chrf_signature", "chrfpp_signature") if s.get(k)})
        lines += ["", "sacrebleu signatures: " + "; ".join(f"`{x}`" for x in sigs)]
    if run.get("code"):
        lines += ["", f"Made by commit `{run['code'].get('commit')}` from the run "
                  f"`{run['run']}`" + ("; its experiment file, with every setting, is in "
                                       "`model.json`." if run.get("experiment") else ".")]
    return "\n".join(lines) + "\n"


def best_system(work: str, test_set: str) -> str:
    """The system of ``work`` with the highest BLEU on ``test_set`` (its evaluation's
    ``WORK/eval/SET/NAME.json``; reverse models aside). ``SET/PAIR`` (a multilingual run:
    ``WORK/eval/SET/PAIR/NAME.json``): the best for that pair, named as its model folder
    (``PAIR/NAME`` for the pair's bilingual systems, ``NAME`` for the multilingual ones)."""
    folder = os.path.join(work, "eval", test_set)
    scores = {}
    if test_set and os.path.isdir(folder):
        for name in sorted(os.listdir(folder)):
            if name.endswith(".json") and "reverse" not in name:
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    scores[name[:-5]] = json.load(f)["bleu"]
    check(bool(scores), f"{folder}: no scored system (--system best needs --run and the "
          "--test-set the run scored)")
    best = max(scores, key=lambda k: (scores[k], k))
    _, _, pair = test_set.partition("/")
    if pair and os.path.isdir(os.path.join(work, "models", pair, best)):
        return f"{pair}/{best}"
    return best


def export(cfg: ExportConfig) -> Dict[str, Any]:
    """Write the directory; returns model.json's contents."""
    from .inference.translator import language_symbols
    from .inference.translator_ct2 import convert_checkpoint, model_multilingual_settings

    if cfg.run and cfg.system == "best":
        cfg = dataclasses.replace(cfg, system=best_system(cfg.run, cfg.test_set))
    out = os.path.abspath(cfg.output.replace("{system}",
                                             os.path.basename(cfg.system) or "model"))
    check(cfg.force or not os.path.exists(out),
          f"{cfg.output}: exists (give --force to replace it, or another --output)")
    model = resolve(TranslateConfig(**{f.name: getattr(cfg, f.name) for f in
                                       dataclasses.fields(ExportConfig)
                                       if f.name in ("path", "run", "system", "data_dir",
                                                     "spm_model", "source_lang", "target_lang")}))
    check(os.path.isfile(model.spm_model), f"{model.spm_model}: sentencepiece model not found")
    src, tgt = model.source_lang, model.target_lang
    data = model.data_dir or os.path.dirname(os.path.abspath(model.path))
    if cfg.source_lang or cfg.target_lang:  # else resolve took them from the checkpoint
        saved = checkpoint_languages(model.path)
        check(None in saved or saved == (src, tgt), f"{model.path}: the checkpoint translates "
              f"{saved[0]}->{saved[1]}, but -s {src} -t {tgt} was given")
    tmp = f"{out}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        convert_checkpoint(model.path, data, src, tgt, tmp, quantization=str(cfg.quantization))
        shutil.copyfile(model.spm_model, os.path.join(tmp, "spm.model"))
        for lang in (src, tgt):
            shutil.copyfile(os.path.join(data, f"dict.{lang}.txt"),
                            os.path.join(tmp, f"dict.{lang}.txt"))
        multilingual = model_multilingual_settings(tmp)
        src_token, tgt_token = language_symbols(multilingual, src, tgt)
        work, system = (cfg.run, cfg.system) if cfg.run else run_of_checkpoint(model.path)
        info = {"name": system or os.path.splitext(os.path.basename(model.path))[0],
                "directory": out,
                "source_lang": src, "target_lang": tgt,
                # a multilingual model's language tokens: before the source, forced first
                "source_prefix": [src_token] if src_token else [],
                "target_prefix": [tgt_token] if tgt_token else [],
                **({"lang_pairs": multilingual["lang_pairs"]} if multilingual else {}),
                "quantization": str(cfg.quantization),
                "checkpoint": os.path.abspath(model.path),
                "exported": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
                "architecture": _architecture(model.path),
                "run": _run_record(work, system, cfg.experiment_file) if work else None}
        with open(os.path.join(tmp, "model.json"), "w", encoding="utf-8") as f:
            json.dump(info, f, indent=1, ensure_ascii=False)
        with open(os.path.join(tmp, "README.md"), "w", encoding="utf-8") as f:
            f.write(_card(info))
        if os.path.exists(out):  # --force: the old directory goes only once the new is whole
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return info


def main(argv: Optional[List[str]] = None) -> None:
    def run() -> None:
        cfg = parse_dataclass(ExportConfig, sys.argv[1:] if argv is None else argv, PROG,
                              __doc__.split("\n\n")[0])
        info = export(cfg)
        print(f"{PROG}: {info['name']} ({info['source_lang']}->{info['target_lang']}, "
              f"{info['quantization']}) in {info['directory']}", file=sys.stderr)

    run_reporting_user_errors(run, PROG)


if __name__ == "__main__":
    main()
