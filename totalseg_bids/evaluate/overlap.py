"""Overlap and volume metrics of one label: Dice, IoU, volumes, relative volume difference.

The counts are those of nnU-Net's ``compute_metrics`` (true positives, voxels in
the prediction, voxels in the reference), so Dice and IoU are the same numbers
it reports, except where both masks are empty: nnU-Net then gives NaN, this
stage 1 (the prediction is right; the case is flagged ``both_empty``), as the
metrics literature and the issue of empty structures in test sets ask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Counts:
    """Voxel counts of one label: in both masks, in the prediction, in the reference."""

    tp: int
    pred: int
    ref: int

    @classmethod
    def of(cls, pred: np.ndarray, ref: np.ndarray) -> Counts:
        """The counts of two boolean masks of the same shape.

        >>> Counts.of(np.array([1, 1, 0], bool), np.array([1, 0, 1], bool))
        Counts(tp=1, pred=2, ref=2)
        """
        return cls(int(np.count_nonzero(pred & ref)), int(np.count_nonzero(pred)), int(np.count_nonzero(ref)))


def dice(c: Counts) -> float:
    """2 TP / (|pred| + |ref|); 1.0 when both are empty.

    >>> dice(Counts(1, 2, 2)), dice(Counts(0, 0, 0)), dice(Counts(0, 3, 0))
    (0.5, 1.0, 0.0)
    """
    denom = c.pred + c.ref
    return 1.0 if denom == 0 else 2 * c.tp / denom


def iou(c: Counts) -> float:
    """TP / |pred or ref| (Jaccard); 1.0 when both are empty.

    >>> iou(Counts(1, 2, 2)), iou(Counts(0, 0, 0))
    (0.3333333333333333, 1.0)
    """
    union = c.pred + c.ref - c.tp
    return 1.0 if union == 0 else c.tp / union


def relative_volume_difference(pred: float, ref: float) -> float:
    """(V_pred - V_ref) / V_ref, signed: > 0 over-segments. An empty reference gives
    NaN when the prediction is empty too (0/0) and +inf otherwise (x/0).

    >>> relative_volume_difference(12, 10), relative_volume_difference(0, 0), relative_volume_difference(3, 0)
    (0.2, nan, inf)
    """
    if ref == 0:
        return float("nan") if pred == 0 else float("inf")
    return (pred - ref) / ref


def voxel_ml(affine: np.ndarray) -> float:
    """The volume of one voxel in millilitres (|det| of the affine's 3x3 part / 1000).

    >>> voxel_ml(np.diag([0.5, 0.5, 2.0, 1.0]))
    0.0005
    """
    return float(abs(np.linalg.det(np.asarray(affine, float)[:3, :3]))) / 1000.0


def overlap_metrics(c: Counts, voxel_volume_ml: float) -> dict[str, float]:
    """Dice, IoU, the two volumes (ml) and their relative difference.

    >>> overlap_metrics(Counts(8, 10, 8), 0.001)
    {'dice': 0.8888888888888888, 'iou': 0.8, 'pred_ml': 0.01, 'ref_ml': 0.008, 'rvd': 0.25}
    """
    return {"dice": dice(c), "iou": iou(c), "pred_ml": c.pred * voxel_volume_ml, "ref_ml": c.ref * voxel_volume_ml,
            "rvd": relative_volume_difference(c.pred, c.ref)}  # on the counts: the voxel volume cancels
