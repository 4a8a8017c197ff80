"""``fairseq-bt-translate``: raw text in, translations out, with a model the pipeline trained.

One output line per input line, in order (an empty input line gives an empty line; with
``--nbest N``, N lines per input line), made exactly as ``fairseq-bt-evaluate`` makes its
hypotheses: the same normalisation, sentencepiece pieces, decoding options and
detokenisation. The model is a checkpoint with its dictionaries and sentencepiece model, given
(``--path --data --spm-model``) or found from the pipeline's run directory (``--run WORK
--system NAME``, or a ``--path`` inside ``WORK/models/``); the languages default to the
checkpoint's. The whole input is read and checked before anything is translated, and
``--output`` is written atomically: a bad line (invalid UTF-8, a NUL byte) is one error naming
the file and line, and leaves no output behind. ``--model DIR``: a directory written by
``fairseq-bt-export`` (its int8 CTranslate2 model by default; the same preparation of the text).
"""
import dataclasses
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from .atomic import atomic_open
from .errors import check, run_reporting_user_errors
from .evaluate import EvaluateConfig, translate_lines
from .inference.config import DecodingConfig, is_ct2_model_dir, same_field
from .inference.translator_ct2 import exported_languages
from .options import parse_dataclass
from .text_processing import bad_line_error, decode_lines

PROG = "fairseq-bt-translate"


@dataclass
class TranslateConfig(DecodingConfig):
    model: str = field(
        default="", metadata={"help": "a directory written by fairseq-bt-export: its "
                              "CTranslate2 model, sentencepiece model and languages (decoded "
                              "with --backend ctranslate2)"})
    path: str = field(
        default="",
        metadata={"help": "fairseq checkpoint (default with --run: the system's "
                  "checkpoint_best.pt, or checkpoint_avg.pt where the run averaged)"})
    run: str = field(
        default="", metadata={"help": "a pipeline run directory (WORK): with --system, the "
                              "model, dictionaries and sentencepiece model are found there"})
    system: str = field(default="", metadata={"help": "--run: the system to translate with "
                                              "(a folder of WORK/models/, e.g. bt_ft)"})
    data_dir: str = field(
        default="", metadata={"help": "directory with the model's dict.SRC.txt and dict.TGT.txt "
                              "(default: the run's, for a model of a pipeline run; else the "
                              "checkpoint's directory)", "argparse_alias": "--data"})
    spm_model: str = field(
        default="", metadata={"help": "sentencepiece model that encodes the input and decodes "
                              "the output (default: the run's, for a model of a pipeline run)"})
    source_lang: str = field(
        default="", metadata={"help": "language of the input (default: the checkpoint's)",
                              "argparse_alias": "-s"})
    target_lang: str = field(
        default="", metadata={"help": "language of the output (default: the checkpoint's)",
                              "argparse_alias": "-t"})
    ct2_model_dir: str = field(
        default="", metadata={"help": "--backend ctranslate2: where the converted model is kept "
                              "(default: beside the checkpoint, CKPT.ct2_model; converted again "
                              "when the checkpoint or a dictionary changed)"})
    max_len_a: float = same_field(EvaluateConfig, "max_len_a")
    max_len_b: int = same_field(EvaluateConfig, "max_len_b")
    input: str = field(default="-", metadata={"help": "raw text, one sentence per line, plain "
                                              "or .gz ('-': stdin)"})
    output: str = field(default="-", metadata={"help": "translations, one line per input "
                                               "line ('-': stdout)"})
    nbest: int = field(default=1, metadata={"help": "translations per input line: N "
                                            "consecutive lines, best first"})
    log_interval: float = field(
        default=10.0, metadata={"help": "seconds between progress lines on stderr ('N of M "
                                "sentences translated, R sentences/s'); 0: none"})


def run_model_files(work: str, system: str) -> Tuple[str, str, str]:
    """``(checkpoint, dictionary folder, sentencepiece model)`` of ``system`` in the pipeline
    run ``work``, as the pipeline's stages use them (scripts/stages/common.sh model_files)."""
    folder = os.path.join(work, "models", system)
    systems = sorted(os.listdir(os.path.join(work, "models"))) \
        if os.path.isdir(os.path.join(work, "models")) else []
    check(os.path.isdir(folder), f"{work}: no system {system!r} (--system; trained: "
          f"{' '.join(systems) or 'none'})")
    check(os.path.isfile(os.path.join(folder, "DONE")),
          f"{folder}: not finished training (its pipeline run finishes it)")
    ckpt = os.path.join(folder, "checkpoint_best.pt")
    if os.path.isfile(os.path.join(folder, "checkpoint_avg.pt")):
        ckpt = os.path.join(folder, "checkpoint_avg.pt")
    if os.path.exists(os.path.join(folder, "spm.model")):  # a reused model: its own files
        return ckpt, folder, os.path.join(folder, "spm.model")
    return ckpt, os.path.join(work, "prep", "bin"), os.path.join(work, "prep", "spm.model")


