"""A DICOM folder tree: per patient a CT series (LPS, axial) and an oblique MR
T2 series, written slice by slice with real ImagePositionPatient and
ImageOrientationPatient tags (SimpleITK's DICOM writer)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import LPS, oblique_grid, subject

NAME = "dicom"


def write_series(data: np.ndarray, affine: np.ndarray, folder: Path, tags: dict[str, str]) -> Path:
    """One series, one file per k-slice, geometry taken from the RAS+ ``affine``."""
    import SimpleITK as sitk

    m = LPS @ affine
    spacing = np.linalg.norm(m[:3, :3], axis=0)
    direction = m[:3, :3] / spacing
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = tags.pop("0020|000e")
    for k in range(data.shape[2]):
        sl = sitk.GetImageFromArray(np.ascontiguousarray(data[:, :, k].T[None]).astype(np.int16))
        pos = m[:3, :3] @ [0, 0, k] + m[:3, 3]
        sl.SetSpacing([float(spacing[0]), float(spacing[1]), float(spacing[2])])
        sl.SetOrigin(pos.tolist())
        sl.SetDirection(direction.ravel().tolist())
        for key, value in tags.items():
            sl.SetMetaData(key, value)
        sl.SetMetaData("0020|000e", series_uid)
        sl.SetMetaData("0020|0037", "\\".join(f"{v:.6f}" for v in (*direction[:, 0], *direction[:, 1])))
        sl.SetMetaData("0020|0032", "\\".join(f"{v:.6f}" for v in pos))
        sl.SetMetaData("0020|0013", str(k + 1))
        sl.SetMetaData("0018|0050", f"{spacing[2]:.6f}")
        sl.SetMetaData("0008|0018", f"{series_uid}.{k + 1}")
        writer = sitk.ImageFileWriter()
        writer.KeepOriginalImageUIDOn()
        writer.SetFileName(str(folder / f"IM{k + 1:04d}.dcm"))
        writer.Execute(sl)
    return folder


def write(out, subjects: int = 2, seed: int = 0) -> Path:
    root = Path(out)
    for i in range(subjects):
        pid = f"PAT{i + 1:02d}"
        ct, _, grid = subject(i, seed, "CT")
        base = {"0010|0010": pid, "0010|0020": pid, "0020|000d": f"1.2.826.0.1.3680043.8.498.{seed}.{i + 1}",
                "0008|0020": "20260101", "0008|0030": "120000", "0008|0021": "20260101", "0008|0031": "120000",
                "0008|0070": "totalseg_bids phantom"}
        write_series(ct, grid.affine, root / pid / "CT", {**base, "0008|0060": "CT", "0008|103e": "pelvis CT",
                     "0020|000e": f"1.2.826.0.1.3680043.8.498.{seed}.{i + 1}.1", "0020|0011": "1"})
        mgrid = oblique_grid(i)
        mr, _, _ = subject(i, seed, "T2w", mgrid)
        write_series(mr, mgrid.affine, root / pid / "MR_T2", {**base, "0008|0060": "MR", "0008|103e": "t2_tse_sag",
                     "0020|000e": f"1.2.826.0.1.3680043.8.498.{seed}.{i + 1}.2", "0020|0011": "2"})
    return root
