"""``fairseq-bt-report``: the pipeline's score table (markdown + JSON) and a PNG plot.

Reads every ``WORK/eval/SET/SYSTEM.json`` written by ``fairseq-bt-evaluate`` (one folder per
test set; a multilingual run's ``WORK/eval/SET/PAIR/SYSTEM.json``) with its hypotheses, the validation lines of each model's ``hydra_train.log``
(``log_format: json``), the stage timings of ``WORK/timings.jsonl``
(:mod:`fairseq_bt_plugin.stage_runner`), the cleaning counts of ``WORK/raw/clean.json`` and the
back-translation counts of ``WORK/bt/*/bt.summary.json``, and writes ``WORK/report.md``,
``WORK/report.json`` and ``WORK/report.png``: every system on every test set (BLEU, chrF,
sacrebleu signatures, paired bootstrap p-value against the baseline), the data counts, what
reproduces the run, validation loss curves, how each model's training ended (updates, best
update, stopped by patience or by the cap: a comparison with a model stopped by the cap is
flagged as not converged) and wall time per stage and model.
"""
import glob
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from fairseq.dataclass import FairseqDataclass
from omegaconf import MISSING

from .atomic import atomic_open
from .errors import BTUserError, check, run_reporting_user_errors
from .options import parse_dataclass
from .stage_runner import clock
from .provenance import read_stamp
from .text_processing import read_text_lines

PROG = "fairseq-bt-report"
BOOTSTRAP_SAMPLES = 1000  # sacrebleu's --paired-bs default


@dataclass
class ReportConfig(FairseqDataclass):
    work_dir: str = field(default=MISSING,
                          metadata={"help": "pipeline run directory (holds eval/ and models/)"})
    title: str = field(default="Back-translation results", metadata={"help": "report title"})
    experiment_file: str = field(
        default="", metadata={"help": "the experiment file of the run: its path, SHA-256 and "
                              "text go in the report"})
    command: str = field(default="", metadata={"help": "the command that reproduces the run"})
    baselines: str = field(
        default="baseline,reverse",
        metadata={"help": "the system each p-value compares against: the first of these among "
                  "the systems of the same direction on the same test set (pipeline.sh: "
                  "baseline for SRC->TGT, reverse for TGT->SRC; a multilingual run: the "
                  "pair's bilingual +BT system)"})


#: where a validation line's JSON starts: fairseq-hydra-train's log, fairseq-train --log-format json
VALID_LINE_MARKS = ("][valid][INFO] - {", " | valid | {")


def validation_curve(log_path: str) -> List[Dict[str, float]]:
    """``[{"update": n, "loss": x}, ...]`` from the JSON validation lines of a training log
    (``hydra_train.log``, or the output of ``fairseq-train --log-format json``)."""
    return read_training_log(log_path)[0]


#: how fairseq's trainer says why it stopped (fairseq_cli/train.py); the last one in a log wins
#: (a model trained on from its checkpoint appends to its log)
STOP_MARKS = (("early stop since valid performance hasn't improved", "patience"),
              ("Stopping training due to num_updates", "max_update"),
              ("Stopping training due to cumulative_training_time", "stop_time_hours"))
DONE_MARK = "done training in"


