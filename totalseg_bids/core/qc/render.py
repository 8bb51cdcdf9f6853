"""Sagittal and axial mosaics of one entry, resampled onto axis-aligned RAS planes.

Images are brought onto an axis-aligned RAS grid through their affines whatever
their storage orientation (sagittal ASL, oblique, LPS...), with square pixels,
so every entry is shown the same way (see :mod:`.display`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..bids import is_ct_name
from ..display import to_uint8
from ..geometry import Grid, resample_image, resample_label
from .display import (
    CT_WINDOW,
    MRI_PERCENTILES,
    looks_like_ct,
    mosaic,
    orient_tile,
    overlay_rgb,
    slice_positions,
    window_bounds,
)
from .focus import crop_bounds, foreground_world_bounds

N_SAGITTAL = 5
N_AXIAL = 10
AXIAL_COLUMNS = 5
#: Longest side of one mosaic tile in pixels (sets the display spacing).
TILE_PX = 192


@dataclass
class View:
    """One mosaic: the windowed background, the label(s) on the same pixels."""

    name: str
    image: np.ndarray
    label: np.ndarray | None
    compare: np.ndarray | None
    positions_mm: list[float]
    axis: str
    boxes: list[tuple[int, int, int, int]]
    spacing_mm: float
    start: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def overlay(self) -> np.ndarray:
        return overlay_rgb(self.image, self.label, self.compare)

    def world(self, tile: int, row: float, col: float) -> np.ndarray:
        """World (RAS mm) position of a pixel of tile ``tile``: undoes :func:`orient_tile`,
        so tests (and users) can check where a structure was drawn."""
        top, left, h, w = self.boxes[tile]
        u = (w - 1 - (col - left)) * self.spacing_mm
        v = (h - 1 - (row - top)) * self.spacing_mm
        x0, y0, z0 = self.start
        if self.axis == "x":  # sagittal tile [z desc, y desc]
            return np.array([self.positions_mm[tile], y0 + u, z0 + v])
        return np.array([x0 + u, y0 + v, self.positions_mm[tile]])  # axial tile [y desc, x desc]


@dataclass
class Views:
    """Sagittal and axial mosaics of one entry, and how they were windowed."""

    sagittal: View
    axial: View
    window: dict[str, Any]
    inside_fov: bool = True
    crop_mm: tuple[list[float], list[float]] = field(default_factory=lambda: ([], []))


def _stack_grids(lo: np.ndarray, hi: np.ndarray, spacing: float, xs: Sequence[float],
                 zs: Sequence[float]) -> tuple[Grid, Grid]:
    """Axis-aligned RAS grids holding the sagittal slices (at ``xs``, descending)
    and the axial slices (at ``zs``, descending), with square in-plane pixels."""
    n = np.maximum(np.ceil((hi - lo) / spacing).astype(int), 1)
    start = lo + spacing / 2
    dx = xs[0] - xs[1] if len(xs) > 1 else 1.0
    dz = zs[0] - zs[1] if len(zs) > 1 else 1.0
    sag = np.diag([-dx, spacing, spacing, 1.0])
    sag[:3, 3] = [xs[0], start[1], start[2]]
    ax = np.diag([spacing, spacing, -dz, 1.0])
    ax[:3, 3] = [start[0], start[1], zs[0]]
    return Grid((len(xs), int(n[1]), int(n[2])), sag), Grid((int(n[0]), int(n[1]), len(zs)), ax)


def thin_axes_repeated(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A volume one voxel thick along an axis (a 2D slice stored as a volume) with that voxel repeated on
    both sides, so linear interpolation shows it through its whole thickness instead of only at its centre.

    >>> d, a = thin_axes_repeated(np.ones((4, 4, 1)), np.eye(4))
    >>> d.shape, a[2, 3].tolist()
    ((4, 4, 3), -1.0)
    """
    thin = [int(n == 1) for n in data.shape[:3]]
    if not any(thin):
        return data, affine
    out = np.pad(np.asarray(data), [(t, t) for t in thin] + [(0, 0)] * (data.ndim - 3), mode="edge")
    shift = np.eye(4)
    shift[:3, 3] = [-t for t in thin]
    return out, affine @ shift


