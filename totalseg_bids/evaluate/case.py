"""One case: read both maps, check they share a grid, measure every class, hand the figures to QC.

Nothing is written per case (the batch writes the table once), so there is
nothing to skip or redo: reading is the only cost, and only the labelled box of
each file is kept in memory (:func:`~totalseg_bids.core.label_box.load_label_box`).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from ..core.bids import is_binary_label
from ..core.errors import GeometryError
from ..core.label_box import crop_to_box, load_label_box
from ..core.nifti import Volume, grid_mismatch, resample_label
from ..core.options import resolve_options
from ..core.qc_hook import qc_figures
from .labels import class_names, label_name, parse_label_specs, resolve_classes
from .measure import case_metrics, joint_box, present_classes
from .options import EvaluateOptions
from .pairing import Pair

log = logging.getLogger(__name__)


def load_pair(pred: Path, ref: Path, resample_to: str | None = None) -> tuple[Volume, Volume, bool]:
    """Both maps as labelled boxes of the reference grid, and whether the prediction was resampled.

    A ``_seg``/``_mask`` must hold 0 and 1 only; non-integer, negative or NaN values are refused
    (one line naming the file). Grids that differ are refused unless ``resample_to == "ref"``.
    """
    ref_vol = load_label_box(ref, binary=is_binary_label(ref))
    pred_vol = load_label_box(pred, binary=is_binary_label(pred))
    why = grid_mismatch(pred_vol.grid, ref_vol.grid)
    if why is None:
        return pred_vol, ref_vol, False
    if resample_to != "ref":
        raise GeometryError(f"prediction and reference grids differ ({why})", pred,
                            f"pass --resample-to ref to bring it onto the grid of {ref.name} (nearest neighbour)")
    full = resample_label(pred_vol.data, pred_vol.affine, ref_vol.grid, origin=pred_vol.origin)
    box, origin = crop_to_box(full)
    return Volume(box, ref_vol.affine, pred, None, origin, ref_vol.grid.shape), ref_vol, True


def evaluate_pair(pred: str | Path, ref: str | Path, options: EvaluateOptions | None = None, *,
                  case: str | None = None, image: str | Path | None = None, **kwargs: Any) -> dict[str, Any]:
    """Every metric of every class of one prediction against its reference
    (``options``: an :class:`EvaluateOptions`, or its fields as keywords, e.g. ``labels=["1"]``).

    Returns the case's record: ``status`` (``evaluated``), ``path`` (the
    prediction), ``reference``, ``case``, ``image``, ``resampled`` and ``labels``:
    ``{name: {"value", "dice", "iou", "hd95_mm", "assd_mm", "nsd", "pred_ml",
    "ref_ml", "rvd", "flags"}}`` (floats; NaN and inf as the module docs say).
    """
    opts = resolve_options(EvaluateOptions, options, kwargs).check()
    pred, ref = Path(pred), Path(ref)
    pred_vol, ref_vol, resampled = load_pair(pred, ref, opts.resample_to)
    wanted, given = parse_label_specs(opts.labels)
    names = class_names(ref, pred, given)
    p, r = joint_box(pred_vol, ref_vol)
    values = resolve_classes(wanted, names, ref) if wanted else sorted(set(names) | present_classes(p, r))
    metrics = case_metrics(p, r, ref_vol.affine, values, opts.tolerance_mm)
    return {"status": "evaluated", "path": str(pred), "reference": str(ref),
            "case": case or pred.name.split(".nii")[0], "image": str(image) if image is not None else None,
            "resampled": resampled,
            "labels": {label_name(v, names): {"value": v, **m} for v, m in metrics.items()}}


def _shown(value: float) -> float | str:
    return round(value, 4) if math.isfinite(value) else str(value)


def qc_meta(record: dict[str, Any], tolerance_mm: float) -> dict[str, Any]:
    """The figures a QC entry shows beside the prediction (non-finite values spelled out).

    >>> rec = {"reference": "r.nii.gz", "labels": {"sacrum": {"dice": 0.91234, "hd95_mm": float("inf"),
    ...        "assd_mm": 1.0, "nsd": 0.5, "rvd": 0.1, "flags": ["empty_pred"]}}}
    >>> qc_meta(rec, 2.0)["Dice vs reference"], qc_meta(rec, 2.0)["HD95 (mm)"]
    (0.9123, 'inf')
    """
    meta: dict[str, Any] = {"evaluated against": record["reference"]}
    many = len(record["labels"]) > 1
    for name, m in record["labels"].items():
        prefix = f"{name}: " if many else ""
        meta[f"{prefix}Dice vs reference"] = _shown(m["dice"])
        meta[f"{prefix}HD95 (mm)"] = _shown(m["hd95_mm"])
        meta[f"{prefix}ASSD (mm)"] = _shown(m["assd_mm"])
        meta[f"{prefix}NSD at {tolerance_mm:g} mm"] = _shown(m["nsd"])
        meta[f"{prefix}relative volume difference"] = _shown(m["rvd"])
        if m["flags"]:
            meta[f"{prefix}evaluation flags"] = ", ".join(m["flags"])
    return meta


def evaluate_case(pair: Pair, options: EvaluateOptions) -> dict[str, Any]:
    """The batch task (module level, picklable): one pair, its QC figures added when asked."""
    record = evaluate_pair(pair.pred, pair.ref, options, case=pair.case, image=pair.image)
    if options.qc_dir is not None:
        qc_figures(options.qc_dir, pair.pred, qc_meta(record, options.tolerance_mm), image=pair.image,
                   compare_label=pair.ref)
    return record
