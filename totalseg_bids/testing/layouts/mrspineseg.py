"""MRSpineSeg ``train/MR/Case<N>.nii.gz`` + ``train/Mask/mask_case<N>.nii.gz``.

Labels follow the published table (1 sacrum, 2 L5); each mask's q/s-form is
shifted by a fraction of a millimetre from its image's, as in the release.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import subject, write_nifti

NAME = "mrspineseg"


def write(out, subjects: int = 2, seed: int = 0) -> Path:
    root = Path(out) / "train"
    for i in range(subjects):
        img, labels, grid = subject(i, seed, "T2w")
        mask = np.zeros_like(labels)
        mask[labels == 1] = 1  # sacrum
        mask[labels == 2] = 2  # L5
        write_nifti(img, grid.affine, root / "MR" / f"Case{i + 1}.nii.gz")
        drift = grid.affine.copy()
        drift[:3, 3] += 0.3
        write_nifti(mask, drift, root / "Mask" / f"mask_case{i + 1}.nii.gz", qform=drift)
    return Path(out)
