"""A chest phantom in world millimetres: body, both lungs, the heart between them and the spine.

The lung workflow's layout (2D slices and 3D volumes with lung masks) is written from it. Like
:mod:`.anatomy`, this module imports nothing else of :mod:`totalseg_bids.testing`.
"""

from __future__ import annotations

import numpy as np

from ..core.nifti import Grid
from .anatomy import grid_coordinates

#: classes: 0 air, 1 body, 2 lung, 3 heart, 4 spine; CT numbers (HU) of each
LUNG, HEART, SPINE = 2, 3, 4
_HU = (-1000.0, 40.0, -850.0, 45.0, 700.0)
NOISE_HU = 15.0


def chest_classes(grid: Grid, scale: float = 1.0) -> np.ndarray:
    """Tissue class per voxel of ``grid`` for a chest of relative size ``scale``."""
    x, y, z = (c / scale for c in grid_coordinates(grid))
    out = np.zeros(x.shape, np.uint8)
    out[((x / 150) ** 2 + ((y + 10) / 100) ** 2 <= 1) & (np.abs(z) <= 170)] = 1
    for side in (-1.0, 1.0):
        out[((x - side * 70) / 48) ** 2 + ((y - 5) / 62) ** 2 + ((z - 20) / 120) ** 2 <= 1] = LUNG
    out[((x + 10) / 50) ** 2 + ((y - 30) / 45) ** 2 + ((z + 20) / 45) ** 2 <= 1] = HEART
    out[(x ** 2 + (y + 70) ** 2 <= 15 ** 2) & (np.abs(z) <= 170)] = SPINE
    return out


def chest_ct(classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """int16 CT numbers of a class map, with noise."""
    img = np.asarray(_HU, np.float32)[classes] + rng.normal(0.0, NOISE_HU, classes.shape).astype(np.float32)
    return np.clip(np.rint(img), -1024, 3071).astype(np.int16)