def read_training_log(log_path: str) -> Tuple[List[Dict[str, float]], Dict]:
    """(:func:`validation_curve`, :func:`training_end`) of a training log, read once."""
    points: List[Dict[str, float]] = []
    stopped_by = None
    if os.path.exists(log_path):
        with open(log_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                mark = next((m for m in VALID_LINE_MARKS if m in line), None)
                if mark is not None:
                    stats = json.loads("{" + line.split(mark, 1)[1])
                    points.append({"update": int(stats["valid_num_updates"]),
                                   "loss": float(stats["valid_loss"])})
                    continue
                reason = next((r for m, r in STOP_MARKS if m in line), None)
                if reason:
                    stopped_by = reason
                elif DONE_MARK in line and stopped_by is None:
                    stopped_by = "max_epoch"
    return points, _end(points, stopped_by)


def training_end(log_path: str, points: List[Dict[str, float]]) -> Dict:
    """How a model's training ended: ``updates`` (its last validation), ``best_update`` and
    ``best_loss`` (its lowest validation loss), ``stopped_by``: ``patience`` (no lower
    validation loss for checkpoint.patience validations: converged), ``max_update`` (the cap),
    ``stop_time_hours``, ``max_epoch`` (finished with none of these), or None (not finished)."""
    return _end(points, read_training_log(log_path)[1]["stopped_by"])


def _end(points: List[Dict[str, float]], stopped_by: Optional[str]) -> Dict:
    best = min(points, key=lambda p: p["loss"]) if points else None
    return {"updates": points[-1]["update"] if points else None,
            "best_update": best["update"] if best else None,
            "best_loss": best["loss"] if best else None, "stopped_by": stopped_by}


def converged(end: Optional[Dict]) -> Optional[bool]:
    """Whether a model stopped by patience (None: no training log, e.g. a reused model)."""
    return None if not end or end["stopped_by"] is None else end["stopped_by"] == "patience"


def add_training(results: List[Dict], models: Dict[str, Dict]) -> None:
    """Sets each result's ``training`` (its model's :func:`training_end`: the model of the same
    name, in a multilingual run the pair's own first) and ``converged``."""
    for r in results:
        names = ([f"{r['pair']}/{r['system']}"] if r["pair"] else []) + [r["system"]]
        r["training"] = next((models[n] for n in names if n in models), None)
        r["converged"] = converged(r["training"])


def not_converged(results: List[Dict]) -> List[str]:
    """The systems stopped other than by patience among those compared (a p-value's two
    sides), each once."""
    compared = {r["system"] for r in results if r.get("baseline")} | {
        r["baseline"] for r in results if r.get("baseline")}
    return list(dict.fromkeys(r["system"] for r in results
                              if r["system"] in compared and r["converged"] is False))


def not_converged_warning(names: List[str]) -> str:
    return (f"not converged: {', '.join(names)} stopped at the cap (optimization.max_update), "
            "not by patience: the differences to and between them may be training length. "
            "Train each on with a higher cap (`bash scripts/continue.sh WORK NAME "
            "optimization.max_update=N`) until patience stops every compared model.")


def stage_timings(path: str) -> Dict:
    """``{"stages": [{"stage", "name", "seconds", "runs", "start", "end"}, ...],
    "total_seconds"}`` from the lines of a ``timings.jsonl``: the last finished run of each
    stage and model, in the order the stages first ran, with the runs stopped just before it
    (Ctrl-C, SIGTERM: the finished run resumed their work) added to its ``seconds`` and counted
    in ``runs``. A stage run again after a failure counts once; a re-run that skips finished
    stages records nothing, so the first run's times stay."""
    latest: Dict = {}
    stopped: Dict = {}  # key -> (seconds, runs) of the stopped runs since its last end
    if os.path.exists(path):
        with open(path, encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                try:
                    entry = json.loads(line)
                    key, seconds = (entry["stage"], entry["name"]), float(entry["seconds"])
                except (ValueError, KeyError, TypeError):
                    raise BTUserError(f"{path}:{lineno}: not a timing line (JSON with stage, "
                                      f"name, seconds)") from None
                before, runs = stopped.pop(key, (0.0, 0))
                if entry.get("status") == "stopped":
                    stopped[key] = (before + seconds, runs + 1)
                elif entry.get("status") == "done":  # a key keeps its first place in the dict
                    latest[key] = {"stage": key[0], "name": key[1],
                                   "seconds": round(before + seconds, 1), "runs": runs + 1,
                                   "start": entry.get("start"), "end": entry.get("end")}
    stages = list(latest.values())
    return {"stages": stages, "total_seconds": round(sum(s["seconds"] for s in stages), 1)}


def evaluations(work_dir: str) -> List[Dict]:
    """:func:`evaluation_results`, at least one (else a one-line error)."""
    results = evaluation_results(work_dir)
    check(bool(results), f"{work_dir}/eval: no evaluation results (SET/SYSTEM.json) to report")
    return results


def evaluation_results(work_dir: str) -> List[Dict]:
    """Every ``eval/SET/SYSTEM.json`` and ``eval/SET/PAIR/SYSTEM.json``, with its test set
    (``test_set``) and pair (``pair``, None in the first case), in test-set, pair and system
    order."""
    results = []
    paths = glob.glob(os.path.join(work_dir, "eval", "*", "*.json")) + glob.glob(
        os.path.join(work_dir, "eval", "*", "*", "*.json"))
    for path in sorted(paths, key=lambda p: os.path.relpath(p, work_dir).split(os.sep)):
        with open(path, encoding="utf-8") as f:
            result = json.load(f)
        check("reference" in result, f"{path}: written by an older fairseq-bt-evaluate (no "
              "reference file named): remove it and run the pipeline again to score anew")
        parts = os.path.relpath(path, os.path.join(work_dir, "eval")).split(os.sep)
        result["test_set"], result["pair"] = parts[0], (parts[1] if len(parts) == 3 else None)
        result["hyp_file"] = path[: -len(".json")] + ".hyp"
        scored = read_stamp(path[: -len(".json")] + ".done")
        result["scored_with"] = scored.get("settings") if scored else None
        results.append(result)
    return results


def stamps(work_dir: str) -> Dict[str, Dict]:
    """Every stage output's record of what it was made with and from
    (:mod:`fairseq_bt_plugin.provenance`; a score's is read with the score): WORK-relative
    output -> its stamp (``{}``: finished without a record)."""
    found = {}
    for pattern in ("raw/DONE", "prep/DONE", "models/*/DONE", "models/*/*/DONE", "bt/*/DONE",
                    "bt/*/*/DONE"):
        for path in sorted(glob.glob(os.path.join(work_dir, pattern))):
            found[os.path.relpath(os.path.dirname(path), work_dir)] = read_stamp(path)
    return found


def add_significance(results: List[Dict], baselines: List[str]) -> Optional[str]:
    """Sets ``baseline``, ``p_bleu`` and ``p_chrf`` of each result: sacrebleu's paired
    bootstrap test (``--paired-bs``) against the baseline of its test set and direction (the
    first of ``baselines`` there; None for the baseline itself, or where there is none).
    Returns the test's signature (resamples, seed), or None when nothing was compared."""
    import logging

    from sacrebleu.metrics import BLEU, CHRF
    from sacrebleu.significance import PairedTest

    logging.getLogger("sacrebleu").setLevel(logging.WARNING)

    groups: Dict = {}
    for r in results:
        r.update(baseline=None, p_bleu=None, p_chrf=None)
        groups.setdefault((r["test_set"], r["source_lang"], r["target_lang"]), []).append(r)
    signature = None
    for group in groups.values():
        by_name = {r["system"]: r for r in group}
        base = next((by_name[b] for b in baselines if b in by_name), None)
        others = [r for r in group if base is not None and r is not base]
        if not others:
            continue
        refs = read_text_lines(base["reference"])
        systems = []
        for r in [base] + others:
            r["baseline"] = base["system"]
            # the same references, possibly another copy (a run directory copied or moved)
            check(r["reference"] == base["reference"]
                  or read_text_lines(r["reference"]) == refs,
                  f"{os.path.splitext(r['hyp_file'])[0]}.json: scored against "
                  f"{r['reference']}, {base['system']} against {base['reference']}: not the "
                  "same references")
            hyps = read_text_lines(r["hyp_file"])
            check(len(hyps) == len(refs), f"{r['hyp_file']}: {len(hyps)} lines, not one per "
                  f"line of {base['reference']} ({len(refs)})")
            systems.append((r["system"], hyps))
        base["baseline"] = None
        signatures, scores = PairedTest(systems, {"bleu": BLEU(), "chrf": CHRF()}, [refs],
                                        test_type="bs", n_samples=BOOTSTRAP_SAMPLES)()
        bleu, chrf = signatures  # named as sacrebleu scores name them ("BLEU", "chrF2")
        signature = "|".join(x for x in str(signatures[bleu]).split("|")
                             if x.startswith(("bs:", "seed:")))  # resamples, seed
        for r, b, c in zip(others, scores[bleu][1:], scores[chrf][1:]):
            r["p_bleu"], r["p_chrf"] = b.p_value, c.p_value
    return signature


def back_translations(work_dir: str) -> Dict[str, Dict]:
    """Corpus name -> the counts of its ``bt/NAME/bt.summary.json`` (any depth: a multilingual
    run's ``bt/PAIR/CORPUS``, ``bt/multi/CORPUS/LANG``): input lines, skipped (by reason),
    translated, filtered (by reason), pairs kept, shards merged. A filtered corpus (written by
    fairseq-bt-filter): its input pairs, the pairs its filter dropped, those kept."""
    keys = ("input_lines", "skipped_input", "translated", "hypotheses", "filtered",
            "output_pairs")
    corpora = {}
    bt = os.path.join(work_dir, "bt")
    for path in sorted(glob.glob(os.path.join(bt, "**", "bt.summary.json"), recursive=True)):
        if os.sep + "shards" + os.sep in os.path.relpath(path, bt):
            continue  # a shard's: counted in its merged corpus
        with open(path, encoding="utf-8") as f:
            summary = json.load(f)
        if summary.get("command") == "filter":  # fairseq-bt-filter's: pairs in, pairs kept
            how = f"{summary['method']}, drop {summary['drop_worst']}" \
                if summary.get("drop_worst") is not None else \
                f"{summary['method']}, score <= {summary['max_score']}"
            summary = {"input_lines": summary["input_pairs"], "skipped_input": {},
                       "translated": None, "hypotheses": None,
                       "filtered": {f"filter ({how})": summary["dropped"]},
                       "output_pairs": summary["output_pairs"],
                       "model": summary.get("reverse_model")}
        corpora[os.path.relpath(os.path.dirname(path), bt)] = {
            **{k: summary.get(k) for k in keys}, "model": summary.get("model"),
            "shards": len(summary.get("merged_from") or [None])}
    return corpora


def read_json(path: str) -> Optional[Dict]:
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except ValueError as e:
            raise BTUserError(f"{path}: not JSON ({e})") from None


def experiment(path: str) -> Optional[Dict]:
    """Path, SHA-256 and text of the experiment file (none given: None)."""
    if not path:
        return None
    check(os.path.isfile(path), f"{path}: experiment file not found (--experiment-file)")
    with open(path, "rb") as f:
        data = f.read()
    return {"path": os.path.abspath(path), "sha256": hashlib.sha256(data).hexdigest(),
            "text": data.decode("utf-8", "replace")}


def code_version() -> Optional[Dict]:
    """The git commit of this code, and whether tracked files differ from it (not a git
    checkout: None)."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        changed = subprocess.run(["git", "-C", here, "status", "--porcelain",
                                  "--untracked-files=no"], capture_output=True, text=True,
                                 check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return {"commit": commit, "uncommitted_changes": bool(changed)}


def collect(cfg: ReportConfig) -> Dict:
    work_dir = cfg.work_dir
    systems = evaluations(work_dir)
    baselines = [b.strip() for b in cfg.baselines.split(",") if b.strip()]
    bootstrap = add_significance(systems, baselines)
    curves, ends = {}, {}
    models = os.path.join(work_dir, "models")
    for log in sorted(glob.glob(os.path.join(models, "*", "hydra_train.log"))
                      + glob.glob(os.path.join(models, "*", "*", "hydra_train.log"))
                      + glob.glob(os.path.join(models, "*", "train.log"))):
        points, end = read_training_log(log)
        if points or log.endswith("hydra_train.log"):
            name = os.path.relpath(os.path.dirname(log), models)
            curves[name], ends[name] = points, end
    add_training(systems, ends)
    cleaning = read_json(os.path.join(work_dir, "raw", "clean.json"))
    if cleaning is None:  # a multilingual run: each pair's
        cleaning = {os.path.basename(os.path.dirname(p)): read_json(p) for p in
                    sorted(glob.glob(os.path.join(work_dir, "raw", "*", "clean.json")))} or None
    reused = {os.path.basename(os.path.dirname(p)): read_json(p)
              for p in sorted(glob.glob(os.path.join(work_dir, "models", "*", "reused.json")))}
    return {"title": cfg.title, "test_sets": sorted({s["test_set"] for s in systems}),
            "systems": systems, "bootstrap": bootstrap, "baselines": baselines,
            "cleaning": cleaning,
            "back_translation": back_translations(work_dir), "reused_models": reused,
            "provenance": stamps(work_dir),
            "experiment": experiment(cfg.experiment_file), "command": cfg.command or None,
            "code": code_version(), "validation": curves, "models": ends,
            "not_converged": not_converged(systems),
            "still_improving": still_improving(curves, ends), "exports": exports(work_dir),
            "timings": stage_timings(os.path.join(work_dir, "timings.jsonl"))}


def exports(work_dir: str) -> List[Dict]:
    """The run's exported systems (``fairseq-bt-export`` into ``WORK/export/NAME``, or
    ``WORK/export/PAIR/NAME`` per pair of a multilingual run)."""
    out = []
    for path in sorted(glob.glob(os.path.join(work_dir, "export", "*", "model.json"))
                       + glob.glob(os.path.join(work_dir, "export", "*", "*", "model.json"))):
        info = read_json(path) or {}
        out.append({"system": info.get("name"), "directory": os.path.dirname(path),
                    "quantization": info.get("quantization"),
                    "checkpoint": info.get("checkpoint"),
                    "source_lang": info.get("source_lang"),
                    "target_lang": info.get("target_lang")})
    return out


def export_section(report: Dict) -> List[str]:
    """Where the exported systems are and how to translate with them."""
    rows = []
    for e in report.get("exports") or []:
        rows += ["", f"**Exported**: `{e['system']}` in `{e['directory']}` (CTranslate2, "
                 f"{e['quantization']}; its README.md shows how to translate with "
                 "`ctranslate2` and `sentencepiece` alone); with this package: "
                 f"`fairseq-bt-translate --path {e['checkpoint']} -s {e.get('source_lang')} "
                 f"-t {e.get('target_lang')} --input FILE`."]
    return rows


def leaves(value, path: str = ""):
    """``(key path, number)`` of every number in a JSON value (``a / b / c``)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, f"{path} / {k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from leaves(v, f"{path} / {i}")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield path, value


def counts(d: Optional[Dict]) -> str:
    return ", ".join(f"{k} {v}" for k, v in (d or {}).items()) or "0"


def score(x: Optional[float]) -> str:
    """A score in a table cell; empty where the evaluation has none (chrF++ of a score written
    before the evaluation computed it)."""
    return "" if x is None else f"{x:.2f}"


def p_value(p: Optional[float]) -> str:
    return "" if p is None else f"{p:.4f}"


def markdown(report: Dict) -> str:
    rows = [f"# {report['title']}", ""]
    for test_set in report["test_sets"]:
        results = [s for s in report["systems"] if s["test_set"] == test_set]
        rows += [f"## Test set `{test_set}` ({results[0]['sentences']} sentences)", "",
                 "| system | direction | BLEU | chrF | chrF++ | p BLEU | p chrF | against | "
                 "trained |", "|---|---|---:|---:|---:|---:|---:|---|---|"]
        for s in results:
            rows.append(f"| {s['system']} | {s['source_lang']}->{s['target_lang']} | "
                        f"{s['bleu']:.2f} | {s['chrf']:.2f} | {score(s.get('chrfpp'))} | "
                        f"{p_value(s['p_bleu'])} | "
                        f"{p_value(s['p_chrf'])} | {s['baseline'] or ''} | "
                        f"{trained(s.get('training'))} |")
        rows.append("")
        late = not_converged(results)
        if late:
            rows += ["**" + not_converged_warning(late).replace(":", "**:", 1), ""]
        rows += pair_table(results)
    sigs = sorted({s[k] for s in report["systems"] for k in (
        "bleu_signature", "chrf_signature", "chrfpp_signature") if s.get(k)})
    rows += ["sacrebleu signatures: " + "; ".join(f"`{x}`" for x in sigs)]
    if report["bootstrap"]:
        rows += ["", f"p: sacrebleu's paired bootstrap test (`{report['bootstrap']}`) of each "
                     "system against the one in column *against* (`" + "`, or else `".join(
                         report["baselines"]) + "`, of the same direction) on the same test "
                     "set: the "
                     "probability of a difference this large by chance (below 0.05: "
                     "significant)."]
    rows += (export_section(report) + data_section(report) + provenance_section(report)
             + validation_section(report)
             + reproduce_section(report) + timing_section(report))
    return "\n".join(rows) + "\n"


def trained(end: Optional[Dict]) -> str:
    """A model's end in a table cell: ``patience at 450 (best 250)``, ``cap at 600 (best
    600)``."""
    if not end or end["updates"] is None:
        return ""
    how = {"patience": "patience", "max_update": "**cap**", None: "unfinished"}.get(
        end["stopped_by"], end["stopped_by"])
    return f"{how} at {end['updates']} (best {end['best_update']})"


def pair_table(results: List[Dict]) -> List[str]:
    """A multilingual run's results of one test set as one table: a row per direction, a
    column per system (BLEU / chrF); none for a run without pairs."""
    if not any(r["pair"] for r in results):
        return []
    systems = list(dict.fromkeys(r["system"] for r in results))
    cells: Dict = {}
    for r in results:
        cells.setdefault(f"{r['source_lang']}->{r['target_lang']}", {})[r["system"]] = \
            f"{r['bleu']:.2f} / {r['chrf']:.2f}"
    rows = ["Per pair, BLEU / chrF:", "", "| direction | " + " | ".join(systems) + " |",
            "|---|" + "---:|" * len(systems)]
    for direction, by_system in cells.items():
        rows.append(f"| {direction} | " + " | ".join(by_system.get(s, "") for s in systems)
                    + " |")
    return rows + [""]


def data_section(report: Dict) -> List[str]:
    rows = ["", "## Data", ""]
    if report["cleaning"] is None:
        rows.append("Cleaning: none recorded (no `raw/clean.json`).")
    else:
        rows += ["Cleaning (`raw/clean.json`):", "", "| count | value |", "|---|---:|"]
        rows += [f"| {k} | {v} |" for k, v in leaves(report["cleaning"])]
    if report["back_translation"]:
        rows += ["", "Back-translation (`bt/CORPUS/bt.summary.json`):", "",
                 "| corpus | input lines | skipped | translated | filtered | pairs kept | "
                 "shards |", "|---|---:|---|---:|---|---:|---:|"]
        for name, c in report["back_translation"].items():
            translated = "" if c["translated"] is None else c["translated"]  # a filter's
            rows.append(f"| {name} | {c['input_lines']} | {counts(c['skipped_input'])} | "
                        f"{translated} | {counts(c['filtered'])} | {c['output_pairs']} | "
                        f"{c['shards']} |")
    what = {"checkpoint": "checkpoint", "ct2_dir": "CTranslate2 model", "data": "dictionaries",
            "spm_model": "sentencepiece model", "target_spm_model": "output's sentencepiece model"}
    for name, r in report["reused_models"].items():
        rows += ["", f"`{name}` was not trained here: " + ", ".join(
            f"{what.get(k, k)} `{v}`" for k, v in r.items()) + "."]
    return rows


def provenance_section(report: Dict) -> List[str]:
    """What each model, corpus and the data were made with and from, from their own records
    (not the last command's settings), and what each score was computed with."""
    made = report.get("provenance") or {}
    if not made:
        return []
    rows = ["", "## How each output was made", "",
            "Each output's own record (its `DONE`; a later run with other settings stops "
            "instead of reusing it): what it was made with and the outputs it was made from. "
            "`raw`'s data settings are in report.json.", "",
            "| output | made with | made from |", "|---|---|---|"]
    for name, stamp in made.items():
        if not stamp:
            rows.append(f"| {name} | (no record: finished by an older version) | |")
            continue
        settings = ["the experiment's data keys" if x.startswith("data=") else x
                    for x in stamp["settings"]]
        inputs = [k[len("WORK/"):] if k.startswith("WORK/") else k for k in stamp["inputs"]]
        shown = [x for x in inputs if not x.startswith(("prep/bin/", "raw/"))] or inputs[:3]
        rows.append(f"| {name} | {'<br>'.join(f'`{x}`' for x in settings)} | "
                    f"{', '.join(f'`{x}`' for x in shown[:6])}"
                    f"{f' and {len(shown) - 6} more' if len(shown) > 6 else ''} |")
    scored = sorted({" ".join(s["scored_with"]) for s in report["systems"]
                     if s.get("scored_with")})
    unrecorded = list(dict.fromkeys(s["system"] for s in report["systems"]
                                    if not s.get("scored_with")))
    rows += ["", "Scores computed with: " + ("; ".join(f"`{x}`" for x in scored) or "no record")
             + (f" (no record for: {', '.join(unrecorded)})" if unrecorded else "") + "."]
    return rows


def reproduce_section(report: Dict) -> List[str]:
    rows = ["", "## Reproduce", ""]
    code = report["code"]
    if code:
        rows.append(f"- code: git commit `{code['commit']}`" + (
            " with uncommitted changes" if code["uncommitted_changes"] else ""))
    if report["experiment"]:
        e = report["experiment"]
        rows.append(f"- experiment file of the last command: `{e['path']}` (SHA-256 "
                    f"`{e['sha256']}`; its text is in report.json; each output's own settings: "
                    "*How each output was made*)")
    if report["command"]:
        rows += ["- command, from the repository root:", "", "```bash", report["command"], "```"]
    return rows


def still_improving(curves: Dict[str, List[Dict[str, float]]], ends: Dict[str, Dict]
                    ) -> List[str]:
    """The models whose training ended with their best validation loss the last one (of at
    least two): they were still learning when training stopped (a model still training, or
    stopped before its end, is *not finished* in the report instead)."""
    return [name for name, points in curves.items() if len(points) >= 2
            and (ends.get(name) or {}).get("stopped_by") is not None
            and min(p["loss"] for p in points[:-1]) > points[-1]["loss"]]


def still_improving_warning(names: List[str]) -> str:
    return (f"{', '.join(names)}: best validation loss at the last validation, still "
            "improving when training stopped. A system trained longer (a +BT model) can beat "
            "such a model by training length alone: train it as long "
            "(`TRAIN_ARGS=optimization.max_update=N`) before crediting back-translation.")


def validation_section(report: Dict) -> List[str]:
    """Each model's validation curve in brief (report.png plots it in full)."""
    curves = {name: points for name, points in (report.get("validation") or {}).items()
              if points}
    if not curves:
        return []
    rows = ["", "## Validation", "", "| model | validations | last update | best valid loss | "
            "at update | stopped by |", "|---|---:|---:|---:|---:|---|"]
    ends = report.get("models") or {}
    for name, points in curves.items():
        best = min(points, key=lambda p: p["loss"])
        stopped = (ends.get(name) or {}).get("stopped_by") or "not finished"
        rows.append(f"| {name} | {len(points)} | {points[-1]['update']} | {best['loss']:.3f} | "
                    f"{best['update']} | {stopped} |")
    if report.get("still_improving"):
        rows += ["", "**Warning**: " + still_improving_warning(report["still_improving"])]
    return rows


def timing_section(report: Dict) -> List[str]:
    rows = []
    timings = report["timings"]
    if timings["stages"]:
        total = timings["total_seconds"]
        rows += ["", "## Where the time went", "", "| stage | model / corpus | wall time | share |",
                 "|---|---|---:|---:|"]
        for t in timings["stages"]:
            share = 100 * t["seconds"] / total if total else 0.0
            runs = f" ({t['runs']} runs)" if t.get("runs", 1) > 1 else ""
            rows.append(f"| {t['stage']} | {t['name']} | {clock(t['seconds'])}{runs} | "
                        f"{share:.0f}% |")
        rows.append(f"| total | | {clock(total)} | |")
        spans = sorted((t["start"], t["end"]) for t in timings["stages"] if t["start"])
        if any(b[0] < a[1] for a, b in zip(spans, spans[1:])):
            rows += ["", "Some stages ran side by side (`BASELINE_PARALLEL=1`, `BT_SHARDS`): "
                         "each counts in full, the total is more than the run's wall time."]
    return rows


def plot(report: Dict, path: str) -> None:
    import logging

    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # before its import's messages
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    def label(s: Dict) -> str:  # a multilingual run: the pair too
        return f"{s['pair']} {s['system']}" if s.get("pair") else s["system"]

    names = list(dict.fromkeys(label(s) for s in report["systems"]))
    sets = report["test_sets"]
    width = 0.8 / len(sets)
    for k, test_set in enumerate(sets):
        bleu = {label(s): s["bleu"] for s in report["systems"] if s["test_set"] == test_set}
        bars = ax1.bar([i + k * width for i in range(len(names))],
                       [bleu.get(n, float("nan")) for n in names], width, label=test_set)
        ax1.bar_label(bars, fmt="%.1f", fontsize=7)
    ax1.set_xticks([i + width * (len(sets) - 1) / 2 for i in range(len(names))], names,
                   rotation=30, ha="right")
    ax1.set_ylabel("BLEU (sacrebleu)")
    ax1.set_title("Test BLEU per system")
    if len(sets) > 1:
        ax1.legend(title="test set", fontsize=7)
    for name, points in report["validation"].items():
        if points:
            ax2.plot([p["update"] for p in points], [p["loss"] for p in points], marker="o",
                     label=name)
    ax2.set_xlabel("update")
    ax2.set_ylabel("validation loss (base 2)")
    ax2.set_title("Validation loss")
    if report["validation"]:
        ax2.legend()
    fig.tight_layout()
    fig.savefig(path + ".tmp.png", dpi=100)
    plt.close(fig)
    os.replace(path + ".tmp.png", path)


def write_report(cfg: ReportConfig) -> Dict:
    report = collect(cfg)
    out = os.path.join(cfg.work_dir, "report")
    plot(report, out + ".png")
    for ext, text in (("json", json.dumps(report, indent=2) + "\n"), ("md", markdown(report))):
        with atomic_open(f"{out}.{ext}") as f:
            f.write(text)
    return report


def main(argv: Optional[List[str]] = None) -> None:
    def run() -> None:
        cfg = parse_dataclass(ReportConfig, sys.argv[1:] if argv is None else argv, PROG,
                    __doc__.split("\n\n")[0])
        report = write_report(cfg)
        with open(os.path.join(cfg.work_dir, "report.md"), encoding="utf-8") as f:
            print(f.read())
        if report["not_converged"]:
            print(f"{PROG}: warning: {not_converged_warning(report['not_converged'])}",
                  file=sys.stderr)
        if report["still_improving"]:
            print(f"{PROG}: warning: {still_improving_warning(report['still_improving'])}",
                  file=sys.stderr)

    run_reporting_user_errors(run, PROG)


if __name__ == "__main__":
    main()
