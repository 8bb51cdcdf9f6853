"""The per-pair step: one CT label onto one MRI grid, written atomically with its sidecar."""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..core.atomic import all_or_nothing
from ..core.bids import BidsName, dataset_root_of, dseg_tsv_path, raw_root_of, sidecar_path, split_extension
from ..core.derivatives import (
    ensure_dataset_description,
    generated_by,
    output_complete,
    write_dseg_tsv,
    write_sidecar,
)
from ..core.errors import GeometryError, InputError, UsageError
from ..core.folders import REG_LABELS
from ..core.label_box import load_label_box
from ..core.nifti import grids_overlap, load_grid, load_label, present_values, resample_label, same_grid, save_mask
from ..core.provenance import refuse_manual_overwrite
from ..core.qc_hook import qc_entry
from .constants import INTERPOLATIONS, METHODS, SCT_COMMAND
from .itk import write_transform
from .labels import extract_class, label_flags
from .methods import REGISTERING, _register
from .options import RegOptions
from .origin import label_origin
from .sct import run_sct

log = logging.getLogger(__name__)


@dataclass
class TransferResult:
    """What one transfer produced (``batch.result_record`` makes it the record the CLI prints)."""

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


@dataclass
class _Job:
    """One transfer's inputs, as every per-method function needs them."""

    ct_label: Path
    mri: Path
    ct_image: Path | None
    label: object  # core.nifti.Volume of the CT label
    data: np.ndarray  # the label voxels to transfer (one class extracted, or all)
    mri_grid: object  # core.nifti.Grid
    interp: str
    values: list[int]
    value: int | None
    reg_options: RegOptions


def _check_arguments(method: str, interp: str, kind: str) -> None:
    if method not in METHODS:
        raise UsageError(f"unknown method {method!r}", None, f"use one of {', '.join(METHODS)}")
    if interp not in INTERPOLATIONS:
        raise UsageError(f"unknown interpolation {interp!r}", None, "use nearest or label")
    if kind not in ("seg", "dseg"):
        raise UsageError(f"unknown label kind {kind!r}", None, "use seg or dseg")
    if method == "sct" and kind == "dseg" and interp == "label":
        raise UsageError("--method sct with --interp label handles one class only", None,
                         "extract one class (--label) or use --method header")


def _read_label(path: Path, kind: str, value: int | None, classes: dict[int, str] | None,
                box_only: bool = False) -> tuple:
    """(label volume, voxels to transfer): all classes of a dseg, one extracted class, or a binary mask.

    ``box_only`` reads just the box around the label's voxels (enough for a transfer by the header).
    """
    load = load_label_box if box_only else load_label
    if kind == "dseg":
        label = load(path, allowed=classes.keys() if classes else None)
        return label, label.data
    if value is not None:
        label = load(path)
        return label, extract_class(label.data, value, path)
    label = load(path, binary=True)
    return label, label.data


def _by_header(job: _Job) -> tuple:
    return resample_label(job.data, job.label.affine, job.mri_grid, mode=job.interp, values=job.values,
                          origin=job.label.origin), None, {}, {}


def _own_label(job: _Job) -> tuple:
    """A label already drawn on this MRI: copied, or resampled only if its grid differs."""
    if not np.any(job.data):
        raise InputError("the label already on this MRI is empty", job.ct_label,
                         "delete it or drop --mri-label-origin to transfer the CT label")
    out = job.data.copy() if same_grid(job.label.grid, job.mri_grid) else resample_label(
        job.data, job.label.affine, job.mri_grid, mode=job.interp, values=job.values)
    return out, None, {"LabelOrigin": label_origin(job.ct_label)}, {}


def _by_sct(job: _Job) -> tuple:
    """``sct_register_multimodal -identity 1`` on the label (one class written out first if extracted)."""
    with tempfile.TemporaryDirectory(prefix="totalseg_bids_lbl_") as tmp:
        source = job.ct_label
        if job.value is not None or not np.array_equal(job.data, job.label.data):
            source = Path(tmp) / f"{split_extension(job.ct_label.name)[0]}_class-{job.value}.nii.gz"
            save_mask(job.data, job.label.affine, source)
        out = run_sct(source, job.mri, job.mri_grid, job.interp)
    x = "nn" if job.interp == "nearest" else "linear"
    return out, None, {"Command": f"{SCT_COMMAND} -i <label> -d <MRI> -identity 1 -x {x}"}, {}


def _by_registration(method: str):
    def run(job: _Job) -> tuple:
        out, transform, tool, qflags = _register(method, job.ct_label, job.ct_image, job.label, job.data, job.mri,
                                                 job.mri_grid, job.interp, job.values, job.reg_options)
        if transform is not None and not hasattr(transform, "GetName"):
            transform = None  # a deformable field: its record is in the sidecar, no ITK text file
        return out, transform, tool, qflags

    return run


