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
from typing import Any

import numpy as np

from .atomic import atomic_path, atomic_write_json
from .bids import BidsName, split_extension
from .errors import InputError
from .nifti import load_nifti

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
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
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
    meta = json.loads(side.read_text(encoding="utf-8"))
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


def nifti_to_npy(src: str | Path, dst: str | Path) -> Path:
    """One NIfTI as ``.npy`` + geometry sidecar; an existing complete pair is kept
    (a rerun converts only what is missing)."""
    dst = Path(dst)
    if dst.is_file() and sidecar_path(dst).is_file():
        return dst
    img = load_nifti(src)
    return save_npy_volume(np.asanyarray(img.dataobj), img.affine, dst, str(src))


def clot_channel(image: str | Path, has_cta: bool = False, on_cta_grid: bool = False) -> str:
    """The clot workflow's channel tag of an image: ``CTA``, ``NCCT_Reg``, ``NCCT`` or the BIDS suffix.

    A contrast-enhanced CT (``ce-`` entity) is the CTA; a plain CT is the NCCT,
    ``NCCT_Reg`` when it lies on the CTA's grid (registered to it).

    >>> clot_channel("sub-CS1_ce-contrast_CT.nii.gz")
    'CTA'
    >>> clot_channel("sub-CS1_CT.nii.gz", has_cta=True, on_cta_grid=True)
    'NCCT_Reg'
    >>> clot_channel("sub-01_T1w.nii.gz")
    'T1w'
    """
    name = BidsName.try_parse(Path(image).name)
    if name is None:
        return split_extension(Path(image).name)[0].rsplit("_", 1)[-1]
    if name.suffix == "CT":
        if name.get("ce"):
            return "CTA"
        return "NCCT_Reg" if has_cta and on_cta_grid else "NCCT"
    return name.suffix or "image"


def clot_case_id(image: str | Path) -> str:
    """The case id of the clot workflow's names: the BIDS subject (and session) label.

    >>> clot_case_id("sub-CS1_ses-2_CT.nii.gz")
    'CS1_2'
    >>> clot_case_id("CS1_CTA.nii.gz")
    'CS1'
    """
    name = BidsName.try_parse(Path(image).name)
    if name is None or not name.get("sub"):
        return Path(image).name.split("_", 1)[0].split(".", 1)[0]
    return "_".join(v for v in (name.get("sub"), name.get("ses")) if v)


def clot_stems(images: list[str | Path], label: str | Path | None, on_cta_grid: list[bool] | None = None,
               prefix: str = "") -> list[str]:
    """``.npy`` stems of one case's images and label as the clot workflow names them.

    >>> clot_stems(["sub-CS1_ce-contrast_CT.nii.gz", "sub-CS1_CT.nii.gz"], "sub-CS1_CT_dseg.nii.gz", [True, True])
    ['CS1_CTA_Binary', 'CS1_NCCT_Reg_Binary', 'CS1_seg_corrected_binary']
    """
    case = prefix + clot_case_id(images[0])
    grid = on_cta_grid or [False] * len(images)
    has_cta = any(clot_channel(p) == "CTA" for p in images)
    tags = [clot_channel(p, has_cta, g) for p, g in zip(images, grid)]
    seen: dict[str, int] = {}
    stems = []
    for tag in tags:
        seen[tag] = seen.get(tag, 0) + 1
        stems.append(f"{case}_{tag}{seen[tag] if seen[tag] > 1 else ''}_Binary")
    return stems + ([f"{case}_seg_corrected_binary"] if label is not None else [])


def same_grid(a: str | Path, b: str | Path) -> bool:
    """Whether two NIfTI files share shape and affine (headers only)."""
    import nibabel as nib

    ia: Any = nib.load(str(a))
    ib: Any = nib.load(str(b))
    return ia.shape[:3] == ib.shape[:3] and np.allclose(ia.affine, ib.affine, atol=1e-4)


def npy_stems(images: list[Path], label: Path | None, names: str = "bids", prefix: str = "") -> list[str]:
    """Target stems of one case's images and label: BIDS stems, or the clot workflow's (``names="clot"``).

    >>> npy_stems([Path("sub-01_CT.nii.gz")], Path("sub-01_CT_dseg.nii.gz"))
    ['sub-01_CT', 'sub-01_CT_dseg']
    """
    if names == "clot":
        cta = next((p for p in images if clot_channel(p) == "CTA"), None)
        grid = [cta is not None and p != cta and same_grid(p, cta) for p in images]
        return clot_stems(list(images), label, grid, prefix)
    return [prefix + split_extension(p.name)[0] for p in [*images, *([label] if label is not None else [])]]
