"""The phantom anatomy, defined once in world millimetres, and its rendering on any grid.

A tapered sacrum, an L5 vertebral body and both hip bones inside a body with
a fat layer (optionally a muscle wall, paraspinal and psoas muscles, and femurs
that move with the soft tissue), so every grid's image and ground truth come
from the same definition. Everything else in :mod:`totalseg_bids.testing`
builds on this module, which imports nothing of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..core.nifti import Grid

#: Phantom structures, in the order of their internal index (1..4).
STRUCTURES = ("sacrum", "vertebrae_L5", "hip_left", "hip_right")

# tissue intensities: background, body, fat, then STRUCTURES, then muscle and femur
# (the last two only with --layers / --articulate-deg)
_INTENSITY = {
    "CT": (-1000.0, 40.0, -100.0, 480.0, 520.0, 560.0, 560.0, 60.0, 900.0),
    "T1w": (0.0, 300.0, 850.0, 640.0, 700.0, 660.0, 660.0, 190.0, 720.0),
    "T2w": (0.0, 380.0, 720.0, 560.0, 600.0, 580.0, 580.0, 230.0, 610.0),
}
_NOISE = {"CT": 25.0, "T1w": 18.0, "T2w": 18.0}


# ----------------------------------------------------------------- anatomy
def rotation_matrix(axis: Sequence[float], degrees: float) -> np.ndarray:
    """3x3 rotation about ``axis`` (Rodrigues).

    >>> np.round(rotation_matrix([0, 0, 1], 90) @ [1, 0, 0], 6).tolist()
    [0.0, 1.0, 0.0]
    """
    axis = np.asarray(axis, float)
    axis = axis / np.linalg.norm(axis)
    t = np.deg2rad(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * (k @ k)



# ----------------------------------------------------------------- muscle and femurs
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
    centre = np.mean(np.asarray(FEMUR_HEADS, float), axis=0)
    m = np.eye(4)
    r = rotation_matrix([1.0, 0.0, 0.0], degrees)
    m[:3, :3] = r
    m[:3, 3] = centre - r @ centre
    return m



@dataclass
class Anatomy:
    """A subject's anatomy in world mm (RAS+), with per-subject variation."""

    scale: float = 1.0
    shift: np.ndarray = field(default_factory=lambda: np.zeros(3))
    # world(MRI) = R @ (p - centre) + centre + t : where the anatomy sits in the MRI session
    pose: np.ndarray = field(default_factory=lambda: np.eye(4))
    #: a muscle wall, paraspinal and psoas muscles inside the fat layer
    muscle: bool = False
    #: femurs, posed with the soft tissue by this 4x4 (anatomy mm) relative to the pelvis; None: no femurs
    femur_flex: np.ndarray | None = None

    def classes(self, world: np.ndarray) -> np.ndarray:
        """Tissue class per world point (N, 3): 0 air, 1 body, 2 fat, 3+i structure i, 7 muscle, 8 femur."""
        world = np.asarray(world, np.float32)
        return self.classes_xyz(world[:, 0], world[:, 1], world[:, 2])

    def classes_xyz(self, wx: np.ndarray, wy: np.ndarray, wz: np.ndarray) -> np.ndarray:
        """Like :meth:`classes` for coordinate arrays of any (equal) shape.

        Each structure is evaluated only inside its bounding box, which keeps a
        full-size CT fast to render.
        """
        inv = np.linalg.inv(self.pose)
        if not np.allclose(self.pose, np.eye(4)):
            wx, wy, wz = (inv[c, 0] * wx + inv[c, 1] * wy + inv[c, 2] * wz + inv[c, 3] for c in range(3))
        x = (wx - self.shift[0]) / self.scale
        y = (wy - self.shift[1]) / self.scale
        z = (wz - self.shift[2]) / self.scale
        out = np.zeros(np.shape(x), np.uint8)
        sx, sy, sz = x, y, z  # soft tissue (and femurs): moved by femur_flex relative to the pelvis
        if self.femur_flex is not None:
            sx, sy, sz = inverse_points(self.femur_flex, x, y, z)
        body = ((sx / 80.0) ** 2 + ((sy + 5.0) / 60.0) ** 2 <= 1.0) & (np.abs(sz) <= 200)
        out[body] = 2
        out[body & ((sx / 72.0) ** 2 + ((sy + 5.0) / 52.0) ** 2 <= 1.0)] = 1
        if self.muscle:
            paint_muscle(out, sx, sy, sz)
        if self.femur_flex is not None:
            paint_femurs(out, sx, sy, sz)
        for i, (centre, radius, inside) in enumerate(_STRUCTURE_SHAPES):
            near = ((np.abs(x - centre[0]) <= radius) & (np.abs(y - centre[1]) <= radius)
                    & (np.abs(z - centre[2]) <= radius))
            if not near.any():
                continue
            pts = np.stack([x[near], y[near], z[near]], axis=-1)
            hit = np.zeros(np.shape(x), bool)
            hit[near] = inside(pts)
            out[hit] = 3 + i
        return out

    def labels(self, world: np.ndarray) -> np.ndarray:
        """Structure index per point: 0 background, i+1 for STRUCTURES[i]."""
        return structure_labels(self.classes(world))


def structure_labels(cls: np.ndarray) -> np.ndarray:
    """Tissue classes to structure indices (muscle and femur are not labelled).

    >>> structure_labels(np.array([0, 1, 2, 3, 6, 7, 8])).tolist()
    [0, 0, 0, 1, 4, 0, 0]
    """
    return np.where((cls >= 3) & (cls < 3 + len(STRUCTURES)), cls - 2, 0).astype(np.uint8)


