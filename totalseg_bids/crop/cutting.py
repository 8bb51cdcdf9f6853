"""Cutting one image and its labels to the box around the ROI, then resampling them (pure).

Every image is cut on its *own* grid (an ROI on another grid is mapped through
world coordinates), so no intensity is interpolated by the crop itself; only
``spacing``/``factor`` resample, images linearly or by cubic B-spline, labels by
nearest neighbour or per label (never linearly as integers).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..core.bids import dataset_path
from ..core.geometry import (
    Grid,
    centred_box,
    crop_box,
    crop_to_box,
    cut,
    resample_image,
    resample_label_edge,
    target_grid,
)
from ..core.nifti import Volume
from .options import IMAGE_ORDERS, CropOptions

log = logging.getLogger(__name__)


def crop_bounds(image: Path, grid: Grid, lo: np.ndarray, hi: np.ndarray, opts: CropOptions
                ) -> tuple[np.ndarray, np.ndarray]:
    """``[start, stop)`` voxel box of ``image``: the ROI index bounds ``lo``/``hi`` plus the margin,
    or ``opts.shape`` around the ROI centre (a warning when ROI plus margin does not fit in it).

    >>> s, e = crop_bounds(Path("x.nii.gz"), Grid((30, 30, 30), np.eye(4)), np.full(3, 9.5), np.full(3, 19.5),
    ...                    CropOptions(roi_label="x", margin_mm=2))
    >>> s.tolist(), e.tolist()
    ([8, 8, 8], [22, 22, 22])
    """
    if opts.shape is None:
        return crop_box(lo, hi, grid.spacing, opts.margin_mm, grid.shape)
    start, stop = centred_box(lo, hi, opts.shape)
    margin_start, margin_stop = crop_box(lo, hi, grid.spacing, opts.margin_mm, grid.shape)
    if np.any(margin_start < np.maximum(start, 0)) or np.any(margin_stop > np.minimum(stop, grid.shape)):
        log.warning("%s: ROI plus margin (%s voxels) is larger than --shape %s; it is cut",
                    dataset_path(image), (margin_stop - margin_start).tolist(), list(opts.shape))
    return start, stop


def output_grid(crop_grid: Grid, opts: CropOptions) -> Grid:
    """The grid the outputs are written on: the crop's own, or ``spacing``/``factor`` over the same
    field of view."""
    if not opts.resampled:
        return crop_grid
    spacing = (np.asarray(opts.spacing, float) if opts.spacing is not None
               else crop_grid.spacing * float(opts.factor or 1))
    return target_grid(crop_grid, spacing)


def crop_image(image: Volume, start: np.ndarray, stop: np.ndarray, opts: CropOptions
               ) -> tuple[np.ndarray, Grid, Grid, float]:
    """The cropped (and resampled) image in its output type, the crop grid, the output grid
    (the same object when not resampled) and the padding value (the image's minimum)."""
    pad_value = float(image.data.min())
    img_data, cropped_affine = crop_to_box(image.data, image.affine, start, stop, cval=pad_value)
    crop_grid = Grid(tuple(int(s) for s in img_data.shape), cropped_affine)
    out_grid = output_grid(crop_grid, opts)
    if out_grid is not crop_grid:
        img_data = resample_image(img_data, cropped_affine, out_grid, IMAGE_ORDERS[opts.image_interp], edge=True)
    dtype = image.header.get_data_dtype()
    if np.issubdtype(dtype, np.integer) and out_grid is crop_grid:
        img_out = img_data.astype(dtype)
    elif np.issubdtype(dtype, np.integer) and opts.image_interp == "linear":
        # linear interpolation stays within the input range: rounding to the input type is safe
        img_out = np.rint(img_data).astype(dtype)
    else:
        img_out = img_data.astype(np.float32)
    return img_out, crop_grid, out_grid, pad_value


def crop_label(data: np.ndarray, soft: bool, start: np.ndarray, stop: np.ndarray, crop_grid: Grid,
               out_grid: Grid, opts: CropOptions) -> np.ndarray:
    """One label cut like its image: soft labels interpolated linearly and kept in [0, 1] (float32),
    label maps by ``opts.label_interp``."""
    resampled = out_grid is not crop_grid
    if soft:
        out = cut(data, start, stop, 0.0)
        if resampled:
            out = np.clip(resample_image(out, crop_grid.affine, out_grid, 1, edge=True), 0.0, 1.0)
        return out.astype(np.float32)
    out = cut(data, start, stop, 0)
    return resample_label_edge(out, crop_grid.affine, out_grid, opts.label_interp) if resampled else out
