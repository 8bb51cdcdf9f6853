"""3D ``.npy`` volumes with a JSON geometry sidecar, and back to NIfTI exactly.

The clot workflow keeps its volumes as bare ``.npy`` arrays, which lose the
voxel-to-world mapping. The sidecar (``<stem>.json`` beside ``<stem>.npy``)
stores the 4x4 affine, the spacing, the axis codes and the source file, so
the reverse import rebuilds a NIfTI whose array and affine equal the source's.
The array is written in the source's voxel order (no reorientation).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .atomic import atomic_path, atomic_write_json
from .errors import InputError

SIDECAR_KEYS = ("affine", "spacing", "axcodes", "shape", "dtype", "source")


def sidecar_path(npy: str | Path) -> Path:
    """The geometry sidecar of an ``.npy`` volume.

    >>> sidecar_path("out/CS1_CTA_Binary.npy").as_posix()
    'out/CS1_CTA_Binary.json'
    """
    return Path(npy).with_suffix(".json")


def geometry(affine: np.ndarray, shape: tuple[int, ...], dtype: str, source: str) -> dict:
    """The sidecar content for an array of ``shape`` on ``affine``.

    >>> geometry(np.diag([2.0, 1.0, 1.0, 1.0]), (4, 5, 6), "int16", "ct.nii.gz")["spacing"]
    [2.0, 1.0, 1.0]
    """
    import nibabel as nib

    affine = np.asarray(affine, dtype=float)
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    return {"affine": affine.tolist(), "spacing": [float(s) for s in spacing],
            "axcodes": "".join(nib.aff2axcodes(affine)), "shape": list(shape), "dtype": dtype, "source": source}


def save_npy_volume(data: np.ndarray, affine: np.ndarray, path: str | Path, source: str = "") -> Path:
    """Write ``data`` as ``.npy`` plus its geometry sidecar, both atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(data))
    atomic_write_json(sidecar_path(path), geometry(affine, tuple(data.shape), str(data.dtype), source))
    return path


def load_npy_volume(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The array and affine of an ``.npy`` volume; the sidecar must match the array."""
    path, side = Path(path), sidecar_path(path)
    if not path.is_file():
        raise InputError("npy volume not found", path, "check the path")
    if not side.is_file():
        raise InputError("no geometry sidecar", side, "write the volume with totalseg_bids.export --format npy")
    meta = json.loads(side.read_text())
    if not set(SIDECAR_KEYS) <= set(meta):
        raise InputError(f"sidecar lacks {sorted(set(SIDECAR_KEYS) - set(meta))}", side, "re-export the volume")
    data = np.load(path, allow_pickle=False)
    if list(data.shape) != list(meta["shape"]):
        raise InputError(f"array shape {data.shape} differs from the sidecar's {meta['shape']}", path,
                         "re-export the volume")
    return data, np.asarray(meta["affine"], dtype=float)


def npy_to_nifti(path: str | Path, out: str | Path) -> Path:
    """Rebuild the NIfTI of an ``.npy`` volume (same array, dtype and affine)."""
    import nibabel as nib

    data, affine = load_npy_volume(path)
    img = nib.Nifti1Image(data, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    with atomic_path(out) as tmp:
        nib.save(img, str(tmp))
    return Path(out)
