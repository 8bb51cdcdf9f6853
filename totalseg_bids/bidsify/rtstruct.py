"""DICOM-RT structure sets: closed planar contours (patient LPS mm) filled
onto the voxel grid of the image they were drawn on.

Each contour lies on one slice of its reference image; its points are taken
into that image's voxel space (through the converted NIfTI's affine, so any
flip or reorder the converter made is followed) and filled by the even-odd
rule on voxel centres, which is how DICOM combines contours of one ROI on one
slice (an inner contour is a hole).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np

from ..core.atomic import atomic_write_json
from ..core.bids import sidecar_path
from ..core.derivatives import generated_by, write_dseg_tsv
from ..core.errors import GeometryError, InputError
from ..core.nifti import save_mask
from .plan import Item, label_target

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: a contour point may lie this far (in voxels) off its slice plane
PLANE_TOLERANCE = 0.25


def label_name(roi: str) -> str:
    """A BIDS ``label-`` value from an ROI name.

    >>> label_name("Sacrum"), label_name("Femoral Head_L")
    ('sacrum', 'femoralHeadL')
    """
    words = [w for w in re.split(r"[^A-Za-z0-9]+", roi) if w]
    return "".join([words[0].lower(), *words[1:]]) if words else ""


def fill_polygon(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """Voxel centres of a ``shape`` plane inside the polygon ``points`` (N, 2), even-odd rule.

    >>> fill_polygon((5, 5), np.array([[0.5, 0.5], [3.5, 0.5], [3.5, 2.5], [0.5, 2.5]])).sum()
    np.int64(6)
    """
    out = np.zeros(shape, bool)
    lo = np.clip(np.floor(points.min(axis=0)).astype(int), 0, np.array(shape) - 1)
    hi = np.clip(np.ceil(points.max(axis=0)).astype(int), 0, np.array(shape) - 1)
    a, b = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1), indexing="ij")
    inside = np.zeros(a.shape, bool)
    p, q = points, np.roll(points, -1, axis=0)
    for (a1, b1), (a2, b2) in zip(p, q):
        if b1 == b2:
            continue
        crosses = (b1 > b) != (b2 > b)
        at = a1 + (b - b1) * (a2 - a1) / (b2 - b1)
        inside ^= crosses & (a < at)
    out[lo[0]:hi[0] + 1, lo[1]:hi[1] + 1] = inside
    return out


def roi_contours(ds) -> dict[str, list[np.ndarray]]:
    """``{ROI name: [contour (N, 3) LPS mm]}`` of the closed planar contours."""
    names = {int(r.ROINumber): str(r.ROIName) for r in ds.get("StructureSetROISequence", [])}
    out: dict[str, list[np.ndarray]] = {}
    for roi in ds.get("ROIContourSequence", []):
        name = names.get(int(roi.ReferencedROINumber), f"roi{roi.ReferencedROINumber}")
        pts = out.setdefault(name, [])
        for c in roi.get("ContourSequence", []):
            if str(c.get("ContourGeometricType", "CLOSED_PLANAR")) == "CLOSED_PLANAR":
                pts.append(np.asarray(c.ContourData, float).reshape(-1, 3))
    return out


def rasterise(contours: list[np.ndarray], shape, affine: np.ndarray, where: str | Path) -> np.ndarray:
    """A binary mask on the grid (``shape``, RAS+ ``affine``) from LPS contours."""
    mask = np.zeros(tuple(shape[:3]), bool)
    to_voxel = np.linalg.inv(affine) @ LPS_TO_RAS
    for pts in contours:
        v = (to_voxel @ np.column_stack([pts, np.ones(len(pts))]).T).T[:, :3]
        spread = v.max(axis=0) - v.min(axis=0)
        axis = int(np.argmin(spread))
        k = int(np.rint(v[:, axis].mean()))
        if spread[axis] > 2 * PLANE_TOLERANCE or abs(v[:, axis].mean() - k) > PLANE_TOLERANCE:
            raise GeometryError("a contour does not lie on a slice of its reference image", where,
                                "pair the RTSTRUCT with the series its contours were drawn on")
        if not 0 <= k < mask.shape[axis]:
            raise GeometryError(f"a contour lies outside its reference image (slice {k})", where,
                                "pair the RTSTRUCT with the series its contours were drawn on")
        plane = [a for a in range(3) if a != axis]
        index: list = [slice(None)] * 3
        index[axis] = k
        mask[tuple(index)] ^= fill_polygon((mask.shape[plane[0]], mask.shape[plane[1]]), v[:, plane])
    return mask


def read_structure_set(path: str | Path):
    """The RTSTRUCT dataset (pydicom), or a one-line error."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, force=True)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad input file
        raise InputError(f"cannot read the RTSTRUCT ({' '.join(str(exc).split())[:120]})", path,
                         "re-download the file or remove it from the input folder") from None
    if str(ds.get("Modality", "")) != "RTSTRUCT":
        raise InputError("not an RTSTRUCT", path, "pass a DICOM-RT structure set")
    return ds


