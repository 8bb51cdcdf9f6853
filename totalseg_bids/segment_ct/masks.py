"""Masks from TotalSegmentator's files, on the CT grid, and several masks combined into one label map."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..core.errors import GeometryError
from ..core.nifti import Grid, Volume, grid_mismatch, grids_overlap, load_label, resample_label

log = logging.getLogger(__name__)


def binarise(data: np.ndarray, value: int | None = None) -> np.ndarray:
    """A 0/1 uint8 mask: voxels equal to ``value``, or all non-zero voxels.

    >>> binarise(np.array([0, 2, 25])).tolist(), binarise(np.array([0, 2, 25]), 25).tolist()
    ([0, 1, 1], [0, 0, 1])
    """
    data = np.asarray(data)
    mask = data == value if value is not None else data > 0
    return mask.astype(np.uint8)


def combine_masks(masks: Mapping[str, np.ndarray], ids: Mapping[str, int]) -> np.ndarray:
    """One label map from binary masks, each class painted with its id.

    TotalSegmentator's classes do not overlap; should they, the later class
    in ``masks`` wins, as in TotalSegmentator's own multi-label output.

    >>> combine_masks({"a": np.array([1, 1, 0]), "b": np.array([0, 1, 1])}, {"a": 25, "b": 27}).tolist()
    [25, 27, 27]
    """
    out: np.ndarray | None = None
    for name, mask in masks.items():
        if out is None:
            out = np.zeros(np.shape(mask), np.uint16 if max(ids.values()) > 255 else np.uint8)
        out[np.asarray(mask) > 0] = ids[name]
    if out is None:
        raise ValueError("no masks to combine")
    return out


def read_masks(label: Volume, ct_grid: Grid, values: Mapping[str, int | None]) -> dict[str, np.ndarray]:
    """0/1 masks (one per ``values`` entry: that id, or None for non-zero) from
    one loaded TotalSegmentator file, on the CT grid: resampled by nearest
    neighbour when its grid differs (e.g. outputs made on a resampled CT)."""
    data, grid, path = label.data, label.grid, label.path
    if not grids_overlap(grid, ct_grid):
        raise GeometryError("does not overlap the CT's field of view", path,
                            "check that this TotalSegmentator output belongs to this CT")
    why = grid_mismatch(grid, ct_grid)
    if why is not None:
        log.info("%s: not on the CT grid (%s); resampling by nearest neighbour", path, why)
    out = {}
    for name, value in values.items():
        mask = binarise(data, value)
        if why is not None:
            mask = resample_label(mask, grid.affine, ct_grid, mode="nearest")
        out[name] = mask.astype(np.uint8, copy=False)
    return out


def read_class_file(path: Path, ct_grid: Grid) -> np.ndarray:
    """One ``<class>.nii.gz``: must be 0/1 (a soft or multi-valued file is not what we think it is)."""
    return read_masks(load_label(path, binary=True), ct_grid, {path.name: None})[path.name]
