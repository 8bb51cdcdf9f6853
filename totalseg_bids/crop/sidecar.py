"""What a cropped file's sidecar records: the crop box in voxels and in the world, the margin,
the resampling and the ROI it was cut around."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.bids import bids_uri
from ..core.geometry import Grid
from .options import CropOptions


def box_record(grid: Grid, start: np.ndarray, stop: np.ndarray, out_grid: Grid) -> dict:
    """The crop box: source voxel indices and the world bounds of the cropped field of view.

    >>> box_record(Grid((4, 4, 4), np.eye(4)), np.array([1, 1, 1]), np.array([3, 3, 3]),
    ...            Grid((2, 2, 2), np.eye(4)))["WorldBoundsMax"]
    [1.5, 1.5, 1.5]
    """
    lo, hi = out_grid.world_bounds()
    return {
        "VoxelStart": [int(v) for v in start],
        "VoxelStop": [int(v) for v in stop],
        "SourceShape": [int(v) for v in grid.shape],
        "WorldBoundsMin": [round(float(v), 4) for v in lo],
        "WorldBoundsMax": [round(float(v), 4) for v in hi],
        "Note": "VoxelStart/VoxelStop index the source image ([start, stop), may leave it when padded); "
                "world bounds are the voxel edges of the cropped field of view in mm (RAS+ scanner space)",
    }


def describe_resolution(opts: CropOptions, grid: Grid) -> str:
    """Human-readable meaning of the ``res-`` label (the ``Resolution`` sidecar key, required by BIDS).

    >>> describe_resolution(CropOptions(roi_label="x", factor=3), Grid((2, 2, 2), np.diag([3., 3., 3., 1.])))
    'voxel size multiplied by 3 (3x3x3 mm)'
    """
    spacing = "x".join(f"{v:g}" for v in np.round(grid.spacing, 4))
    if opts.factor is not None:
        return f"voxel size multiplied by {opts.factor:g} ({spacing} mm)"
    return f"resampled to {spacing} mm voxels"


def sidecar_fields(opts: CropOptions, roi: Path, raw_root: Path | None, box: dict, out_grid: Grid,
                   pad_value: float) -> dict:
    """What every output's sidecar records: the box, margin, resampling and ROI."""
    resampling = {
        "Mode": "spacing" if opts.spacing is not None else "factor" if opts.factor is not None
        else "shape" if opts.shape is not None else None,
        "Spacing": [round(float(s), 5) for s in out_grid.spacing],
        "Shape": [int(s) for s in out_grid.shape],
        "Factor": opts.factor,
        "RequestedSpacing": list(opts.spacing) if opts.spacing is not None else None,
        "RequestedShape": list(opts.shape) if opts.shape is not None else None,
        "ImageInterpolation": opts.image_interp if opts.resampled else None,
        "LabelInterpolation": opts.label_interp if opts.resampled else None,
        "PadValue": pad_value if opts.shape is not None else None,
    }
    common = {"CropBox": box, "MarginMm": opts.margin_mm,
              "Resampling": {k: v for k, v in resampling.items() if v is not None},
              "ROI": {"Label": opts.roi_label, "Mask": bids_uri(roi, raw_root)}}
    if opts.res:  # BIDS requires the meaning of a res- label in the sidecar
        common["Resolution"] = {opts.res: describe_resolution(opts, out_grid)}
    return common
