"""``fairseq-bt-report``: the pipeline's score table (markdown + JSON) and a PNG plot.

Reads every ``WORK/eval/*.json`` written by ``fairseq-bt-evaluate``, the validation lines
of each model's ``hydra_train.log`` (``log_format: json``) and the stage timings of
``WORK/timings.jsonl`` (:mod:`fairseq_bt_plugin.progress`), and writes ``WORK/report.md``,
``WORK/report.json`` and ``WORK/report.png`` (BLEU per system, validation loss curves, wall
time per stage and model).
"""
import glob
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from fairseq.dataclass import FairseqDataclass
from omegaconf import MISSING

from .cli import run_reporting_user_errors
from .errors import BTUserError, check
from .options import parse_dataclass
from .progress import clock

PROG = "fairseq-bt-report"


@dataclass
class ReportConfig(FairseqDataclass):
    work_dir: str = field(default=MISSING,
                          metadata={"help": "pipeline run directory (holds eval/ and models/)"})
    title: str = field(default="Back-translation results", metadata={"help": "report title"})


def validation_curve(log_path: str) -> List[Dict[str, float]]:
    """``[{"update": n, "loss": x}, ...]`` from the JSON validation lines of a training log."""
    points = []
    if not os.path.exists(log_path):
        return points
    with open(log_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if "][valid][INFO] - {" not in line:
                continue
            stats = json.loads(line.split(" - ", 1)[1])
            points.append({"update": int(stats["valid_num_updates"]),
                           "loss": float(stats["valid_loss"])})
    return points


def stage_timings(path: str) -> Dict:
    """``{"stages": [{"stage", "name", "seconds", "start", "end"}, ...], "total_seconds"}``
    from the lines of a ``timings.jsonl``: the last finished run of each stage and model, in
    the order the stages first ran (a stage run again after a failure counts once; a re-run
    that skips finished stages records nothing, so the first run's times stay)."""
    latest: Dict = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                try:
                    entry = json.loads(line)
                    key, seconds = (entry["stage"], entry["name"]), float(entry["seconds"])
                except (ValueError, KeyError, TypeError):
                    raise BTUserError(f"{path}:{lineno}: not a timing line (JSON with stage, "
                                      f"name, seconds)") from None
                if entry.get("status") == "done":  # a key keeps its first place in the dict
                    latest[key] = {"stage": key[0], "name": key[1], "seconds": seconds,
                                   "start": entry.get("start"), "end": entry.get("end")}
    stages = list(latest.values())
    return {"stages": stages, "total_seconds": round(sum(s["seconds"] for s in stages), 1)}


def collect(work_dir: str) -> Dict:
    systems = []
    for path in sorted(glob.glob(os.path.join(work_dir, "eval", "*.json"))):
        with open(path, encoding="utf-8") as f:
            systems.append(json.load(f))
    check(bool(systems), f"{work_dir}/eval: no evaluation results (*.json) to report")
    curves = {}
    for log in sorted(glob.glob(os.path.join(work_dir, "models", "*", "hydra_train.log"))):
        curves[os.path.basename(os.path.dirname(log))] = validation_curve(log)
    return {"systems": systems, "validation": curves,
            "timings": stage_timings(os.path.join(work_dir, "timings.jsonl"))}


def markdown(report: Dict, title: str) -> str:
    rows = [f"# {title}", "", "| system | BLEU | chrF | sentences |", "|---|---:|---:|---:|"]
    for s in report["systems"]:
        rows.append(f"| {s['system']} | {s['bleu']:.2f} | {s['chrf']:.2f} | {s['sentences']} |")
    sigs = {s["bleu_signature"] for s in report["systems"]} | {s["chrf_signature"] for s in report["systems"]}
    rows += ["", "sacrebleu signatures: " + "; ".join(f"`{x}`" for x in sorted(sigs))]
    timings = report["timings"]
    if timings["stages"]:
        total = timings["total_seconds"]
        rows += ["", "## Where the time went", "", "| stage | model / corpus | wall time | share |",
                 "|---|---|---:|---:|"]
        for t in timings["stages"]:
            share = 100 * t["seconds"] / total if total else 0.0
            rows.append(f"| {t['stage']} | {t['name']} | {clock(t['seconds'])} | {share:.0f}% |")
        rows.append(f"| total | | {clock(total)} | |")
        spans = sorted((t["start"], t["end"]) for t in timings["stages"] if t["start"])
        if any(b[0] < a[1] for a, b in zip(spans, spans[1:])):
            rows += ["", "Some stages ran side by side (`BASELINE_PARALLEL=1`): each counts "
                         "in full, the total is more than the run's wall time."]
    return "\n".join(rows) + "\n"


def plot(report: Dict, path: str) -> None:
    import logging

    import matplotlib

    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    names = [s["system"] for s in report["systems"]]
    bars = ax1.bar(names, [s["bleu"] for s in report["systems"]], color="tab:blue")
    ax1.bar_label(bars, fmt="%.1f")
    ax1.set_ylabel("BLEU (sacrebleu)")
    ax1.set_title("Test BLEU per system")
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
    report = collect(cfg.work_dir)
    out = os.path.join(cfg.work_dir, "report")
    plot(report, out + ".png")
    for ext, text in (("json", json.dumps(report, indent=2) + "\n"),
                      ("md", markdown(report, cfg.title))):
        with open(f"{out}.{ext}.tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(f"{out}.{ext}.tmp", f"{out}.{ext}")
    return report


def main(argv: Optional[List[str]] = None) -> None:
    def run() -> None:
        cfg = parse_dataclass(ReportConfig, sys.argv[1:] if argv is None else argv, PROG,
                    __doc__.split("\n\n")[0])
        write_report(cfg)
        with open(os.path.join(cfg.work_dir, "report.md"), encoding="utf-8") as f:
            print(f.read())

    run_reporting_user_errors(run, PROG)


if __name__ == "__main__":
    main()
