"""The demo's summary: the figures of one run, as ``summary.json`` and as the table a person reads."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .demo_scores import mean_min


@dataclass
class StepResult:
    """One step: wall-clock seconds, the CPU seconds of its processes (the figure a loaded machine
    distorts least) and a note."""

    name: str
    seconds: float
    detail: str = ""
    cpu_seconds: float = 0.0


@dataclass
class Scores:
    """The labels each step wrote and their Dice against the phantom's ground truth."""

    ct_labels: list[Path] = field(default_factory=list)
    ct_label_dice: list[float] = field(default_factory=list)
    transferred: list[Path] = field(default_factory=list)
    transfer_dice: list[float] = field(default_factory=list)
    transfer_ceiling: list[float] = field(default_factory=list)
    predictions: list[Path] = field(default_factory=list)
    prediction_dice: list[float] = field(default_factory=list)


def _misaligned(dataset: Path) -> list[str]:
    record = dataset / "derivatives" / "ground_truth" / "code" / "misalignment.json"
    if not record.is_file():
        return []
    return sorted(r["subject"] for r in json.loads(record.read_text(encoding="utf-8"))["subjects"] if r["misaligned"])


def _qc_flagged(qc_dir: Path) -> tuple[int, int]:
    """QC entries, and how many of them the report opens with a warning or an error."""
    entries = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((qc_dir / "entries").glob("*.json"))] \
        if (qc_dir / "entries").is_dir() else []
    return len(entries), sum(e.get("status") in ("warning", "error") for e in entries)


def summary(subjects: int, source: str, dataset: Path, steps: list[StepResult], scores: Scores, config: Path,
            qc_dir: Path, outputs: dict[str, str], seconds: float) -> dict:
    """The figures of one run (written as ``summary.json`` and ``summary.md``)."""
    cfg = json.loads(config.read_text(encoding="utf-8")) if config.is_file() else {}
    (ct_mean, ct_min), (reg_mean, reg_min) = mean_min(scores.ct_label_dice), mean_min(scores.transfer_dice)
    (ceil_mean, ceil_min), (pred_mean, pred_min) = mean_min(scores.transfer_ceiling), mean_min(scores.prediction_dice)
    qc_entries, qc_flagged = _qc_flagged(qc_dir)
    return {
        "subjects": subjects, "source": source,
        "ct_labels_from": next((st.detail for st in steps if st.name == "segment_ct"), ""),
        "misaligned_subjects": _misaligned(dataset),
        "ct_labels": len(scores.ct_labels), "ct_label_dice_mean": ct_mean, "ct_label_dice_min": ct_min,
        "transferred_labels": len(scores.transferred), "transfer_dice_mean": reg_mean, "transfer_dice_min": reg_min,
        "transfer_ceiling_mean": ceil_mean, "transfer_ceiling_min": ceil_min,
        "split_counts": {k: len(cfg.get(k, [])) for k in ("TRAINING", "VALIDATION", "TESTING")},
        "predictions": len(scores.predictions), "prediction_dice_mean": pred_mean, "prediction_dice_min": pred_min,
        "qc_entries": qc_entries, "qc_flagged": qc_flagged,
        "steps": [{"name": s.name, "seconds": round(s.seconds, 1), "cpu_seconds": round(s.cpu_seconds, 1),
                   "detail": s.detail} for s in steps],
        "total_seconds": round(seconds, 1), "outputs": outputs,
    }


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def format_summary(s: dict) -> str:
    """The summary as a Markdown table a person reads at the end of the run: what each step
    contributes (the CT label, its transfer beside the ceiling the CT label allows, the prediction),
    then the time per stage and where the outputs are."""
    lines = [
        "| figure | value |", "|---|---|",
        f"| subjects (misaligned) | {s['subjects']} ({len(s['misaligned_subjects'])}) |",
        f"| data from | {s.get('source', 'phantoms')} |",
        f"| CT labels from | {s.get('ct_labels_from', '')} |",
        f"| Dice CT label vs ground truth, on the CT (mean / min) | {_f(s['ct_label_dice_mean'])} / "
        f"{_f(s['ct_label_dice_min'])} |",
        f"| labels transferred CT -> MRI (rigid) | {s['transferred_labels']} |",
        f"| Dice transferred vs ground truth (mean / min) | {_f(s['transfer_dice_mean'])} / "
        f"{_f(s['transfer_dice_min'])} |",
        f"| ceiling: ground truth moved the same way (mean / min) | {_f(s['transfer_ceiling_mean'])} / "
        f"{_f(s['transfer_ceiling_min'])} |",
        f"| config split train / val / test (labels) | {s['split_counts']['TRAINING']} / "
        f"{s['split_counts']['VALIDATION']} / {s['split_counts']['TESTING']} |",
        f"| test images predicted | {s['predictions']} |",
        f"| Dice prediction vs ground truth (mean / min) | {_f(s['prediction_dice_mean'])} / "
        f"{_f(s['prediction_dice_min'])} |",
        f"| QC entries (with a warning) | {s.get('qc_entries', 0)} ({s.get('qc_flagged', 0)}) |",
        "", "| stage | seconds | CPU seconds | note |", "|---|---:|---:|---|",
    ]
    lines += [f"| {st['name']} | {st['seconds']:.1f} | {st.get('cpu_seconds', 0.0):.1f} | {st['detail']} |"
              for st in s["steps"]]
    cpu = sum(st.get("cpu_seconds", 0.0) for st in s["steps"])
    lines += [f"| **total** | {s['total_seconds']:.1f} | {cpu:.1f} | |", "", "| output | where |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in s["outputs"].items()]
    return "\n".join(lines) + "\n"
