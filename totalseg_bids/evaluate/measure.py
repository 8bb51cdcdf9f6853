"""Every metric of every class of one case, from the two label maps on one grid.

The maps arrive as their joint labelled box (:func:`joint_box`); each class is
then measured on its own box, found for all classes in one pass per map
(``scipy.ndimage.find_objects``), so a map of a hundred structures costs about
what one structure costs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..core.nifti import Volume, nonzero_bbox
from .overlap import Counts, overlap_metrics, voxel_ml
from .surface import surface_distances, surface_metrics

#: The metrics of one class, in the order of the table's columns.
METRICS = ("dice", "iou", "hd95_mm", "assd_mm", "nsd", "pred_ml", "ref_ml", "rvd")
#: What an empty mask makes of a class (docs of :mod:`.surface` and :mod:`.overlap`).
FLAGS = ("both_empty", "empty_pred", "empty_ref")


def joint_box(pred: Volume, ref: Volume) -> tuple[np.ndarray, np.ndarray]:
    """Both maps on the smallest box (of one grid) that holds the labelled voxels of either.

    ``pred`` and ``ref`` are boxes of the same grid (``origin``: the box's first index);
    an empty map adds nothing to the box; two empty maps give two 1x1x1 zero boxes.

    >>> a = Volume(np.ones((1, 1, 2), np.uint8), np.eye(4), origin=(1, 1, 1))
    >>> b = Volume(np.full((1, 1, 1), 2, np.uint8), np.eye(4), origin=(1, 1, 4))
    >>> [x[0, 0].tolist() for x in joint_box(a, b)]
    [[1, 1, 0, 0], [0, 0, 0, 2]]
    """
    filled = [v for v in (pred, ref) if v.data.any()]
    if not filled:
        return np.zeros((1, 1, 1), pred.data.dtype), np.zeros((1, 1, 1), ref.data.dtype)
    lo = np.min([v.origin for v in filled], axis=0)
    hi = np.max([np.add(v.origin, v.data.shape) for v in filled], axis=0)
    out = []
    for v in (pred, ref):
        arr = np.zeros(tuple(hi - lo), v.data.dtype)
        if v.data.any():
            start = np.subtract(v.origin, lo)
            arr[tuple(slice(s, s + n) for s, n in zip(start, v.data.shape))] = v.data
        out.append(arr)
    return out[0], out[1]


#: up to this many classes, each class's box comes from two fast passes over ``data == value``;
#: beyond, one ``find_objects`` pass finds every box (a TotalSegmentator map of 117 classes)
FEW_CLASSES = 8


def _boxes(data: np.ndarray, values: Sequence[int]) -> dict[int, tuple[slice, ...]]:
    """The box of each class of ``values`` present in ``data``.

    >>> a = np.zeros((4, 4, 4), np.uint8); a[1, 2, 3] = 2
    >>> _boxes(a, [1, 2]) == _boxes(a, list(range(1, 12)))
    True
    """
    from scipy import ndimage

    if len(values) <= FEW_CLASSES:
        found = {v: nonzero_bbox(data == v) for v in values}
        return {v: tuple(slice(int(a), int(b) + 1) for a, b in zip(*box)) for v, box in found.items() if box}
    top = max(values, default=0)
    objects = ndimage.find_objects(np.ascontiguousarray(data), max_label=top) if top else []
    return {v: objects[v - 1] for v in values if v - 1 < len(objects) and objects[v - 1] is not None}


def _union(a: tuple[slice, ...] | None, b: tuple[slice, ...] | None) -> tuple[slice, ...]:
    if a is None or b is None:
        return a if b is None else b  # type: ignore[return-value]
    return tuple(slice(min(x.start, y.start), max(x.stop, y.stop)) for x, y in zip(a, b))


def empty_class_metrics() -> dict[str, Any]:
    """A class neither map holds: the prediction is right (Dice 1), nothing to measure on its surface.

    >>> empty_class_metrics()["dice"], empty_class_metrics()["flags"]
    (1.0, ['both_empty'])
    """
    nan = float("nan")
    return {"dice": 1.0, "iou": 1.0, "hd95_mm": nan, "assd_mm": nan, "nsd": nan, "pred_ml": 0.0, "ref_ml": 0.0,
            "rvd": nan, "flags": ["both_empty"]}


def class_metrics(pred: np.ndarray, ref: np.ndarray, affine: np.ndarray, tolerance_mm: float) -> dict[str, Any]:
    """All metrics of one class from its two boolean masks (a box of the grid of ``affine``)."""
    counts = Counts.of(pred, ref)
    if counts.pred == 0 and counts.ref == 0:
        return empty_class_metrics()
    figures: dict[str, Any] = overlap_metrics(counts, voxel_ml(affine))
    figures.update(surface_metrics(*surface_distances(pred, ref, affine), tolerance_mm))
    figures = {k: figures[k] for k in METRICS}
    figures["flags"] = ["empty_pred"] if counts.pred == 0 else ["empty_ref"] if counts.ref == 0 else []
    return figures


def labelled_view(pred: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Views of two maps on the box holding the labelled voxels of either (no copy; two fast
    passes per map), so that whole maps cost little more than their labelled boxes.

    >>> a = np.zeros((5, 5, 5), np.uint8); a[1, 2, 3] = 1; b = np.zeros_like(a); b[2, 2, 2] = 2
    >>> [v.shape for v in labelled_view(a, b)]
    [(2, 1, 2), (2, 1, 2)]
    """
    boxes = [b for b in (nonzero_bbox(pred), nonzero_bbox(ref)) if b is not None]
    if not boxes:
        return pred, ref
    lo, hi = np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0)
    window = tuple(slice(int(a), int(b) + 1) for a, b in zip(lo, hi))
    return pred[window], ref[window]


def case_metrics(pred: np.ndarray, ref: np.ndarray, affine: np.ndarray, values: Sequence[int],
                 tolerance_mm: float) -> dict[int, dict[str, Any]]:
    """``{value: metrics}`` for every class of ``values`` (two maps on one grid, whole or a box of it)."""
    values = sorted({int(v) for v in values})
    pred, ref = labelled_view(pred, ref)
    boxes_p, boxes_r = _boxes(pred, values), _boxes(ref, values)
    out = {}
    for v in values:
        box = _union(boxes_p.get(v), boxes_r.get(v))
        if box is None:
            out[v] = empty_class_metrics()
            continue
        out[v] = class_metrics(pred[box] == v, ref[box] == v, affine, tolerance_mm)
    return out


def present_classes(*maps: np.ndarray) -> set[int]:
    """The non-zero values of label maps.

    >>> sorted(present_classes(np.array([0, 2, 2]), np.array([1, 0, 0])))
    [1, 2]
    """
    return {int(v) for m in maps for v in np.unique(m) if v != 0}
