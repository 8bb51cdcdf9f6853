"""Volumes without world geometry: ``.npy`` arrays and stacks of 2D slices (some slices of a mask
stack may be missing: they are empty), and masks stored with lossy or 0/255 values."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..core.errors import GeometryError, InputError, UsageError

#: Extensions of 2D slice files; ``.tif`` is read with tifffile (16-bit and float TIFFs), the others with Pillow.
SLICE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def affine_from(spacing, orientation: str) -> np.ndarray:
    """Affine of axis-aligned voxels: ``orientation`` names where i, j, k point.

    >>> affine_from([1, 2, 3], "LPS").diagonal().tolist()
    [-1.0, -2.0, 3.0, 1.0]
    """
    axes = {"R": (0, 1), "L": (0, -1), "A": (1, 1), "P": (1, -1), "S": (2, 1), "I": (2, -1)}
    if len(orientation) != 3 or sorted(axes[c][0] for c in orientation.upper() if c in axes) != [0, 1, 2]:
        raise UsageError(f"bad --orientation {orientation!r}", None, "use three letters such as RAS or LPS")
    a = np.eye(4)
    a[:3, :3] = 0
    for col, c in enumerate(orientation.upper()):
        row, sign = axes[c]
        a[row, col] = sign * float(spacing[col])
    return a


def read_slice(path: str | Path) -> np.ndarray:
    """One 2D slice as stored (rows, columns); the first channel of an RGB file."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            data = np.asarray(tifffile.imread(path))
        else:
            from PIL import Image

            with Image.open(path) as im:
                data = np.asarray(im)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad input file
        raise InputError(f"cannot read the slice ({' '.join(str(exc).split())[:100]})", path,
                         "re-download the file or remove it from the input folder") from None
    data = data[..., 0] if data.ndim == 3 else data
    if data.ndim != 2:
        raise InputError(f"expected a 2D slice, got shape {data.shape}", path, "export one slice per file")
    return data


def slice_size(path: str | Path) -> tuple[int, int]:
    """(rows, columns) of a 2D slice file from its header (nothing decoded)."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                shape = tif.pages[0].shape
            return int(shape[0]), int(shape[1])
        from PIL import Image

        with Image.open(path) as im:
            return im.size[1], im.size[0]
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad input file
        raise InputError(f"cannot read the slice ({' '.join(str(exc).split())[:100]})", path,
                         "re-download the file or remove it from the input folder") from None


def check_stack(slots: Sequence[str], reference: Sequence[str] = ()) -> None:
    """Refuse, before anything is written, a slice whose size differs from the stack's (the first of
    ``reference``, the image's slices, else of ``slots``), naming that slice."""
    present = [s for s in slots if s]
    first = (reference or present or [None])[0]
    if first is None:
        return
    size = slice_size(first)
    for slot in present:
        other = slice_size(slot) if slot != first else size
        if other != size:
            raise GeometryError(f"slice size {other[1]}x{other[0]} differs from the stack's {size[1]}x{size[0]} "
                                f"({first})", slot, "export every slice of a case at one size")


def read_stack(slots: Sequence[str], shape_from: Sequence[str] = ()) -> np.ndarray:
    """2D slices stacked along k (rows are j, columns i); an empty slot is an empty (zero) slice.

    ``shape_from`` (the image's slices) gives the size when every slot is empty, and every
    present slice must have that size: a slice of another size names itself.
    """
    present = [s for s in slots if s]
    ref_path = (shape_from or present)[0] if (shape_from or present) else None
    if ref_path is None:
        raise InputError("an empty stack", None, "give at least one slice")
    ref = read_slice(ref_path) if ref_path not in present else None
    slices: list[np.ndarray | None] = []
    for slot in slots:
        data = read_slice(slot) if slot else None
        if data is not None:
            ref = data if ref is None else ref
            if data.shape != ref.shape:
                raise GeometryError(f"slice size {data.shape[1]}x{data.shape[0]} differs from the stack's "
                                    f"{ref.shape[1]}x{ref.shape[0]} ({ref_path})", slot,
                                    "export every slice of a case at one size")
        slices.append(data)
    assert ref is not None
    dtype = next((s.dtype for s in slices if s is not None), ref.dtype)
    return np.stack([(s if s is not None else np.zeros(ref.shape, dtype)).T for s in slices], axis=-1)


def read_array(paths: Sequence[str], spacing, orientation: str, shape_from: Sequence[str] = ()
               ) -> tuple[np.ndarray, np.ndarray]:
    """One ``.npy`` (3D) or a stack of 2D slices (``paths`` in k order, ``""`` for a missing slice),
    and the affine of the grid the user gave (or the ``"affine"`` of a ``<name>.json`` beside a ``.npy``)."""
    first = Path(next((p for p in paths if p), shape_from[0] if shape_from else ""))
    if first.suffix == ".npy":
        data = _load_npy(first)
        side = first.with_suffix(".json")
        if side.is_file():
            meta = json.loads(side.read_text(encoding="utf-8"))
            if "affine" in meta:
                return data, np.asarray(meta["affine"], float)
    else:
        data = read_stack(paths, shape_from)
    if data.ndim != 3:
        raise InputError(f"expected a 3D array, got shape {data.shape}", first, "save one volume per file")
    if spacing is None:
        raise UsageError("arrays carry no voxel size", first, "pass --spacing X Y Z and --orientation")
    return data, affine_from(spacing, orientation)


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the array ({' '.join(str(exc).split())[:100]})", path,
                         "re-download the file or remove it from the input folder") from None


def default_threshold(data: np.ndarray) -> float | None:
    """Where a mask's foreground starts: None when it is already 0/1, else half its type's range
    (127.5 for 8-bit), or half its largest value for other types.

    >>> default_threshold(np.array([0, 1], np.uint8)) is None
    True
    >>> default_threshold(np.array([0, 3, 250], np.uint8)), default_threshold(np.array([0., 1000.]))
    (127.5, 500.0)
    """
    lo, hi = float(data.min()), float(data.max())
    if lo >= 0 and hi <= 1 and np.array_equal(data, np.rint(data)):
        return None
    if data.dtype == np.uint8:
        return 127.5
    return hi / 2.0


def binarise(data: np.ndarray, threshold: float | None, where: str | Path) -> tuple[np.ndarray, dict]:
    """A 0/1 mask from stored mask values (lossy JPEG, 0/255 PNG or TIFF), and what was done:
    ``MaskThreshold`` and, when values other than the two extremes were seen, how many.

    >>> m, note = binarise(np.array([0, 3, 128, 252, 255], np.uint8), None, "m.jpg")
    >>> m.tolist(), note
    ([0, 0, 1, 1, 1], {'MaskThreshold': 127.5, 'ValuesBetweenExtremes': 3})
    """
    if data.size and float(data.min()) < 0:
        raise InputError("mask has negative values", where, "pass a mask with values >= 0")
    cut = threshold if threshold is not None else default_threshold(data)
    if cut is None:
        return data.astype(np.uint8), {}
    top = 255.0 if data.dtype == np.uint8 else float(data.max())
    between = int(np.count_nonzero((data > 0) & (data < top)))
    note: dict = {"MaskThreshold": cut}
    if between:  # reported by the caller, once per mask
        note["ValuesBetweenExtremes"] = between
    return (data > cut).astype(np.uint8), note