def run_of_checkpoint(path: str) -> Tuple[str, str]:
    """``(WORK, system)`` of a checkpoint in a pipeline run (``WORK/models/NAME/*.pt``), else
    ``("", "")``."""
    folder = os.path.dirname(os.path.abspath(path))
    models = os.path.dirname(folder)
    if os.path.basename(models) == "models":
        return os.path.dirname(models), os.path.basename(folder)
    return "", ""


def checkpoint_languages(path: str) -> Tuple[Optional[str], Optional[str]]:
    """The source and target language a checkpoint was trained for (None: not recorded)."""
    from . import setup
    from .errors import checkpoint_error

    setup()  # the torch.load fix
    from fairseq import checkpoint_utils

    check(os.path.isfile(path), f"{path}: checkpoint not found (--path)")
    try:
        state = checkpoint_utils.load_checkpoint_to_cpu(path)
    except Exception as e:  # unpickling errors of all kinds
        raise checkpoint_error(path, e) from None
    task = state["cfg"]["task"] if state.get("cfg") is not None else state.get("args")
    return getattr(task, "source_lang", None), getattr(task, "target_lang", None)


def resolve(cfg: TranslateConfig) -> TranslateConfig:
    """``cfg`` with the model's files and languages filled in; one-line errors."""
    check(bool(cfg.run) == bool(cfg.system), "give --run WORK and --system NAME together")
    check(sum(map(bool, (cfg.run, cfg.path, cfg.model))) <= 1,
          "give one of --model, --path and --run/--system")
    check(bool(cfg.run or cfg.path or cfg.model), "give the model: --model DIR (exported), "
          "--path CKPT (with --data and --spm-model unless it is in a pipeline run) or --run "
          "WORK --system NAME")
    found: Dict[str, str] = {}
    if cfg.model:
        check(is_ct2_model_dir(cfg.model), f"{cfg.model}: not an exported model directory (no "
              "model.bin; fairseq-bt-export writes one)")
        cfg = dataclasses.replace(cfg, path=cfg.model, backend="ctranslate2")
        found["spm_model"] = os.path.join(cfg.model, "spm.model")
    elif cfg.run:
        found["path"], found["data_dir"], found["spm_model"] = run_model_files(cfg.run,
                                                                                cfg.system)
    else:
        work, system = run_of_checkpoint(cfg.path)
        if work and os.path.isdir(os.path.join(work, "prep")):
            _, found["data_dir"], found["spm_model"] = run_model_files(work, system)
    values = {k: getattr(cfg, k) or v for k, v in found.items()}
    cfg = dataclasses.replace(cfg, **values)
    check(bool(cfg.spm_model), "--spm-model: not given, and the checkpoint is not in a "
          "pipeline run (WORK/models/NAME/) to find it from")
    if not (cfg.source_lang and cfg.target_lang):
        src, tgt = (exported_languages(cfg.path) or (None, None)) if is_ct2_model_dir(
            cfg.path) else checkpoint_languages(cfg.path)
        check(bool(src and tgt), f"{cfg.path}: the model records no languages: give -s "
              "and -t")
        cfg = dataclasses.replace(cfg, source_lang=cfg.source_lang or src,
                                  target_lang=cfg.target_lang or tgt)
    check(cfg.nbest >= 1 and cfg.nbest <= cfg.beam,
          f"--nbest must be in 1..--beam ({cfg.beam}), got {cfg.nbest}")
    return cfg


def read_input(path: str) -> Tuple[List[str], int]:
    """Every line of ``path`` ('-': stdin), stripped and on one line; the number of lines
    whose line-break characters became spaces. A line that is not text is an error naming the
    file and the line, before anything is translated."""
    counts: Counter = Counter()
    name = "<stdin>" if path == "-" else path
    if path == "-":
        stream = decode_lines(sys.stdin.buffer, name, counts)
    else:
        from .text_processing import read_raw_lines

        check(os.path.isfile(path), f"{path}: input not found (--input)")
        stream = read_raw_lines(path, counts)
    lines = []
    for n, text, problem in stream:
        if problem:
            raise bad_line_error(name, n, problem)
        lines.append(text.strip())
    return lines, sum(counts.values())


def translate(cfg: TranslateConfig) -> int:
    """Translate ``cfg.input`` into ``cfg.output``; the number of input lines."""
    cfg = resolve(cfg)
    lines, _ = read_input(cfg.input)
    ct2_dir = os.path.splitext(os.path.abspath(cfg.path))[0] + ".ct2_model"
    translations = translate_lines(cfg, lines, cfg.ct2_model_dir or ct2_dir, cfg.nbest,
                                   cfg.log_interval, PROG)
    text = "".join(t + "\n" for group in translations for t in group)
    if cfg.output == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        with atomic_open(cfg.output) as f:
            f.write(text)
    return len(lines)


def main(argv: Optional[List[str]] = None) -> None:
    def run() -> None:
        cfg = parse_dataclass(TranslateConfig, sys.argv[1:] if argv is None else argv, PROG,
                              __doc__.split("\n\n")[0])
        translate(cfg)

    run_reporting_user_errors(run, PROG)


if __name__ == "__main__":
    main()
