"""Harder phantoms: MRI frames with no common origin, strong bias fields, a partial MRI field of view,
and the hard cases registration is measured on (muscle layers and femurs that move independently of
the pelvis are part of the anatomy, :mod:`totalseg_bids.testing.anatomy`).

Used by :mod:`totalseg_bids.testing.phantoms` when its hard options are set; with the
defaults nothing here changes a phantom.
"""

from __future__ import annotations

import numpy as np

from ..core.nifti import Grid


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


def crop_superior(grid: Grid, fov_mm: float) -> Grid:
    """``grid`` cut to its top ``fov_mm`` along the voxel axis closest to head-foot (a lumbar MRI
    whose field of view covers only part of a whole-pelvis CT).

    >>> g = crop_superior(Grid((4, 4, 10), np.diag([1.0, 1.0, 2.0, 1.0])), 8.0)
    >>> g.shape, g.affine[2, 3].item()
    ((4, 4, 4), 12.0)
    """
    a = np.asarray(grid.affine, float)
    axis = int(np.argmax(np.abs(a[2, :3]) / np.linalg.norm(a[:3, :3], axis=0)))
    step = float(np.linalg.norm(a[:3, axis]))
    n = min(grid.shape[axis], max(1, int(round(fov_mm / step))))
    start = grid.shape[axis] - n if a[2, axis] > 0 else 0
    shape = list(grid.shape)
    shape[axis] = n
    out = a.copy()
    out[:3, 3] = a[:3, 3] + a[:3, axis] * start
    return Grid(tuple(shape), out)


#: The hard pairs and the registration options that handle each: name -> (phantom options, ``rigid``
#: options). The patient also moved 10 mm / 10 deg between the scans in every case (header Dice < 0.8).
#: The benchmark (benchmarks/bench_register.py) and tests/unit/stages/test_register_hard.py measure them.
HARD_CASES: dict[str, tuple[dict, dict]] = {
    "muscle and fat layers": ({"layers": True}, {}),
    "MRI bias field 0.6": ({"mri_bias": 0.6}, {}),
    "lumbar MRI, 80 mm field of view": ({"mri_fov_mm": 80.0}, {"focus_mm": 15.0}),
    "femurs and soft tissue flexed 8 deg": ({"articulate_deg": 8.0}, {"focus_mm": 15.0}),
    "no common origin (MRI frame 400 mm away)": ({"world_offset_mm": 400.0}, {"init": "geometry"}),
    "all but the origin": ({"layers": True, "mri_bias": 0.6, "mri_fov_mm": 80.0, "articulate_deg": 8.0},
                           {"focus_mm": 15.0}),
    "all five (110 mm field of view, 6 deg)": (
        {"layers": True, "mri_bias": 0.6, "mri_fov_mm": 110.0, "articulate_deg": 6.0, "world_offset_mm": 400.0},
        {"init": "geometry", "focus_mm": 15.0}),
}
