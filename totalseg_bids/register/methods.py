"""Registering methods behind one table: each returns the CT-from-MRI mapping of the label.

Every method gives (label on the MRI grid, transform or None, sidecar keys,
quality figures); quality flags and ``--on-failure`` are applied here once.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from ..core.bids import dataset_path
from ..core.errors import GeometryError, MissingFileError
from ..core.nifti import Grid, Volume, grid_mismatch, load_image, resample_label, same_grid
from .ants import register_ants
from .constants import REGISTRATION_SEED
from .header import moved_label_affine
from .itk import focus_mask, register_ct_to_mri, transform_record, transform_to_ras
from .options import RegOptions
from .quality import correction_size, edge_contrast, label_centre, quality_flags

log = logging.getLogger(__name__)


def _itk(kind: str, ct: Volume, mri: Volume, label: np.ndarray, opts: RegOptions) -> tuple:
    """SimpleITK rigid/affine: (ct_from_mri RAS, transform, metric header, metric after, sidecar keys)."""
    import SimpleITK as sitk


    mask = focus_mask(label, ct.affine, opts.focus_mm) if opts.focus_mm is not None else None
    transform, before, after = register_ct_to_mri(ct, mri, kind, init=opts.init, mask=mask)
    record = transform_record(transform)
    return transform_to_ras(transform), transform, before, after, {
        "SimpleITKVersion": sitk.Version_VersionString(), "Metric": "MattesMutualInformation",
        "Seed": REGISTRATION_SEED, "Transform": record,
        "TransformDirection": "MRI (fixed) to CT (moving) points, ITK LPS"}


def _ants(kind: str, ct: Volume, mri: Volume, label: np.ndarray, opts: RegOptions) -> tuple:
    """ANTs (antspyx) Rigid/Affine/SyN; for SyN the label is warped by the field (see :func:`ants_warp`)."""

    return register_ants(kind, ct, mri, label, opts)


#: the last CT read (one entry: the MRIs of one session are registered one after another)
_CT_CACHE: dict = {}


def _load_ct(path: Path) -> Volume:
    """The CT image, read once for all the MRIs of its session (keyed by path, size and mtime)."""
    st = Path(path).stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if _CT_CACHE.get("key") != key:
        _CT_CACHE.clear()  # never two CTs in memory
        _CT_CACHE.update(key=key, volume=load_image(path))
    return _CT_CACHE["volume"]


#: method -> (backend, kind); the batch step and the CLI list these.
REGISTERING = {
    "rigid": (_itk, "rigid"), "affine": (_itk, "affine"),
    "ants-rigid": (_ants, "Rigid"), "ants-affine": (_ants, "Affine"), "ants-syn": (_ants, "SyN"),
}


def _register(method: str, label_path: Path, ct_image: Path | None, label: Volume, data: np.ndarray,
              mri_path: Path, mri_grid: Grid, interp: str, values: list[int], opts: RegOptions) -> tuple:
    """Register, send the label through, judge the result and apply ``--on-failure``."""
    if ct_image is None:
        raise MissingFileError(f"--method {method} needs the CT image of this label, not found", label_path,
                               "put the CT in the raw dataset (sub-XX/[ses-YY/]anat|ct/) or use --method header")
    ct = _load_ct(ct_image)
    if not same_grid(ct.grid, label.grid):
        raise GeometryError(f"label is not on its CT's grid ({grid_mismatch(ct.grid, label.grid)})",
                            label_path, f"re-create the label on {ct_image.name}")
    backend, kind = REGISTERING[method]
    t0 = time.perf_counter()
    mri = load_image(mri_path)
    ct_from_mri, transform, before, after, tool = backend(kind, ct, mri, data, opts)
    if callable(ct_from_mri):  # a deformable method warps the label itself
        out = ct_from_mri(data, interp)
        ct_from_mri = np.eye(4)
    else:
        out = resample_label(data, moved_label_affine(label.affine, ct_from_mri), mri_grid,
                             mode=interp, values=values)
    shift, angle = correction_size(ct_from_mri, label_centre(data, label.affine))
    edges = edge_contrast(mri.data, out)
    quality = {"MetricHeader": None if before is None else round(before, 5), "MetricAfter": round(after, 5),
               "ShiftMm": shift, "RotationDeg": angle, "Init": opts.init, "FocusMm": opts.focus_mm,
               "EdgeContrast": edges}
    flags = quality_flags(before, after, shift, angle, opts,
                          header_shift_mm=shift if opts.init != "header" else 0.0, edges=edges)
    if not np.any(out):
        flags["LabelLeftFieldOfView"] = True
    tool["Quality"] = quality
    # timings go to the log, not the sidecar: two runs must write identical derivatives
    log.info("%s: registered in %.2fs", dataset_path(mri_path), time.perf_counter() - t0)
    if flags:
        flags["RegistrationSuspicious"] = True
        out, transform = _on_failure(opts, flags, mri_path, data, label, mri_grid, interp, values, out, transform)
    return out, transform, tool, flags


def _on_failure(opts: RegOptions, flags: dict, mri_path: Path, data, label: Volume, mri_grid: Grid,
                interp: str, values: list[int], out, transform) -> tuple:
    """error: refuse the pair; header: write the header transfer instead; keep: write it flagged."""
    why = ", ".join(k for k in flags if k != "RegistrationSuspicious")
    if opts.on_failure == "error":
        raise GeometryError(f"registration is suspicious ({why})", mri_path,
                            "check the pair, try --init geometry or --focus-mm, or pass --on-failure keep")
    log.warning("%s: registration is suspicious (%s); --on-failure %s", mri_path, why, opts.on_failure)
    if opts.on_failure == "header":
        flags["WrittenWithHeader"] = True
        return resample_label(data, label.affine, mri_grid, mode=interp, values=values), None
    return out, transform