#: method -> function(job) giving (label on the MRI grid, ITK transform or None, sidecar keys, flags)
TRANSFERS = {"header": _by_header, "sct": _by_sct, "own-label": _own_label,
             **{m: _by_registration(m) for m in REGISTERING}}


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
    _check_arguments(method, interp, kind)
    used_method = "own-label" if own_label else method
    xfm_path = out_path.with_name(split_extension(out_path.name)[0] + "_xfm.txt")
    if not overwrite and output_complete(out_path):
        log.info("%s exists, skipping (use --overwrite to redo)", out_path)
        return TransferResult(str(out_path), "skipped", used_method, str(mri_path), str(ct_label_path),
                              str(xfm_path) if xfm_path.exists() else None)
    _check_same_subject(ct_label_path, mri_path, own_label)
    refuse_manual_overwrite(out_path, overwrite)  # a hand-corrected label survives --overwrite
    job = _prepare(ct_label_path, mri_path, ct_image, used_method, interp, value, kind, classes, reg_options)
    out, transform, more, qflags = TRANSFERS[used_method](job)
    tool: dict = {"Method": used_method, "Interpolation": interp}
    if value is not None:
        tool["LabelValue"] = int(value)
    tool.update(more)
    # BIDS has no transform file type (and the validator ignores .bidsignore in derivatives):
    # with --naming bids the transform lives in the sidecar only
    bids_named = getattr(BidsName.try_parse(out_path.name), "naming", "neuropoly") == "bids"
    if method in REGISTERING and not own_label:
        tool["TransformFile"] = None if (bids_named or transform is None) else xfm_path.name
    flags = label_flags(out) | qflags
    transform = None if bids_named else transform
    _write_outputs(job, out_path, out, transform, xfm_path, kind, classes, tool, flags, raw_root)
    qc_entry(qc_dir, mri_path, out_path, "register", compare_label=ct_label_path,
             meta={"method": used_method, "interp": interp, **tool.get("Quality", {}), **flags})
    return TransferResult(str(out_path), "written", used_method, str(mri_path), str(ct_label_path),
                          str(xfm_path) if transform is not None else None, flags,
                          round(time.perf_counter() - t0, 3))


def _prepare(ct_label_path: Path, mri_path: Path, ct_image: Path | None, method: str, interp: str,
             value: int | None, kind: str, classes: dict[int, str] | None, reg_options: RegOptions | None) -> _Job:
    """Read the label and the MRI grid; refuse fields of view that cannot meet."""
    mri_grid = load_grid(mri_path)  # header/sct need the MRI's grid only, not its voxels
    label, data = _read_label(ct_label_path, kind, value, classes, box_only=method == "header")
    reg_options = reg_options or RegOptions()
    free_start = method in REGISTERING and reg_options.init != "header"
    if not free_start and not grids_overlap(label.grid, mri_grid):
        raise GeometryError("the label's field of view and the MRI's do not overlap at all in world space",
                            mri_path, f"check that {ct_label_path.name} and this MRI are of the same scan "
                            "session and that their headers are right")
    values = sorted(present_values(data) - {0}) if kind == "dseg" else [1]
    return _Job(ct_label_path, mri_path, ct_image, label, data, mri_grid, interp, values, value, reg_options)


def _write_outputs(job: _Job, out_path: Path, out: np.ndarray, transform, xfm_path: Path, kind: str,
                   classes: dict[int, str] | None, tool: dict, flags: dict, raw_root: str | Path | None) -> None:
    """All the files of one output or none (an error, Ctrl-C or a time limit's SIGTERM removes those written)."""
    with all_or_nothing(out_path, sidecar_path(out_path), xfm_path if transform is not None else None,
                        dseg_tsv_path(out_path) if kind == "dseg" else None):
        _write_files(job, out_path, out, transform, xfm_path, kind, classes, tool, flags, raw_root)


def _write_files(job: _Job, out_path: Path, out: np.ndarray, transform, xfm_path: Path, kind: str,
                 classes: dict[int, str] | None, tool: dict, flags: dict, raw_root: str | Path | None) -> None:
    """Mask, transform and lookup table first, the sidecar last (it marks the output complete)."""
    if flags.get("EmptyLabel"):
        log.warning("%s: the transferred label is empty: the CT label does not reach this MRI's field of view",
                    out_path)
    elif flags.get("TouchesFieldOfViewEdge"):
        log.warning("%s: the transferred label touches the MRI field-of-view edge (structure cut off?)", out_path)
    save_mask(out, job.mri_grid.affine, out_path)
    if transform is not None:
        write_transform(transform, xfm_path)
    if kind == "dseg":
        write_dseg_tsv(out_path, classes or {v: str(v) for v in job.values})
    try:
        ensure_dataset_description(dataset_root_of(out_path), REG_LABELS,
                                   "CT labels transferred to MRI space by totalseg_bids.register")
    except InputError:
        log.debug("%s is not inside a sub-<label> folder: no dataset_description.json", out_path)
    try:
        raw = Path(raw_root) if raw_root is not None else raw_root_of(job.mri)
    except InputError:
        raw = None
    sources = [job.ct_label] + ([job.ct_image] if job.ct_image is not None else []) + [job.mri]
    write_sidecar(out_path, sources, [generated_by("totalseg_bids.register", version=__version__, **tool)],
                  spatial_reference=job.mri, raw_root=raw, **flags)
