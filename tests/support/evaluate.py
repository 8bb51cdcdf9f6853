"""Small label maps for the evaluate tests: anisotropic and oblique grids, several classes, empty classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from totalseg_bids.core.nifti import save_mask

SHAPE = (36, 32, 20)
SPACING = (0.8, 1.1, 2.5)


def rotation(deg_z: float, deg_x: float) -> np.ndarray:
    """A rotation about z then x (an oblique acquisition)."""
    z, x = np.radians(deg_z), np.radians(deg_x)
    rz = np.array([[np.cos(z), -np.sin(z), 0], [np.sin(z), np.cos(z), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(x), -np.sin(x)], [0, np.sin(x), np.cos(x)]])
    return rx @ rz


def grid_affine(kind: str, spacing=SPACING) -> np.ndarray:
    """``anisotropic``: axis-aligned; ``oblique``: rotated 25 deg about z and 10 deg about x, LPS-like flips."""
    affine = np.eye(4)
    linear = np.diag(spacing)
    if kind == "oblique":
        linear = rotation(25, 10) @ np.diag([-1, -1, 1]) @ linear
    affine[:3, :3] = linear
    affine[:3, 3] = (-14.0, 22.5, -30.0)
    return affine


def ellipsoid(shape, centre, radii) -> np.ndarray:
    grid = np.indices(shape, dtype=np.float32)
    return sum(((grid[i] - centre[i]) / radii[i]) ** 2 for i in range(3)) <= 1.0


def label_pair(seed: int = 0, shape=SHAPE) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, reference), three classes: 1 overlaps imperfectly (with a stray false positive),
    2 only in the reference (missed), 3 only in the prediction (hallucinated). Class 1 touches the array edge."""
    rng = np.random.default_rng(seed)
    ref = np.zeros(shape, np.uint8)
    pred = np.zeros(shape, np.uint8)
    ref[ellipsoid(shape, (16, 15, 9), (11, 9, 6))] = 1
    ref[:3, 12:18, 8:11] = 1  # at the array edge
    shift = rng.uniform(-1.5, 1.5, 3)
    pred[ellipsoid(shape, (16 + shift[0], 15 + shift[1], 9 + shift[2] / 2), (10, 10, 6))] = 1
    pred[30:33, 3:6, 2:4] = 1  # a stray blob far from the reference
    ref[ellipsoid(shape, (28, 26, 15), (3, 3, 2))] = 2
    pred[ellipsoid(shape, (5, 27, 4), (2, 3, 2))] = 3
    return pred, ref


def write_pair(folder: Path, name: str, pred: np.ndarray, ref: np.ndarray, affine: np.ndarray,
               ref_affine: np.ndarray | None = None) -> tuple[Path, Path]:
    """``folder/pred/<name>`` and ``folder/ref/<name>``, nnU-Net's folder layout."""
    p = save_mask(pred, affine, folder / "pred" / name)
    r = save_mask(ref, affine if ref_affine is None else ref_affine, folder / "ref" / name)
    return p, r
