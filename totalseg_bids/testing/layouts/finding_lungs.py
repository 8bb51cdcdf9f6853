"""Kaggle's "Finding and Measuring Lungs in CT Data": ``2d_images/ID_<nnnn>_Z_<zzzz>.tif`` (one
axial slice each: CT numbers, int16; ``Z`` the slice's index in its scan), ``2d_masks/`` with the
same names (lungs 255, else 0), and 3D pairs ``3d_images/IMG_<nnnn>.nii.gz`` with
``MASK_<nnnn>.nii.gz`` (0/1).

Slices are 64 x 64 pixels of 5.5 mm (the release: 512 x 512), shown the radiological way (rows
anterior to posterior, columns from the patient's right to left); ``Z`` counts 2.5 mm steps
from 200 mm below the lungs' centre. ``subjects`` is the number of 3D pairs; there are five 2D
slices per pair, from other phantom chests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core.atomic import atomic_path
from ...core.nifti import Grid
from ..anatomy import make_affine
from ..chest import LUNG, chest_classes, chest_ct
from .common import write_nifti

NAME = "finding-lungs"
PIXEL_MM = 5.5
Z_STEP_MM, Z_ORIGIN_MM = 2.5, -200.0
SLICES_PER_VOLUME = 5
VOLUME_SHAPE = (64, 64, 24)
#: the 3D ids the release uses, then every 17th number
VOLUME_IDS = (2, 59, 78, 94)


def slice_grid(z_index: int) -> Grid:
    """The one-slice grid of a 2D image at index ``z_index`` (LPS: columns to the left, rows to the back)."""
    shape = (64, 64, 1)
    return Grid(shape, make_affine(np.diag([-1.0, -1.0, 1.0]), [PIXEL_MM, PIXEL_MM, Z_STEP_MM], shape,
                                   [0.0, -10.0, Z_ORIGIN_MM + Z_STEP_MM * z_index]))


def _tif(path: Path, picture: np.ndarray) -> None:
    import tifffile

    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, np.ascontiguousarray(picture))


def write(out, subjects: int = 2, seed: int = 0) -> Path:
    root = Path(out)
    rng = np.random.default_rng([seed, 4])
    for n in range(SLICES_PER_VOLUME * subjects):
        z_index = int(rng.integers(60, 130))
        classes = chest_classes(slice_grid(z_index), scale=float(rng.uniform(0.92, 1.08)))
        name = f"ID_{n:04d}_Z_{z_index:04d}.tif"
        _tif(root / "2d_images" / name, chest_ct(classes, rng)[:, :, 0].T)
        _tif(root / "2d_masks" / name, ((classes[:, :, 0] == LUNG) * 255).astype(np.uint8).T)
    grid = Grid(VOLUME_SHAPE, make_affine(np.diag([-1.0, -1.0, 1.0]), [PIXEL_MM, PIXEL_MM, 10.0], VOLUME_SHAPE,
                                          [0.0, -10.0, 10.0]))
    for i in range(subjects):
        number = VOLUME_IDS[i] if i < len(VOLUME_IDS) else VOLUME_IDS[-1] + 17 * (i - len(VOLUME_IDS) + 1)
        classes = chest_classes(grid, scale=float(rng.uniform(0.92, 1.08)))
        write_nifti(chest_ct(classes, rng), grid.affine, root / "3d_images" / f"IMG_{number:04d}.nii.gz")
        write_nifti((classes == LUNG).astype(np.uint8), grid.affine, root / "3d_images" / f"MASK_{number:04d}.nii.gz")
    return root
