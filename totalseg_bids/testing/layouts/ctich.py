"""CT-ICH as its Kaggle mirror ships it: ``Patients_CT/<patient>/brain/<n>.jpg`` and
``bone/<n>.jpg`` (the brain and bone windows of slice ``n``, counted from 1), a mask
``brain/<n>_HGE_Seg.jpg`` only where the slice shows hemorrhage (JPEG: values near, not at,
0 and 255), ``hemorrhage_diagnosis.csv`` (one row per slice) and ``patient_demographics.csv``.

Slices are 64 x 64 pixels of 3.5 mm, 5 mm apart (the release: 650 x 650 jpgs of ~30 slices),
shown the radiological way: rows run anterior to posterior, columns from the patient's right
to left, slice 1 lowest. Even patients have an intraparenchymal hemorrhage.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from ...core.atomic import atomic_path, atomic_write_text
from ...core.nifti import Grid
from ..anatomy import make_affine
from ..head import CLASS, head_classes, head_of, render_ct

NAME = "ctich"
SHAPE = (64, 64, 28)
SPACING = (3.5, 3.5, 5.0)
#: the windows the release's jpgs were saved with (level, width), as its README gives them
WINDOWS = {"brain": (40.0, 120.0), "bone": (700.0, 3200.0)}
FIRST_PATIENT = 49
SUBTYPES = ("Intraventricular", "Intraparenchymal", "Subarachnoid", "Epidural", "Subdural")
JPEG_QUALITY = 75


def slice_grid() -> Grid:
    """The slices' grid: LPS (columns toward the patient's left, rows toward the back), slice 1 lowest."""
    return Grid(SHAPE, make_affine(np.diag([-1.0, -1.0, 1.0]), SPACING, SHAPE, [0.0, 5.0, 8.0]))


def patient_scan(index: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(int16 CT, hemorrhage mask) of patient ``index`` on :func:`slice_grid`."""
    head = head_of(index, seed, hemorrhage=index % 2 == 0)
    classes = head_classes(head, slice_grid())
    ct = render_ct(classes, np.random.default_rng([seed, index, 3]))
    return ct, (classes == CLASS["hemorrhage"]).astype(np.uint8)


def windowed(ct: np.ndarray, window: str) -> np.ndarray:
    """uint8 picture of CT numbers through a (level, width) window.

    >>> windowed(np.array([-20, 40, 100]), "brain").tolist()
    [0, 128, 255]
    """
    level, width = WINDOWS[window]
    return np.clip(np.rint((ct - (level - width / 2)) / width * 255), 0, 255).astype(np.uint8)


def jpeg(picture: np.ndarray) -> bytes:
    """A grayscale JPEG of a 2D uint8 picture (rows, columns)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(picture)).save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def _write_bytes(path: Path, payload: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)


def diagnosis_rows(number: int, mask: np.ndarray) -> list[dict]:
    """One row per slice (``SliceNumber`` from 1) of the per-slice diagnosis table."""
    rows = []
    for k in range(mask.shape[2]):
        bleed = bool(mask[:, :, k].any())
        rows.append({"PatientNumber": number, "SliceNumber": k + 1,
                     **{s: int(bleed and s == "Intraparenchymal") for s in SUBTYPES},
                     "No_Hemorrhage": int(not bleed), "Fracture_Yes_No": 0})
    return rows


def csv_text(rows: list[dict]) -> str:
    """Comma-separated table of ``rows`` (keys of the first row as the header)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def demographics(subjects: int) -> list[dict]:
    """The patients' age and gender, as ``patient_demographics.csv`` lists them."""
    return [{"Patient Number": FIRST_PATIENT + i, "Age (years)": 20 + 7 * i, "Gender": "Male" if i % 2 else "Female"}
            for i in range(subjects)]


def write(out, subjects: int = 3, seed: int = 0) -> Path:
    """The jpg layout: both windows of every slice, masks where there is hemorrhage, the two tables."""
    root = Path(out)
    rows = []
    for i in range(subjects):
        number = FIRST_PATIENT + i
        ct, mask = patient_scan(i, seed)
        folder = root / "Patients_CT" / f"{number:03d}"
        for k in range(ct.shape[2]):
            for window in WINDOWS:
                _write_bytes(folder / window / f"{k + 1}.jpg", jpeg(windowed(ct[:, :, k], window).T))
            if mask[:, :, k].any():
                _write_bytes(folder / "brain" / f"{k + 1}_HGE_Seg.jpg", jpeg((mask[:, :, k] * 255).T))
        rows += diagnosis_rows(number, mask)
    atomic_write_text(root / "hemorrhage_diagnosis.csv", csv_text(rows))
    atomic_write_text(root / "patient_demographics.csv", csv_text(demographics(subjects)))
    return root
