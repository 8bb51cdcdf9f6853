"""Statistics of a 2D slice export (``totalseg_bids.slices``): every slice is an image, as
MMSegmentation's dataset pages count them (class, pixel percentage, images containing it)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..core.errors import InputError
from .counts import CaseStats, count_classes

MANIFEST = "slices.tsv"
CLASSES = "classes.tsv"


def read_mask(path: Path) -> np.ndarray:
    """A slice mask as stored (PNG/TIFF through Pillow or tifffile, ``.npy``)."""
    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            return np.asarray(tifffile.imread(path))
        from PIL import Image

        with Image.open(path) as im:
            return np.asarray(im)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad input file
        raise InputError(f"cannot read the mask ({' '.join(str(exc).split())[:100]})", path,
                         "rerun totalseg_bids.slices") from None


def slice_rows(folder: Path) -> list[dict]:
    """The rows of an export's ``slices.tsv`` (one per slice)."""
    manifest = Path(folder) / MANIFEST
    if not manifest.is_file():
        raise InputError("no slices.tsv", manifest, "point --slices at the output folder of totalseg_bids.slices")
    with open(manifest, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if not rows or not {"file", "mask", "split", "subject"} <= set(rows[0]):
        raise InputError("slices.tsv lists no slices (or lacks file/mask/split/subject)", manifest,
                         "rerun totalseg_bids.slices")
    return rows


def class_names(folder: Path) -> dict[int, str]:
    """``{index: name}`` of the export's ``classes.tsv`` (background included)."""
    path = Path(folder) / CLASSES
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as fh:
        return {int(r["index"]): r["name"] for r in csv.DictReader(fh, delimiter="\t")}


def slice_stats(item: tuple[str, str, str, Path | None]) -> CaseStats:
    """One slice: its size, and its mask's pixel count per class (None without a mask)."""
    dataset, split, subject, mask_path = item
    counts, shape = None, (0, 0, 1)
    if mask_path is not None:
        mask = read_mask(mask_path)
        counts, shape = count_classes(mask), (int(mask.shape[0]), int(mask.shape[1]), 1)
    return CaseStats(dataset, split, subject, (1.0, 1.0, 1.0), shape, 0.0, counts)


def slice_items(folder: Path, rows: list[dict]) -> list[tuple[str, str, str, Path | None]]:
    """What :func:`slice_stats` reads for each row."""
    name = Path(folder).resolve().name
    return [(name, r["split"], r["subject"], Path(folder) / r["mask"] if r["mask"] else None) for r in rows]


def as_images(group: dict) -> dict:
    """A group of slices reported as images: pixel units, no volumes, spacings or shapes in mm."""
    group = {**group, "kind": "slices", "images": group["cases"]}
    group["classes"] = {k: {**v, "volume_ml": None} for k, v in group["classes"].items()}
    return group
