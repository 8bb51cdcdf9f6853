"""The per-pair step: one CT label onto one MRI grid, written atomically with its sidecar."""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..core.bids import BidsName, dataset_root_of, raw_root_of, split_extension
from ..core.provenance import refuse_manual_overwrite
from ..core.derivatives import (
    ensure_dataset_description, generated_by, output_complete, write_dseg_tsv, write_sidecar,
)
from ..core.errors import GeometryError, InputError, MissingFileError, UsageError
from ..core.nifti import (
    grid_mismatch, grids_overlap, load_grid, load_image, load_label, present_values, resample_label, same_grid,
    save_mask,
)
from .constants import INTERPOLATIONS, METHODS, REGISTRATION_SEED, SCT_COMMAND
from .header import moved_label_affine
from .itk import register_ct_to_mri, transform_record, transform_to_ras, write_transform
from .origin import label_origin
from .methods import REGISTERING, _register
from .options import RegOptions
from .labels import extract_class, label_flags
from .sct import run_sct

log = logging.getLogger("totalseg_bids.register")


@dataclass
class TransferResult:
    """What one transfer produced (the CLI prints it as one JSON line)."""

    output: str
    status: str  # "written" or "skipped"
    method: str
    mri: str
    ct_label: str
    transform: str | None = None
    flags: dict = field(default_factory=dict)
    seconds: float = 0.0


def _check_same_subject(ct_label: Path, mri: Path, own_label: bool) -> None:
    """Refuse a CT label of another subject (an explicit pair typed wrong)."""
    a, b = BidsName.try_parse(ct_label.name), BidsName.try_parse(mri.name)
    if a is None or b is None:
        return
    if a.subject != b.subject:
        raise InputError(f"label is of sub-{a.subject} but the MRI is of sub-{b.subject}", ct_label,
                         "pair each MRI with the CT label of the same subject")
    if a.session != b.session and a.session and b.session:
        log.warning("%s: label of ses-%s transferred to an MRI of ses-%s", ct_label, a.session, b.session)
    if own_label and a.source().filename != b.filename:
        raise InputError(f"label belongs to {a.source().filename}, not to {b.filename}", ct_label,
                         "name it <MRI stem>_label-<name>_seg.nii.gz")


def _qc(qc_dir: str | Path, mri: Path, out: Path, ct_label: Path, meta: dict) -> None:
    """The QC hook (totalseg_bids.qc); a QC problem never fails the transfer."""
    try:
        from ..qc import add_entry
    except ImportError:
        log.warning("--qc: totalseg_bids.qc is not available; no QC entry for %s", out)
        return
    try:
        add_entry(qc_dir, image=mri, label=out, stage="register", compare_label=ct_label, meta=meta)
    except Exception as exc:  # noqa: BLE001 - QC is a report, not part of the result
        log.warning("%s: QC entry failed (%s)", out, exc)