def convert_rtstruct(item, out: Path, date: str) -> str:
    """Rasterise ROI ``item.sidecar['ROIName']`` onto the converted reference image, or, for a combined
    item (``classes``), every ROI of ``item.sidecar['ROINames']`` into one label map with its table."""
    import nibabel as nib

    target, ref = Path(out) / item.target, Path(out) / item.reference
    names = item.sidecar.get("ROINames") or {"": item.sidecar["ROIName"]}
    found = roi_contours(read_structure_set(item.source))
    img = nib.load(str(ref))
    out_data = np.zeros(img.shape[:3], np.uint8)
    for value, roi in enumerate(names.values(), start=1):
        contours = found.get(roi)
        if not contours:
            raise InputError(f"ROI {roi!r} has no closed planar contours", item.source, "choose another ROI")
        mask = rasterise(contours, img.shape, img.affine, item.source)
        if not mask.any():
            raise GeometryError(f"ROI {roi!r} covers no voxel centre of {item.reference}", item.source,
                                "pair the RTSTRUCT with the series its contours were drawn on")
        out_data[mask] = value if item.classes else 1
    save_mask(out_data, img.affine, target)
    if item.classes:
        write_dseg_tsv(target, item.classes)
    atomic_write_json(sidecar_path(target), {
        "SpatialReference": "orig", "Sources": [f"bids:raw:{item.reference}"],
        "SourceFiles": [Path(item.source).resolve().as_uri()],
        "GeneratedBy": [generated_by("totalseg_bids.bidsify", Date=date,
                                     Description="RTSTRUCT contours filled on voxel centres (even-odd rule)"
                                     + ("; later ROIs drawn over earlier ones" if item.classes else ""))],
        **item.sidecar})
    return "converted"


def referenced_series(ds) -> str | None:
    """The SeriesInstanceUID an RTSTRUCT's contours were drawn on."""
    for frame in ds.get("ReferencedFrameOfReferenceSequence", []):
        for study in frame.get("RTReferencedStudySequence", []):
            for series in study.get("RTReferencedSeriesSequence", []):
                return str(series.SeriesInstanceUID)
    return None


def structure_items(files: list[Path], images: dict[str, Item], classes, naming: str, combine: str | None = None
                    ) -> tuple[list[Item], list[tuple[str, Path, str]]]:
    """One mask item per ROI of every RTSTRUCT in ``files`` (or, with ``combine``, one label map of
    all of a set's ROIs, in ``classes`` order else the set's), on the image item (``images``: by
    SeriesInstanceUID) its contours reference; and ``(problem, file, fix)`` for each set that has none."""
    sets, problems = [], []
    for path in files:
        try:
            ds = read_structure_set(path)
        except InputError as exc:
            problems.append((exc.problem, path, exc.fix or "remove the file"))
            continue
        ref = images.get(referenced_series(ds) or "")
        if ref is None:
            problems.append(("mask on no image: the RTSTRUCT references a series that is not in its folder", path,
                             "put the RTSTRUCT beside the DICOM series its contours were drawn on"))
            continue
        sets.append((path, ds, ref))
    per_image = Counter(ref.target for _, _, ref in sets)
    items = []
    for path, ds, ref in sets:
        # several structure sets on one image (observers, consensus): the set's label tells their masks apart
        suffix = "" if per_image[ref.target] == 1 else f" {ds.get('StructureSetLabel', path.stem)}"
        found, problem = set_items(path, ds, ref, suffix, classes, naming, combine)
        items += found
        problems += [problem] if problem else []
    return items, problems


def set_items(path: Path, ds, ref: Item, suffix: str, classes, naming: str, combine: str | None
              ) -> tuple[list[Item], tuple[str, Path, str] | None]:
    """The mask items of one structure set on its image (one per ROI, or one combined label map)."""
    rois = {label_name(f"{r.ROIName}{suffix}"): str(r.ROIName) for r in ds.get("StructureSetROISequence", [])}
    missing = sorted(set(classes or ()) - set(rois))
    if missing:
        return [], (f"no ROI {', '.join(missing)} in the structure set", path,
                    f"choose --classes among {', '.join(sorted(rois))}")
    chosen = {label: rois[label] for label in (classes or rois)}
    set_label = str(ds.get("StructureSetLabel", ""))
    if combine:
        name = combine + (label_name(suffix) if suffix else "")
        return [Item(str(path), label_target(ref.target, name, "dseg", naming), kind="rtstruct",
                     reference=ref.target, reference_source=ref.source, classes=dict(enumerate(chosen, start=1)),
                     sidecar={"ROINames": chosen, "StructureSetLabel": set_label})], None
    return [Item(str(path), label_target(ref.target, label, "seg", naming), kind="rtstruct",
                 reference=ref.target, reference_source=ref.source,
                 sidecar={"ROIName": name, "StructureSetLabel": set_label})
            for label, name in chosen.items()], None
