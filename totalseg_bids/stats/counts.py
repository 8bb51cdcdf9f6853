"""What each case contributes (its grid, its voxels per class) and the statistics of a group of
cases: the class table a training set is judged by (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class CaseStats:
    """What one case contributes: its grid and per-class voxel counts."""

    dataset: str
    split: str
    subject: str
    spacing: tuple[float, float, float]
    shape: tuple[int, int, int]
    voxel_ml: float
    counts: dict[int, int] | None  # None: no label


def count_classes(label: np.ndarray) -> dict[int, int]:
    """Voxel count per value (background included).

    >>> count_classes(np.array([[0, 1], [1, 3]]))
    {0: 1, 1: 2, 3: 1}
    """
    values, counts = np.unique(np.asarray(label), return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts)}


def axis_summary(values: Sequence[Sequence[float]]) -> dict[str, list[float]]:
    """Per-axis min/median/max of a list of 3-vectors.

    >>> axis_summary([(1, 1, 3), (1, 2, 5)])
    {'min': [1.0, 1.0, 3.0], 'median': [1.0, 1.5, 4.0], 'max': [1.0, 2.0, 5.0]}
    """
    if not len(values):
        return {"min": [], "median": [], "max": []}
    a = np.asarray(values, float)
    return {k: [round(float(x), 4) for x in f(a, axis=0)] for k, f in
            (("min", np.min), ("median", np.median), ("max", np.max))}


def group_stats(cases: Sequence[CaseStats], names: dict[int, str]) -> dict:
    """Statistics of one dataset/split group.

    >>> c = [CaseStats("d", "train", "01", (1, 1, 1), (2, 2, 1), 0.001, {0: 3, 1: 1}),
    ...      CaseStats("d", "train", "02", (1, 1, 1), (2, 2, 1), 0.001, {0: 4})]
    >>> g = group_stats(c, {1: "sacrum"})
    >>> g["cases"], g["subjects"], g["classes"]["1"]["voxel_percent"], g["classes"]["1"]["images"]
    (2, 2, 12.5, 1)
    """
    labelled = [c for c in cases if c.counts is not None]
    total = sum(sum(c.counts.values()) for c in labelled)
    values = sorted({v for c in labelled for v in c.counts})
    classes = {}
    for v in values:
        present = [c for c in labelled if c.counts.get(v, 0) > 0]
        vox = sum(c.counts.get(v, 0) for c in labelled)
        vols = [c.counts[v] * c.voxel_ml for c in present]
        classes[str(v)] = {
            "name": "background" if v == 0 else names.get(v, f"class{v}"),
            "voxel_percent": round(100.0 * vox / total, 4) if total else 0.0,
            "images": len(present),
            "volume_ml": {"mean": round(float(np.mean(vols)), 4), "min": round(float(np.min(vols)), 4),
                          "max": round(float(np.max(vols)), 4)} if vols else None,
        }
    return {
        "cases": len(cases),
        "subjects": len({c.subject for c in cases}),
        "labelled_cases": len(labelled),
        "spacing_mm": axis_summary([c.spacing for c in cases]),
        "shape": axis_summary([c.shape for c in cases]),
        "classes": classes,
    }
