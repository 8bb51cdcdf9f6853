"""The gland workflow's input: per patient a full-body CT exported as DICOM (``<patient>_psma/CT/``)
and an RT Structure Set (``<patient>_psma/RTSTRUCT/RS1.dcm``) outlining the parotid,
submandibular and lacrimal glands on the CT slices.

The CT holds the phantom pelvis (:mod:`..anatomy`) below a trunk and a neck, and the phantom
head (:mod:`..head`) on top, so the gland recipe's crop to the TotalSegmentator skull has
something to cut away. Voxels are 2 x 2 x 3 mm (the glands must survive the recipe's 3x reduction);
odd patients are stored LPS.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core.nifti import Grid
from ..anatomy import make_affine, render
from ..head import gland_labels, head_classes, head_of, render_ct
from .common import anatomy_of
from .dicom import write_series
from .goldatlas import UID, write_rtstruct

NAME = "glands"
SHAPE = (96, 96, 190)
SPACING = (2.0, 2.0, 3.0)
#: where the head's centre sits above the pelvis (world mm); the neck joins the trunk at z = 200
HEAD_Z = 380.0
#: ROI names as a planning system exports them -> gland label in GLANDS order
ROIS = {"Parotid_L": 1, "Parotid_R": 2, "Submandibular_L": 3, "Submandibular_R": 4, "Lacrimal_L": 5,
        "Lacrimal_R": 6}


def body_grid(index: int) -> Grid:
    """The full-body CT grid of patient ``index`` (LPS for odd patients)."""
    dirs = np.diag([-1.0, -1.0, 1.0]) if index % 2 else np.eye(3)
    return Grid(SHAPE, make_affine(dirs, SPACING, SHAPE, [0.0, 21.0, 213.0]))


def body_ct(index: int, seed: int) -> tuple[np.ndarray, np.ndarray, Grid]:
    """(int16 CT, gland labels 1..6, grid) of patient ``index``: pelvis, trunk, neck and head."""
    grid = body_grid(index)
    anatomy, rng = anatomy_of(index, seed)
    pelvis, _ = render(anatomy, grid, "CT", rng)
    head = head_of(index, seed)
    head.centre = np.array([0.0, 0.0, HEAD_Z]) + np.append(anatomy.shift[:2], 0.0)
    head.neck_to = (200.0 - HEAD_Z) / head.scale
    classes = head_classes(head, grid)
    ct = np.where(classes > 0, render_ct(classes, rng), np.clip(np.rint(pelvis), -1024, 3071)).astype(np.int16)
    return ct, gland_labels(classes), grid


def write(out, subjects: int = 3, seed: int = 0) -> Path:
    """Per patient the CT series and the structure set of its glands."""
    root = Path(out)
    for i in range(subjects):
        pid = f"p{i + 1:03d}"
        folder = root / f"{pid}_psma"
        ct, glands, grid = body_ct(i, seed)
        study = f"{UID}.{seed}.7{i + 1}"
        tags = {"0010|0010": pid, "0010|0020": pid, "0020|000d": study, "0020|0052": f"{study}.99",
                "0008|0020": "20260101", "0008|0030": "120000", "0008|1030": "PSMA PET/CT",
                "0008|0070": "totalseg_bids phantom", "0008|0060": "CT", "0008|103e": "CT whole body",
                "0020|000e": f"{study}.1", "0020|0011": "2"}
        write_series(ct, grid.affine, folder / "CT", dict(tags))
        (folder / "RTSTRUCT").mkdir(parents=True, exist_ok=True)
        write_rtstruct(folder / "RTSTRUCT" / "RS1.dcm", glands, grid.affine, tags, f"{study}.5", ROIS)
    return root