def render_views(image, label=None, compare=None, ct: bool | None = None, tile_px: int = TILE_PX,
                 n_sagittal: int = N_SAGITTAL, n_axial: int = N_AXIAL) -> Views:
    """Sagittal and axial mosaics of ``image`` (a :class:`~totalseg_bids.core.nifti.Volume`)
    cropped around ``label`` (any grid: resampled through the affines), with an
    optional ``compare`` label (drawn as a cyan contour).

    Only the shown planes are resampled (two thin grids), which keeps an
    entry of a 1 mm CT well under a second.
    """
    labels = [v for v in (label, compare) if v is not None]
    boxes = [b for b in (foreground_world_bounds(v.data, v.affine) for v in labels) if b is not None]
    structure = (np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0)) if boxes else None
    lo, hi, inside = crop_bounds(structure, image.grid.world_bounds())
    extent = hi - lo
    # square pixels, each view sized to its own plane (a wide pelvis must not shrink the sagittal tiles)
    sag_spacing = max(float(max(extent[1], extent[2])) / tile_px, 0.2)
    ax_spacing = max(float(max(extent[0], extent[1])) / tile_px, 0.2)
    ref = (structure[0], structure[1]) if structure is not None and inside else (lo, hi)
    inset_s, inset_a = (0.2, 0.1) if structure is not None and inside else (0.3, 0.2)
    xs = slice_positions(float(ref[0][0]), float(ref[1][0]), n_sagittal, inset_s)[::-1]
    zs = slice_positions(float(ref[0][2]), float(ref[1][2]), n_axial, inset_a)[::-1]
    sag_grid = _stack_grids(lo, hi, sag_spacing, xs, zs)[0]
    ax_grid = _stack_grids(lo, hi, ax_spacing, xs, zs)[1]
    stacks: dict[str, tuple[np.ndarray, np.ndarray | None, np.ndarray | None]] = {}
    data, affine = thin_axes_repeated(image.data, image.affine)
    for name, grid in (("sagittal", sag_grid), ("axial", ax_grid)):
        img = resample_image(data, affine, grid, order=1, cval=np.nan)
        lab, cmp_ = (resample_label(v.data, v.affine, grid) if v is not None else None for v in (label, compare))
        stacks[name] = (img, lab, cmp_)
    if ct is None:
        ct = is_ct_name(image.path) or looks_like_ct(image.data[::3, ::3, ::3])
    shown = np.concatenate([stacks["sagittal"][0].ravel(), stacks["axial"][0].ravel()])
    wlo, whi = window_bounds(shown, ct)
    window = {"modality": "CT" if ct else "MR", "low": round(wlo, 3), "high": round(whi, 3),
              "kind": (f"CT W{CT_WINDOW[0]:g}/L{CT_WINDOW[1]:g}" if ct
                       else f"percentile {MRI_PERCENTILES[0]:g}-{MRI_PERCENTILES[1]:g}")}

    def build(name: str, take, count: int, columns: int, positions: list[float], axis: str,
              spacing: float) -> View:
        img, lab, cmp_ = stacks[name]
        tile = lambda arr: mosaic([orient_tile(take(arr, i)) for i in range(count)], columns, fill=0)  # noqa: E731
        base, boxes = tile(to_uint8(img, wlo, whi))
        over = [tile(arr)[0] if arr is not None else None for arr in (lab, cmp_)]
        x, y, z = (float(v) for v in lo + spacing / 2)
        return View(name, base, over[0], over[1], [float(p) for p in positions], axis, boxes, spacing, (x, y, z))

    sag = build("sagittal", lambda a, i: a[i], len(xs), len(xs), xs, "x", sag_spacing)
    ax = build("axial", lambda a, i: a[:, :, i], len(zs), AXIAL_COLUMNS, zs, "z", ax_spacing)
    return Views(sag, ax, window, inside, (lo.round(2).tolist(), hi.round(2).tolist()))
