"""SynthRAD2023 ``Task1/pelvis/1PA00N/{ct,mr,mask}.nii.gz`` + overview ``.xlsx``
(or the SynthRAD2025 ``.mha`` variant, ``Task1/AB/1ABA00N``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core.atomic import atomic_path
from .common import subject, write_mha, write_nifti

NAME = "synthrad2023"


def write(out, subjects: int = 2, seed: int = 0, variant: int = 2023) -> Path:
    """MR resampled onto the CT grid (as published), body mask, overview."""
    root = Path(out)
    region, code, ext = ("pelvis", "P", ".nii.gz") if variant == 2023 else ("AB", "AB", ".mha")
    writer = write_nifti if ext == ".nii.gz" else write_mha
    notes = []
    for i in range(subjects):
        pid = f"1{code}A{i + 1:03d}"
        folder = root / "Task1" / region / pid
        ct, labels, grid = subject(i, seed, "CT")
        contrast = "T1w" if i % 2 == 0 else "T2w"
        mr, _, _ = subject(i, seed, contrast, grid)
        body = (ct > -500).astype(np.uint8)
        writer(ct, grid.affine, folder / f"ct{ext}")
        writer(mr, grid.affine, folder / f"mr{ext}")
        writer(body, grid.affine, folder / f"mask{ext}")
        notes.append((pid, "T1 GRE" if contrast == "T1w" else "T2 FSE"))
    if variant == 2023:
        _overview(root / "Task1" / region / "overview" / f"1_{region}_train.xlsx", notes)
    return root


def _overview(path: Path, notes) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "MR"
    ws.append(["ID", "Manufacturer", "note"])
    for pid, note in notes:
        ws.append([pid, "phantom", note])
    with atomic_path(path) as tmp:
        wb.save(str(tmp))
