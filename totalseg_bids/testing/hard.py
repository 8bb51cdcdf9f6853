"""Harder phantoms: MRI frames with no common origin, strong bias fields, muscle layers, a partial
MRI field of view and femurs that move independently of the pelvis.

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


#: tissue classes the hard options add after air, body, fat and the four structures
MUSCLE, FEMUR = 7, 8
#: femoral head centres (anatomy mm, RAS+): the hip joints the femurs rotate about
FEMUR_HEADS = ((-72.0, -10.0, -38.0), (72.0, -10.0, -38.0))


def paint_muscle(out: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> None:
    """A muscle wall inside the fat layer, paraspinal muscles behind the spine and both psoas muscles
    (so mutual information sees soft-tissue edges, not only the bones)."""
    inside = (x / 72.0) ** 2 + ((y + 5.0) / 52.0) ** 2 <= 1.0
    wall = inside & ((x / 62.0) ** 2 + ((y + 5.0) / 43.0) ** 2 > 1.0) & (np.abs(z) <= 200)
    paraspinal = (((np.abs(x) - 20.0) / 13.0) ** 2 + ((y + 44.0) / 9.0) ** 2 <= 1.0) & (z > -20) & (z <= 200)
    psoas = (((np.abs(x) - 33.0) / 10.0) ** 2 + ((y + 12.0) / 10.0) ** 2 <= 1.0) & (z > -30) & (z <= 200)
    out[(out == 1) & (wall | paraspinal | psoas)] = MUSCLE


def inverse_points(pose: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple:
    """Coordinates ``inv(pose) @ (x, y, z)``: where a point of a posed part sat before it moved.

    >>> m = np.eye(4); m[0, 3] = 2.0
    >>> [float(v) for v in inverse_points(m, np.array(3.0), np.array(0.0), np.array(0.0))]
    [1.0, 0.0, 0.0]
    """
    inv = np.linalg.inv(np.asarray(pose, float))
    return tuple(inv[c, 0] * x + inv[c, 1] * y + inv[c, 2] * z + inv[c, 3] for c in range(3))


def paint_femurs(out: np.ndarray, fx: np.ndarray, fy: np.ndarray, fz: np.ndarray) -> None:
    """Both femurs (head and shaft) at anatomy coordinates already moved with the soft tissue."""
    for hx, hy, hz in FEMUR_HEADS:
        side = np.sign(hx)
        head = (fx - hx) ** 2 + (fy - hy) ** 2 + (fz - hz) ** 2 <= 22.0 ** 2
        # the shaft runs from below the head down and slightly outwards, 14 mm radius
        sx = hx + side * 8.0 + side * 0.08 * (hz - fz)
        shaft = ((fx - sx) ** 2 + (fy - hy) ** 2 <= 14.0 ** 2) & (fz <= hz) & (fz >= hz - 260.0)
        out[head | shaft] = FEMUR


def flexion(degrees: float) -> np.ndarray:
    """Rotation of the femurs (and the soft tissue around them) by ``degrees`` about the left-right axis
    through the hip joints: a change of pelvic tilt between the scans.

    >>> bool(np.allclose(flexion(0.0), np.eye(4)))
    True
    >>> bool(np.allclose(flexion(10.0) @ [*FEMUR_HEADS[0], 1.0], [*FEMUR_HEADS[0], 1.0]))
    True
    """
    from .phantoms import rotation_matrix

    centre = np.mean(np.asarray(FEMUR_HEADS, float), axis=0)
    m = np.eye(4)
    r = rotation_matrix([1.0, 0.0, 0.0], degrees)
    m[:3, :3] = r
    m[:3, 3] = centre - r @ centre
    return m


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
#: The benchmark (benchmarks/bench_register.py) and tests/test_register_hard.py measure them.
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
