"""TotalSegmentator dataset ``s0000/ct.nii.gz`` + ``segmentations/<class>.nii.gz`` + ``meta.csv``."""

from __future__ import annotations

from pathlib import Path

from ...core.atomic import atomic_write_text
from ..anatomy import STRUCTURES
from .common import subject, write_nifti

NAME = "totalsegmentator"


def write(out, subjects: int = 2, seed: int = 0) -> Path:
    root = Path(out)
    lines = ["image_id;age;gender;institute;study_type;split"]
    for i in range(subjects):
        sid = f"s{i:04d}"
        ct, labels, grid = subject(i, seed, "CT")
        write_nifti(ct, grid.affine, root / sid / "ct.nii.gz")
        for k, name in enumerate(STRUCTURES):
            write_nifti((labels == k + 1).astype("uint8"), grid.affine, root / sid / "segmentations" / f"{name}.nii.gz")
        lines.append(f"{sid};{50 + i};{'mf'[i % 2]};A;ct pelvis;{'train' if i % 3 else 'test'}")
    atomic_write_text(root / "meta.csv", "\ufeff" + "\n".join(lines) + "\n")
    return root
