"""One item: read its source, write its BIDS file and sidecar atomically (skipped when already complete)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from ..core.atomic import atomic_write_json, make_parent
from ..core.bids import sidecar_path
from ..core.derivatives import generated_by, write_dseg_tsv
from ..core.errors import GeometryError, InputError
from ..core.nifti import save_image, save_mask
from .arrays import SLICE_EXTS, affine_from, binarise, read_array, read_slice
from .dcm2niix_run import convert_series
from .geometry import corner_world, nifti_grid, read_volume
from .plan import Item
from .rtstruct import convert_rtstruct

log = logging.getLogger(__name__)

#: a label grid this close to its image's (mm at the corners) is put onto the image grid
SNAP_TOLERANCE_MM = 2.0


def is_done(target: Path) -> bool:
    """Complete when the image and its sidecar (written last) exist."""
    return target.is_file() and target.stat().st_size > 0 and sidecar_path(target).is_file()


def _label_affine(item: Item, data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, str | None]:
    """The affine a label is written with: its image's when the grids differ
    only slightly (a publisher's qform/sform drift), else an error."""
    if item.reference_source is None:
        return affine, None
    ref_shape, ref_affine = _reference_grid(item)
    if tuple(ref_shape[:3]) != tuple(data.shape[:3]):
        raise GeometryError(f"mask shape {tuple(data.shape)} fits no image (image {item.reference_source} "
                            f"has {tuple(ref_shape)})", item.source,
                            "pair the mask with the image it was drawn on")
    diff = float(np.abs(corner_world(data.shape, affine) - corner_world(data.shape, ref_affine)).max())
    if diff == 0.0:
        return affine, None
    if diff > SNAP_TOLERANCE_MM:
        raise GeometryError(f"mask lies {diff:.2f} mm away from its image {item.reference_source}",
                            item.source, "pair the mask with the image it was drawn on")
    note = f"mask grid moved {diff:.3f} mm onto the image grid"
    log.info("%s: %s", item.source, note)
    return ref_affine, note


def _reference_grid(item: Item) -> tuple[tuple[int, ...], np.ndarray]:
    """Shape and affine of a label's image, from its header (or, for arrays and slice stacks,
    the array's shape or first slice and the grid the user gave)."""
    grid = item.sidecar.get("grid")
    ref = str(item.reference_source)
    if grid is None or not ref.lower().endswith((".npy", *SLICE_EXTS)):
        if ref.lower().endswith((".nii", ".nii.gz")):
            return nifti_grid(ref)
        data, affine, _ = read_volume(ref)
        return data.shape, affine
    affine = shifted(affine_from(grid["spacing"], grid["orientation"]), grid)
    if ref.lower().endswith(".npy"):
        return tuple(np.load(ref, mmap_mode="r").shape), _npy_affine(ref, affine)
    first = read_slice(ref)
    return (first.shape[1], first.shape[0], len(grid.get("reference_stack") or [ref])), affine


def shifted(affine: np.ndarray, grid: dict) -> np.ndarray:
    """The affine of a stack whose first slice is slice ``k_offset`` of its scan (a 2D slice that keeps
    its index): moved along k by that many slices.

    >>> shifted(np.diag([1.0, 1.0, 2.5, 1.0]), {"k_offset": 4})[2, 3]
    np.float64(10.0)
    """
    out = np.array(affine, float)
    out[:3, 3] += out[:3, 2] * float(grid.get("k_offset", 0))
    return out


def _npy_affine(path: str, default: np.ndarray) -> np.ndarray:
    """The ``"affine"`` of a ``<name>.json`` beside an ``.npy``, else ``default``."""
    side = Path(path).with_suffix(".json")
    if side.is_file():
        meta = json.loads(side.read_text(encoding="utf-8"))
        if "affine" in meta:
            return np.asarray(meta["affine"], float)
    return default


def convert_item(job: tuple[Item, str, str, bool]) -> str | dict:
    """Convert one item into ``out``; return ``converted``/``skipped`` (resume), or for a DICOM
    series ``{"status": "converted", "warnings": [...]}`` with dcm2niix's warnings."""
    item, out, date, overwrite = job
    target = Path(out) / item.target
    if is_done(target) and not overwrite:
        return "skipped"
    if item.kind == "dicom":
        make_parent(target)
        warnings = convert_series(item, target)
        return {"status": "converted", "warnings": warnings} if warnings else "converted"
    if item.kind == "rtstruct":
        return convert_rtstruct(item, Path(out), date)
    data, affine, header = _read(item)
    tool = generated_by("totalseg_bids.bidsify", Date=date)
    if item.kind == "image":
        save_image(np.asarray(data), affine, target, like=header)
        side = {**{k: v for k, v in item.sidecar.items() if k != "grid"},
                "Sources": [_source_uri(s) for s in (item.source, *item.extra_sources)]}
        atomic_write_json(sidecar_path(target), side)
        return "converted"
    labels = _combine(item, data, affine) if item.kind == "combine" else np.asarray(data)
    note: dict = {}
    if item.binarise:
        labels, note = binarise(labels, item.threshold, item.source)
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.allclose(labels, np.rint(labels)):
            raise InputError("mask has non-integer values", item.source, "pass an integer label map")
        labels = np.rint(labels)
    if labels.min() < 0:
        raise InputError("mask has negative values", item.source, "pass a label map with values >= 0")
    labels = labels.astype(np.int64)
    if item.select is not None:
        labels = (labels == item.select).astype(np.uint8)
    affine, moved = _label_affine(item, labels, affine)
    save_mask(labels, affine, target)
    if item.classes and item.select is None:
        write_dseg_tsv(target, item.classes)
    side = {"SpatialReference": "orig", "Sources": [f"bids:raw:{item.reference}"] if item.reference else [],
            "SourceFiles": [_source_uri(s) for s in (item.source, *item.extra_sources)],
            "GeneratedBy": [tool], **{k: v for k, v in item.sidecar.items() if k != "grid"}, **note}
    if moved:
        side["GeometryCorrection"] = moved
    atomic_write_json(sidecar_path(target), side)
    if note.get("ValuesBetweenExtremes"):
        return {"status": "converted", "warnings": [
            f"{note['ValuesBetweenExtremes']} mask voxels lie between the two extremes (lossy compression); "
            f"thresholded at {note['MaskThreshold']:g} (--mask-threshold sets another)"]}
    return "converted"


def _source_uri(path: str) -> str:
    """The original file, as an absolute ``file:`` URI (outside the dataset)."""
    return Path(path).resolve().as_uri()


def _combine(item: Item, data: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """One dseg from per-class binary masks on one grid (class id from ``classes``)."""
    ids = {name: i for i, name in item.classes.items()}
    out = np.zeros(data.shape[:3], np.uint16 if max(ids.values()) > 255 else np.uint8)
    for path in (item.source, *item.extra_sources):
        mask, mask_affine, _ = read_volume(path) if path != item.source else (data, affine, None)
        if mask.shape[:3] != out.shape or not np.allclose(mask_affine, affine, atol=1e-4):
            raise GeometryError("class mask is on another grid than the first class", path,
                                "resample the masks onto the CT grid")
        out[np.asarray(mask) > 0] = ids[Path(path).name[:-7]]
    return out


def _read(item: Item):
    """A source's data and affine; arrays and 2D stacks take the grid the user gave (a mask stack's
    ``slots`` put each file at its image slice, empty slots are empty slices)."""
    grid = item.sidecar.get("grid")
    if grid is None:
        return read_volume(item.source)
    if grid.get("slots") or item.source.lower().endswith((".npy", *SLICE_EXTS)):
        paths = grid.get("slots") or [item.source, *item.extra_sources]
        data, affine = read_array(paths, grid["spacing"], grid["orientation"],
                                  shape_from=grid.get("reference_stack") or ())
        return data, shifted(affine, grid), None
    return read_volume(item.source)
