"""Kaggle's "Finding and Measuring Lungs in CT Data": ``2d_images/ID_<n>_Z_<z>.tif`` with
``2d_masks/`` (same names, lungs 255), and ``3d_images/IMG_<n>.nii.gz`` with ``MASK_<n>.nii.gz``.

Each 2D slice is its own subject ``sub-ID<n>`` (one slice of a scan the release does not ship)
and keeps its ``Z`` index: as the BIDS ``chunk-<z>`` entity, in the sidecar (``SliceIndex``) and
in the affine (the slice sits at ``z`` slice thicknesses). Its pixel size is not in the file
(``--spacing X Y Z``, Z the slice thickness; ``--orientation``, default LPS, the radiological
view). Each 3D pair becomes ``sub-IMG<n>`` with its geometry. Masks become ``label-lungs``
(0/1, ``--mask-threshold``).
"""

from __future__ import annotations

import re
from pathlib import Path

from ...core.errors import InputError, UsageError
from ..arrays import check_stack
from ..plan import Item, Plan, image_target, label_target
from .pattern import slice_number

SLICE_RE = re.compile(r"^ID_(?P<id>[^_]+)_Z_(?P<z>[^.]+)\.tiff?$", re.I)
VOLUME_RE = re.compile(r"^(?P<kind>IMG|MASK)_(?P<id>[A-Za-z0-9]+)\.nii(\.gz)?$")
README = ("Finding and Measuring Lungs in CT Data (Kaggle) converted to BIDS: 2D slices as one-slice CTs "
          "(chunk- is the slice's Z index in its scan) and 3D CTs, with lung masks in derivatives/labels.")


def _slices(folder: Path) -> dict[str, tuple[str, int, Path]]:
    """``{file name: (id, z, path)}`` of a 2D folder; a Z that is not a number names its file."""
    out = {}
    for path in sorted(folder.glob("*.tif*")) if folder.is_dir() else []:
        m = SLICE_RE.match(path.name)
        if not m:
            continue
        if not m["id"].isalnum():
            raise InputError(f"slice id {m['id']!r} is not letters and digits", path, "keep the published file names")
        out[path.name] = (m["id"], slice_number(m["z"], path), path)
    return out


def slice_items(root: Path, opts, params: dict) -> tuple[list[Item], list[dict]]:
    """The 2D images and their masks (one-slice volumes at their Z index)."""
    images, masks = _slices(root / "2d_images"), _slices(root / "2d_masks")
    for name, (_, _, mask) in sorted(masks.items()):
        if name not in images:
            raise InputError("mask on no image", mask, f"add 2d_images/{name} or remove the mask")
    if images and opts.spacing is None:
        raise UsageError("the 2D slices carry no pixel size", root / "2d_images",
                         "pass --spacing X Y Z (Z: the slice thickness, which places each slice at its Z index)")
    items, people = [], []
    for name, (sid, z, path) in sorted(images.items()):
        grid = {**params, "k_offset": z}
        target = image_target(f"ID{sid}", "CT", {"chunk": str(z)})
        items.append(Item(str(path), target, sidecar={"grid": grid, "Modality": "CT", "SliceIndex": z}))
        if name in masks:
            check_stack([str(masks[name][2])], [str(path)])
            items.append(Item(str(masks[name][2]), label_target(target, "lungs", "seg", opts.naming), kind="label",
                              reference=target, reference_source=str(path), binarise=True,
                              threshold=opts.mask_threshold, sidecar={"grid": grid}))
        people.append({"participant_id": f"sub-ID{sid}", "source_id": path.stem})
    return items, people


def volume_items(root: Path, opts) -> tuple[list[Item], list[dict]]:
    """The 3D CTs and their masks; a mask without its CT is refused."""
    found: dict[str, dict[str, Path]] = {}
    for path in sorted((root / "3d_images").glob("*.nii*")) if (root / "3d_images").is_dir() else []:
        m = VOLUME_RE.match(path.name)
        if m:
            found.setdefault(m["id"], {})[m["kind"]] = path
    items, people = [], []
    for vid, files in sorted(found.items()):
        if "IMG" not in files:
            raise InputError("mask on no image", files["MASK"], f"add 3d_images/IMG_{vid}.nii.gz or remove the mask")
        target = image_target(f"IMG{vid}", "CT")
        items.append(Item(str(files["IMG"]), target, sidecar={"Modality": "CT"}))
        if "MASK" in files:
            items.append(Item(str(files["MASK"]), label_target(target, "lungs", "seg", opts.naming), kind="label",
                              reference=target, reference_source=str(files["IMG"]), binarise=True,
                              threshold=opts.mask_threshold))
        people.append({"participant_id": f"sub-IMG{vid}", "source_id": f"IMG_{vid}"})
    return items, people


def plan(root: Path, opts) -> Plan:
    params = {"spacing": opts.spacing, "orientation": opts.orientation or "LPS", "mask_threshold": opts.mask_threshold}
    flat, flat_people = slice_items(root, opts, params)
    volumes, volume_people = volume_items(root, opts)
    if not flat and not volumes:
        raise InputError("no 2d_images/ID_<n>_Z_<z>.tif or 3d_images/IMG_<n>.nii.gz", root,
                         "pass the folder of the download that holds 2d_images/, 2d_masks/ and 3d_images/")
    return Plan([*flat, *volumes], [*flat_people, *volume_people], "Finding and Measuring Lungs in CT Data (BIDS)",
                README, params)
