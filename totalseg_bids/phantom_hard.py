"""Harder phantom geometry: MRI world frames with no common origin, strong MRI bias fields.

Used by :mod:`totalseg_bids.phantoms` when its hard options are set; with the
defaults nothing here changes a phantom.
"""

from __future__ import annotations

import numpy as np

from .core.nifti import Grid


def offset_grid(grid: Grid, offset_mm: float) -> Grid:
    """``grid`` moved by ``offset_mm`` along every world axis (a scanner with another origin).

    >>> g = offset_grid(Grid((2, 2, 2), np.eye(4)), 500.0)
    >>> g.affine[:3, 3].tolist()
    [500.0, 500.0, 500.0]
    """
    a = np.asarray(grid.affine, float).copy()
    a[:3, 3] += offset_mm
    return Grid(grid.shape, a)


def offset_pose(pose: np.ndarray, offset_mm: float) -> np.ndarray:
    """The anatomy pose in an MRI frame moved by ``offset_mm`` (the truth moves with the frame).

    >>> offset_pose(np.eye(4), 2.0)[:3, 3].tolist()
    [2.0, 2.0, 2.0]
    """
    p = np.asarray(pose, float).copy()
    p[:3, 3] += offset_mm
    return p


def bias_field(shape: tuple[int, ...], strength: float) -> np.ndarray:
    """A smooth multiplicative field from ``1 - strength/2`` to ``1 + strength/2``, darker at one end
    (a surface coil's fall-off), which intensity-based metrics must tolerate.

    >>> f = bias_field((4, 4, 4), 0.6)
    >>> round(float(f.min()), 2), round(float(f.max()), 2)
    (0.7, 1.3)
    """
    g = np.indices(shape, dtype=np.float32)
    sh = np.maximum(np.asarray(shape, np.float32) - 1, 1)[:, None, None, None]
    ramp = (g / sh).mean(axis=0)
    ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)
    return (1.0 - strength / 2 + strength * ramp).astype(np.float32)
