"""The per-class summary of an evaluation, as Markdown: n, mean, median, std and the worst cases."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

#: (metric, heading, worst is the highest value, |value| ranks it)
SUMMARISED = (("dice", "Dice", False, False), ("iou", "IoU", False, False), ("hd95_mm", "HD95 (mm)", True, False),
              ("assd_mm", "ASSD (mm)", True, False), ("nsd", "NSD", False, False),
              ("rvd", "relative volume difference", True, True))
WORST = 3


def _fmt(value: float) -> str:
    """
    >>> _fmt(0.912345), _fmt(12.3456), _fmt(float("inf"))
    ('0.9123', '12.35', 'inf')
    """
    return f"{value:.4g}"


def metric_stats(values: Sequence[tuple[str, float]], high_is_bad: bool, absolute: bool) -> dict[str, Any]:
    """n, mean, median, sample std over the finite values; the non-finite counted; the worst cases.

    >>> s = metric_stats([("a", 0.9), ("b", 0.7), ("c", float("nan")), ("d", 0.8)], False, False)
    >>> s["n"], round(s["mean"], 3), s["median"], round(s["std"], 3), s["nan"], [c for c, _ in s["worst"]]
    (3, 0.8, 0.8, 0.1, 1, ['b', 'd', 'a'])
    >>> [c for c, _ in metric_stats([("a", 1.0), ("b", float("inf"))], True, False)["worst"]]
    ['b', 'a']
    """
    finite = np.array([v for _c, v in values if math.isfinite(v)], float)
    nan = sum(math.isnan(v) for _c, v in values)
    ranked = sorted(((c, v) for c, v in values if not math.isnan(v)),
                    key=lambda cv: abs(cv[1]) if absolute else cv[1], reverse=high_is_bad)
    return {"n": int(finite.size), "mean": float(finite.mean()) if finite.size else math.nan,
            "median": float(np.median(finite)) if finite.size else math.nan,
            "std": float(finite.std(ddof=1)) if finite.size > 1 else math.nan,
            "inf": sum(math.isinf(v) for _c, v in values), "nan": nan, "worst": ranked[:WORST]}


def _classes(records: Sequence[Mapping[str, Any]]) -> list[tuple[int, str]]:
    return sorted({(m["value"], name) for rec in records for name, m in rec["labels"].items()})


def _class_section(records: Sequence[Mapping[str, Any]], value: int, name: str) -> list[str]:
    lines = [f"## {name} (label {value})", "", "| metric | n | mean | median | std | worst cases |",
             "|---|---|---|---|---|---|"]
    per_case = [(rec["case"], rec["labels"][name]) for rec in records if name in rec["labels"]]
    for key, heading, high_is_bad, absolute in SUMMARISED:
        s = metric_stats([(case, m[key]) for case, m in per_case], high_is_bad, absolute)
        left_out = ", ".join(f"{s[k]} {k}" for k in ("inf", "nan") if s[k])
        n = f"{s['n']}" + (f" (+{left_out})" if left_out else "")
        worst = ", ".join(f"{case} ({_fmt(v)})" for case, v in s["worst"])
        lines.append(f"| {heading} | {n} | {_fmt(s['mean'])} | {_fmt(s['median'])} | {_fmt(s['std'])} | {worst} |")
    for flag, what in (("empty_pred", "empty prediction"), ("empty_ref", "empty reference"),
                       ("both_empty", "both empty")):
        cases = [case for case, m in per_case if flag in m["flags"]]
        if cases:
            lines.append(f"\n{what}: {len(cases)} case(s) ({', '.join(cases[:5])}{', ...' if len(cases) > 5 else ''})")
    return lines + [""]


def summary_markdown(records: Iterable[Mapping[str, Any]], tolerance_mm: float, pred: str = "", ref: str = "") -> str:
    """The summary of every class over the cases of an evaluation."""
    records = list(records)
    lines = [f"# Evaluation of {len(records)} case(s)", ""]
    if pred or ref:
        lines += [f"Predictions `{pred}` against references `{ref}`.", ""]
    lines += [f"NSD at {tolerance_mm:g} mm. Mean, median and sample standard deviation are over the finite values, "
              "which `n` counts; values left out are counted beside it (inf: one mask empty; nan: nothing to measure). "
              "Worst cases: the lowest Dice, IoU and NSD, the highest HD95 and ASSD, the largest |relative volume "
              "difference|. Both masks empty counts as Dice 1.", ""]
    for value, name in _classes(records):
        lines += _class_section(records, value, name)
    return "\n".join(lines)
