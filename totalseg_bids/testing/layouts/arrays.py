"""The grid of the layouts that lost the world geometry (2D slice stacks, ``.npy`` volumes):
axis-aligned RAS, 2 mm, as exported by workflows that keep only the voxels."""

from __future__ import annotations

import numpy as np

from ...core.nifti import Grid
from ..anatomy import make_affine

SPACING = (2.0, 2.0, 2.0)


def phantom_grid() -> Grid:
    """The one grid every array layout's phantoms are rendered on."""
    shape = (90, 70, 24)
    return Grid(shape, make_affine(np.eye(3), SPACING, shape, [0.0, -5.0, -10.0]))
