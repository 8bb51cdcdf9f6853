"""The clot workflow's input: ``DL_vol_files/binary/CS<n>_CTA_Binary.npy`` and
``CS<n>_NCCT_Reg_Binary.npy`` (a CT angiography and the plain CT registered onto it: int16 CT
numbers of a region around the circle of Willis), and ``DL_seg_files/binary/CS<n>_seg_corrected_binary.npy``
(the clot, 0/1). Bare arrays, no geometry: voxels are 2 mm, axes i, j, k along right, anterior,
superior (the grid a user states with ``--spacing 2 2 2``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core.atomic import atomic_path
from ...core.nifti import Grid
from ..anatomy import make_affine
from ..head import CLASS, head_classes, head_of, render_ct

NAME = "clotseg"
SHAPE = (64, 48, 24)
SPACING = 2.0


def roi_grid() -> Grid:
    """The region around the circle of Willis the arrays hold (head mm, RAS)."""
    return Grid(SHAPE, make_affine(np.eye(3), [SPACING] * 3, SHAPE, [-1.0, 15.0, -41.0]))


def case_arrays(index: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(CTA, NCCT, clot mask) of case ``index``."""
    head = head_of(index, seed, clot=True)
    classes = head_classes(head, roi_grid())
    rng = np.random.default_rng([seed, index, 9])
    return (render_ct(classes, rng, angiography=True), render_ct(classes, rng),
            (classes == CLASS["clot"]).astype(np.uint8))


def _save(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array)


def write(out, subjects: int = 5, seed: int = 0) -> Path:
    root = Path(out)
    for i in range(subjects):
        cta, ncct, clot = case_arrays(i, seed)
        case = f"CS{i + 1}"
        _save(root / "DL_vol_files" / "binary" / f"{case}_CTA_Binary.npy", cta)
        _save(root / "DL_vol_files" / "binary" / f"{case}_NCCT_Reg_Binary.npy", ncct)
        _save(root / "DL_seg_files" / "binary" / f"{case}_seg_corrected_binary.npy", clot)
    return root
