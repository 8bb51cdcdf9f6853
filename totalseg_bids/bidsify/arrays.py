"""Volumes without world geometry: ``.npy`` arrays and stacks of 2D slices."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..core.errors import InputError, UsageError


def affine_from(spacing, orientation: str) -> np.ndarray:
    """Affine of axis-aligned voxels: ``orientation`` names where i, j, k point.

    >>> affine_from([1, 2, 3], "LPS").diagonal().tolist()
    [-1.0, -2.0, 3.0, 1.0]
    """
    axes = {"R": (0, 1), "L": (0, -1), "A": (1, 1), "P": (1, -1), "S": (2, 1), "I": (2, -1)}
    if len(orientation) != 3 or sorted(axes[c][0] for c in orientation.upper() if c in axes) != [0, 1, 2]:
        raise UsageError(f"bad --orientation {orientation!r}", None, "use three letters such as RAS or LPS")
    a = np.eye(4)
    a[:3, :3] = 0
    for col, c in enumerate(orientation.upper()):
        row, sign = axes[c]
        a[row, col] = sign * float(spacing[col])
    return a


def read_array(paths: list[str], spacing, orientation: str) -> tuple[np.ndarray, np.ndarray]:
    """One ``.npy`` (3D) or a sorted list of 2D slices stacked along k."""
    first = Path(paths[0])
    if first.suffix == ".npy":
        data = np.load(first, allow_pickle=False)
        side = first.with_suffix(".json")
        if side.is_file():
            meta = json.loads(side.read_text(encoding="utf-8"))
            if "affine" in meta:
                return data, np.asarray(meta["affine"], float)
    else:
        from PIL import Image

        try:
            slices = [np.asarray(Image.open(p)) for p in paths]
        except OSError as exc:
            raise InputError(f"cannot read the slice ({exc})", paths[0], "re-export the slices") from None
        slices = [s[..., 0] if s.ndim == 3 else s for s in slices]
        if len({s.shape for s in slices}) != 1:
            raise InputError("slices of different sizes in one case", paths[0], "export all slices at one size")
        data = np.stack([s.T for s in slices], axis=-1)  # rows are j, columns i
    if data.ndim != 3:
        raise InputError(f"expected a 3D array, got shape {data.shape}", first, "save one volume per file")
    if spacing is None:
        raise UsageError("arrays carry no voxel size", first, "pass --spacing X Y Z and --orientation")
    return data, affine_from(spacing, orientation)
