"""Shared helpers: phantom subjects and writing NIfTI/.mha files exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core.atomic import atomic_path
from ...core.nifti import Grid
from ..anatomy import Anatomy, make_affine, phantom_grids, render, rotation_matrix

LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def anatomy_of(index: int, seed: int) -> tuple[Anatomy, np.random.Generator]:
    """Phantom subject ``index``'s anatomy (the same in every layout and modality)
    and the generator its images draw their noise from."""
    rng = np.random.default_rng([seed, index, 7])
    return Anatomy(scale=float(rng.uniform(0.92, 1.08)), shift=rng.uniform(-4, 4, size=3)), rng


def subject(index: int, seed: int, modality: str, grid: Grid | None = None) -> tuple[np.ndarray, np.ndarray, Grid]:
    """(int16 image, structure labels, grid) of phantom subject ``index``."""
    anatomy, rng = anatomy_of(index, seed)
    grid = grid or phantom_grids(index, 2.0)["CT" if modality == "CT" else modality]
    img, labels = render(anatomy, grid, "CT" if modality == "CT" else modality, rng)
    lo = -1024 if modality == "CT" else 0
    return np.clip(np.rint(img), lo, 3071).astype(np.int16), labels, grid


def oblique_grid(index: int) -> Grid:
    """An oblique sagittal grid (20 degrees about two axes), LPS-like axes."""
    dirs = rotation_matrix([0, 0, 1], 20.0) @ rotation_matrix([0, 1, 0], 15.0) @ np.array(
        [[0, 0, -1], [-1, 0, 0], [0, -1, 0]], float)
    shape = (56, 64, 20)
    return Grid(shape, make_affine(dirs, [2.2, 2.0, 4.0], shape, [1.0, -14.0, 3.0 + index]))


def write_nifti(data: np.ndarray, affine: np.ndarray, path: Path, qform: np.ndarray | None = None) -> Path:
    """A NIfTI with sform ``affine`` and (optionally different) qform."""
    import nibabel as nib

    img = nib.Nifti1Image(data, affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine if qform is None else qform, code=1)
    with atomic_path(path) as tmp:
        img.to_filename(str(tmp))
    return path


def write_mha(data: np.ndarray, affine: np.ndarray, path: Path) -> Path:
    """An ITK ``.mha`` with the direction cosines, spacing and LPS origin of ``affine`` (RAS+)."""
    import SimpleITK as sitk

    m = LPS @ affine
    spacing = np.linalg.norm(m[:3, :3], axis=0)
    img = sitk.GetImageFromArray(np.ascontiguousarray(data.transpose(2, 1, 0)))
    img.SetSpacing(spacing.tolist())
    img.SetOrigin(m[:3, 3].tolist())
    img.SetDirection((m[:3, :3] / spacing).ravel().tolist())
    with atomic_path(path) as tmp:
        sitk.WriteImage(img, str(tmp))
    return path
