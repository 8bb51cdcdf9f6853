"""``case_mapping.tsv``/``.json``: every case's split, source image(s) and label, and its nnU-Net files,
so results map back to BIDS."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..core.atomic import atomic_write_json, atomic_write_text
from ..core.errors import InputError
from .case import CaseRecord

MAPPING_TSV = "case_mapping.tsv"
MAPPING_JSON = "case_mapping.json"


def write_mapping(folder: Path, records: Sequence[CaseRecord], datasets_path: Path, nchan: int,
                  val_fold: Mapping[str, int] | None = None) -> None:
    """``case_mapping.tsv`` and ``.json``: per case its split, the fold that validates it
    (``val_fold``; empty for TESTING), source files, nnU-Net files and the corrections made."""
    val_fold = val_fold or {}
    fold_of = {r.case_id: val_fold.get(r.case_id) for r in records}
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n")
    writer.writerow(["case_id", "split", *[f"image_{c:04d}" for c in range(nchan)], "label",
                     *[f"nnunet_image_{c:04d}" for c in range(nchan)], "nnunet_label", "actions", "val_fold"])
    for r in records:
        fold = fold_of[r.case_id]
        writer.writerow([r.case_id, r.split, *r.images, r.label or "", *r.nnunet_images, r.nnunet_label or "",
                         "; ".join(r.actions), "" if fold is None else fold])
    atomic_write_text(folder / MAPPING_TSV, buf.getvalue())
    atomic_write_json(folder / MAPPING_JSON, {
        "DATASETS_PATH": str(datasets_path),
        "cases": [{"case_id": r.case_id, "split": r.split, "images": r.images, "label": r.label,
                   "nnunet_images": r.nnunet_images, "nnunet_label": r.nnunet_label, "actions": r.actions,
                   "val_fold": fold_of[r.case_id]} for r in records]})


def read_mapping(folder: str | Path) -> list[dict]:
    """The cases of a converted dataset, from ``case_mapping.json``: id, split,
    source image(s) and label, and their nnU-Net file names."""
    path = Path(folder) / MAPPING_JSON
    try:
        return json.loads(path.read_text(encoding="utf-8"))["cases"]
    except (OSError, ValueError, KeyError):
        raise InputError("no readable case mapping", path, "convert the dataset with this module") from None