def transfer_label(ct_label_path: str | Path, mri_path: str | Path, out_path: str | Path,
                   method: str = "header", interp: str = "nearest", ct_image: str | Path | None = None,
                   value: int | None = None, kind: str = "seg", classes: dict[int, str] | None = None,
                   own_label: bool = False, overwrite: bool = False, qc_dir: str | Path | None = None,
                   raw_root: str | Path | None = None, reg_options: RegOptions | None = None) -> TransferResult:
    """Put the label ``ct_label_path`` onto the grid of ``mri_path`` and write ``out_path``.

    ``value`` extracts one class of a multi-class map; ``kind='dseg'`` keeps
    all classes (``classes`` is then the lookup table written beside it).
    ``reg_options`` set rigid/affine/ANTs initialisation, focus and failure handling.
    ``own_label`` marks a label already drawn on this MRI (legacy layout):
    it is copied, or resampled only if its grid differs. Writes the mask
    (uint8, MRI affine in qform and sform), the transform for rigid/affine,
    then the sidecar last, so an interrupted run is redone.
    """
    t0 = time.perf_counter()
    ct_label_path, mri_path, out_path = Path(ct_label_path), Path(mri_path), Path(out_path)
    ct_image = Path(ct_image) if ct_image is not None else None
    if method not in METHODS:
        raise UsageError(f"unknown method {method!r}", None, f"use one of {', '.join(METHODS)}")
    if interp not in INTERPOLATIONS:
        raise UsageError(f"unknown interpolation {interp!r}", None, "use nearest or label")
    if kind not in ("seg", "dseg"):
        raise UsageError(f"unknown label kind {kind!r}", None, "use seg or dseg")
    if method == "sct" and kind == "dseg" and interp == "label":
        raise UsageError("--method sct with --interp label handles one class only", None,
                         "extract one class (--label) or use --method header")
    used_method = "own-label" if own_label else method
    xfm_path = out_path.with_name(split_extension(out_path.name)[0] + "_xfm.txt")
    # BIDS has no transform file type (and the validator ignores .bidsignore in derivatives):
    # with --naming bids the transform lives in the sidecar only
    bids_named = getattr(BidsName.try_parse(out_path.name), "naming", "neuropoly") == "bids"
    if not overwrite and output_complete(out_path):
        log.info("%s exists, skipping (use --overwrite to redo)", out_path)
        return TransferResult(str(out_path), "skipped", used_method, str(mri_path), str(ct_label_path),
                              str(xfm_path) if xfm_path.exists() else None)
    _check_same_subject(ct_label_path, mri_path, own_label)
    refuse_manual_overwrite(out_path, overwrite)  # a hand-corrected label survives --overwrite

    mri_grid = load_grid(mri_path)  # header/sct need the MRI's grid only, not its voxels
    if kind == "dseg":
        label = load_label(ct_label_path, allowed=classes.keys() if classes else None)
        data = label.data
    elif value is not None:
        label = load_label(ct_label_path)
        data = extract_class(label.data, value, ct_label_path)
    else:
        label = load_label(ct_label_path, binary=True)
        data = label.data
    free_start = method in REGISTERING and (reg_options or RegOptions()).init != "header"
    if not free_start and not grids_overlap(label.grid, mri_grid):
        raise GeometryError("the label's field of view and the MRI's do not overlap at all in world space",
                            mri_path, f"check that {ct_label_path.name} and this MRI are of the same scan "
                            "session and that their headers are right")
    values = sorted(present_values(data) - {0}) if kind == "dseg" else [1]
    tool: dict = {"Method": used_method, "Interpolation": interp}
    if value is not None:
        tool["LabelValue"] = int(value)
    transform, qflags = None, {}
    if own_label:
        if not np.any(data):
            raise InputError("the label already on this MRI is empty", ct_label_path,
                             "delete it or drop --mri-label-origin to transfer the CT label")
        tool["LabelOrigin"] = label_origin(ct_label_path)
        out = data.copy() if same_grid(label.grid, mri_grid) else resample_label(
            data, label.affine, mri_grid, mode=interp, values=values)
    elif method == "header":
        out = resample_label(data, label.affine, mri_grid, mode=interp, values=values)
    elif method in REGISTERING:
        out, transform, more, qflags = _register(method, ct_label_path, ct_image, label, data, mri_path, mri_grid,
                                                 interp, values, reg_options or RegOptions())
        tool.update(more)
        if transform is not None and not hasattr(transform, "GetName"):
            transform = None  # a deformable field: its record is in the sidecar, no ITK text file
        tool["TransformFile"] = None if (bids_named or transform is None) else xfm_path.name
    else:  # sct
        with tempfile.TemporaryDirectory(prefix="totalseg_bids_lbl_") as tmp:
            source = ct_label_path
            if value is not None or not np.array_equal(data, label.data):
                source = Path(tmp) / f"{split_extension(ct_label_path.name)[0]}_class-{value}.nii.gz"
                save_mask(data, label.affine, source)
            out = run_sct(source, mri_path, mri_grid, interp)
        x = "nn" if interp == "nearest" else "linear"
        tool["Command"] = f"{SCT_COMMAND} -i <label> -d <MRI> -identity 1 -x {x}"

    flags = label_flags(out) | qflags
    if flags.get("EmptyLabel"):
        log.warning("%s: the transferred label is empty: the CT label does not reach this MRI's field of view",
                    out_path)
    elif flags.get("TouchesFieldOfViewEdge"):
        log.warning("%s: the transferred label touches the MRI field-of-view edge (structure cut off?)", out_path)

    save_mask(out, mri_grid.affine, out_path)
    if transform is not None and not bids_named:
        write_transform(transform, xfm_path)
    if kind == "dseg":
        write_dseg_tsv(out_path, classes or {v: str(v) for v in values})
    try:
        ensure_dataset_description(dataset_root_of(out_path), "reg-labels",
                                   "CT labels transferred to MRI space by totalseg_bids.register")
    except InputError:
        log.debug("%s is not inside a sub-<label> folder: no dataset_description.json", out_path)
    try:
        raw = Path(raw_root) if raw_root is not None else raw_root_of(mri_path)
    except InputError:
        raw = None
    sources = [ct_label_path] + ([ct_image] if ct_image is not None else []) + [mri_path]
    write_sidecar(out_path, sources, [generated_by("totalseg_bids.register", version=__version__, **tool)],
                  spatial_reference=mri_path, raw_root=raw, **flags)
    seconds = time.perf_counter() - t0
    if qc_dir is not None:
        _qc(qc_dir, mri_path, out_path, ct_label_path, {"method": used_method, "interp": interp, **flags})
    return TransferResult(str(out_path), "written", used_method, str(mri_path), str(ct_label_path),
                          str(xfm_path) if transform is not None else None, flags, round(seconds, 3))
