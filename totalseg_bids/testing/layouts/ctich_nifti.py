"""CT-ICH as PhysioNet releases it (1.3.x): ``ct_scans/<patient>.nii`` (CT numbers, the slices of
the jpg release), ``masks/<patient>.nii`` (0/1, every slice), ``hemorrhage_diagnosis_raw_ct.csv``
and ``patient_demographics.csv``; the same phantom patients as :mod:`.ctich`."""

from __future__ import annotations

from pathlib import Path

from ...core.atomic import atomic_write_text
from .common import write_nifti
from .ctich import FIRST_PATIENT, csv_text, demographics, diagnosis_rows, patient_scan, slice_grid

NAME = "ctich-nifti"


def write(out, subjects: int = 3, seed: int = 0) -> Path:
    root = Path(out)
    rows = []
    affine = slice_grid().affine
    for i in range(subjects):
        number = FIRST_PATIENT + i
        ct, mask = patient_scan(i, seed)
        write_nifti(ct, affine, root / "ct_scans" / f"{number:03d}.nii")
        write_nifti(mask, affine, root / "masks" / f"{number:03d}.nii")
        rows += diagnosis_rows(number, mask)
    atomic_write_text(root / "hemorrhage_diagnosis_raw_ct.csv", csv_text(rows))
    atomic_write_text(root / "patient_demographics.csv", csv_text(demographics(subjects)))
    return root