def _sacrum(p: np.ndarray) -> np.ndarray:
    """Tapered ellipsoid tilted 25 degrees about the left-right axis."""
    q = (p - np.array([0.0, -30.0, -10.0])) @ rotation_matrix([1, 0, 0], 25.0)
    taper = 0.55 + 0.45 * np.clip((q[:, 2] / 42.0 + 1) / 2, 0, 1)
    return (q[:, 0] / (40.0 * taper)) ** 2 + (q[:, 1] / 13.0) ** 2 + (q[:, 2] / 42.0) ** 2 <= 1.0


def _l5(p: np.ndarray) -> np.ndarray:
    """Elliptic cylinder (vertebral body) above the sacrum."""
    return (((p[:, 0] / 21.0) ** 2 + ((p[:, 1] + 22.0) / 15.0) ** 2) <= 1.0) & (np.abs(p[:, 2] - 52.0) <= 12.0)


def _hip(sign: float):
    """Ellipsoid hip bone: ``sign=+1`` on the subject's right (+x in RAS+), -1 on the left."""
    rz = rotation_matrix([0, 0, 1], sign * 30.0)

    def inside(p: np.ndarray) -> np.ndarray:
        h = (p - np.array([sign * 58.0, -18.0, 2.0])) @ rz
        return (h[:, 0] / 10.0) ** 2 + (h[:, 1] / 26.0) ** 2 + (h[:, 2] / 36.0) ** 2 <= 1.0

    return inside


#: (centre, bounding half-width in mm, membership test) per structure, in STRUCTURES order.
_STRUCTURE_SHAPES = (
    ((0.0, -30.0, -10.0), 46.0, _sacrum),
    ((0.0, -22.0, 52.0), 26.0, _l5),
    ((-58.0, -18.0, 2.0), 40.0, _hip(-1.0)),  # hip_left: RAS+ x grows towards the subject's right
    ((58.0, -18.0, 2.0), 40.0, _hip(1.0)),  # hip_right
)


def grid_points(grid: Grid) -> np.ndarray:
    """World coordinates of every voxel centre, (N, 3) float32, C order."""
    return np.stack([c.ravel() for c in grid_coordinates(grid)], axis=-1)


def grid_coordinates(grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World x, y, z of every voxel centre as three arrays of the grid's shape
    (built by broadcasting, without an (N, 3) index array)."""
    i, j, k = (np.arange(n, dtype=np.float32) for n in grid.shape)
    a = grid.affine.astype(np.float32)
    return tuple(a[c, 0] * i[:, None, None] + a[c, 1] * j[None, :, None] + a[c, 2] * k[None, None, :] + a[c, 3]
                 for c in range(3))


def make_affine(directions: np.ndarray, spacing: Sequence[float], shape: Sequence[int],
                centre: Sequence[float]) -> np.ndarray:
    """Affine whose voxel axes point along ``directions`` columns, centred on ``centre``."""
    a = np.eye(4)
    a[:3, :3] = np.asarray(directions, float) * np.asarray(spacing, float)
    mid = (np.asarray(shape, float) - 1) / 2
    a[:3, 3] = np.asarray(centre, float) - a[:3, :3] @ mid
    return a


def phantom_grids(index: int, ct_spacing: float = 1.0) -> dict[str, Grid]:
    """The CT, T2w (sagittal) and T1w (oblique axial) grids of subject ``index``."""
    lps = index % 2 == 1
    ct_dirs = np.diag([-1.0, -1.0, 1.0]) if lps else np.eye(3)
    fov = np.array([180.0, 140.0, 150.0])
    ct_shape = tuple(int(round(f / ct_spacing)) for f in fov)
    ct = Grid(ct_shape, make_affine(ct_dirs, [ct_spacing] * 3, ct_shape, [0.27, -5.31, 5.18]))
    # sagittal T2w: axes A, S, then slices right-to-left (ASL), 2 x 2 x 4 mm
    sag_dirs = np.array([[0, 0, -1], [1, 0, 0], [0, 1, 0]], float)
    t2_shape = (60, 70, 24)
    t2 = Grid(t2_shape, make_affine(sag_dirs, [2.0, 2.0, 4.0], t2_shape, [0.0, -12.0, 2.0]))
    # oblique axial T1w: 12 degrees about left-right, LPS for odd subjects, 2.5 x 2.5 x 4 mm
    ax_dirs = rotation_matrix([1, 0, 0], 12.0 if index % 3 else -8.0) @ (
        np.diag([-1.0, -1.0, 1.0]) if lps else np.eye(3))
    t1_shape = (72, 56, 34)
    t1 = Grid(t1_shape, make_affine(ax_dirs, [2.5, 2.5, 4.0], t1_shape, [0.0, -8.0, 4.0]))
    return {"CT": ct, "T2w": t2, "T1w": t1}


def render(anatomy: Anatomy, grid: Grid, modality: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Image and structure labels of ``anatomy`` on ``grid``."""
    cls = anatomy.classes_xyz(*grid_coordinates(grid))
    values = np.asarray(_INTENSITY[modality], np.float32)
    img = values[cls]
    if modality != "CT":  # smooth multiplicative bias field, as MRI coils give
        g = np.indices(grid.shape, dtype=np.float32)
        sh = np.asarray(grid.shape, np.float32)[:, None, None, None]
        bias = 1.0 + 0.15 * np.sin(np.pi * g / sh).prod(axis=0) - 0.075
        img *= bias
    img += rng.normal(0.0, _NOISE[modality], size=img.shape).astype(np.float32)
    return img, structure_labels(cls)
