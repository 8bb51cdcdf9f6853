"""One case: validate its image(s) and label, then link them into the working dataset
folder, or write a corrected copy where nnU-Net could not read them as they are.

Files are **linked** (symlink by default) when nnU-Net can read them as they are.
Only cases that need it get a **corrected copy**: a label on another grid in the
same world space (resampled, nearest neighbour, onto the image grid), a label
stored as float or with scaling (rewritten as integers), a label whose values
are remapped, an image or label whose qform and sform disagree beyond the
tolerance (SimpleITK, which nnU-Net uses, and nibabel may then see different
geometries), an uncompressed ``.nii`` (nnU-Net needs one file ending). Source
files are never changed.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.bids import dataset_path
from ..core.errors import GeometryError, InputError
from ..core.nifti import (
    QFORM_SFORM_TOLERANCE_MM,
    Grid,
    check_3d_shape,
    grid_mismatch,
    grids_overlap,
    label_array,
    load_image,
    load_nifti,
    present_values,
    qform_sform_discrepancy,
    read_data,
    resample_image,
    resample_label,
    save_mask,
)
from .labels import apply_remap, label_problem
from .options import FILE_ENDING, LinkMode
from .values import form_gap, plain_header, stream_label_values, stream_values, streamable

log = logging.getLogger(__name__)


@dataclass
class CaseTask:
    """Everything one worker needs to place one case (picklable)."""

    case_id: str
    split: str
    images: tuple[Path, ...]
    label: Path | None
    work: Path
    link: LinkMode = "symlink"
    allowed: tuple[int, ...] = (0, 1)
    remap: dict[int, int] | None = None
    form_tolerance: float = QFORM_SFORM_TOLERANCE_MM

    @property
    def images_dir(self) -> str:
        """``imagesTs`` for a TESTING case, else ``imagesTr``."""
        return "imagesTs" if self.split == "TESTING" else "imagesTr"

    @property
    def labels_dir(self) -> str:
        """``labelsTs`` for a TESTING case, else ``labelsTr``."""
        return "labelsTs" if self.split == "TESTING" else "labelsTr"


@dataclass
class CaseRecord:
    """What became of one case: where its files went and what was corrected."""

    case_id: str
    split: str
    images: list[str]
    label: str | None
    nnunet_images: list[str]
    nnunet_label: str | None
    actions: list[str] = field(default_factory=list)


def place(src: Path, dst: Path, mode: str) -> str:
    """Link or copy ``src`` to ``dst``; return what was actually done.

    ``symlink`` points at the absolute source path (annex links stay links);
    a filesystem without symlinks falls back to a copy. ``hardlink`` falls
    back to a copy across filesystems.
    """
    if mode == "symlink":
        try:
            os.symlink(os.path.abspath(src), dst)
            return "symlink"
        except OSError as exc:
            log.debug("symlink failed (%s), copying %s", exc, src)
    elif mode == "hardlink":
        try:
            os.link(src, dst)
            return "hardlink"
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
                raise
            log.debug("hardlink failed (%s), copying %s", exc, src)
    shutil.copyfile(src, dst)
    return "copy"


def _rewrite_image(img, data_path: Path, dst: Path) -> None:
    """Write ``img`` again with qform == sform == its nibabel affine, keeping
    the stored data type and scaling (only the header geometry changes)."""
    import nibabel as nib

    raw = np.asanyarray(img.dataobj.get_unscaled()) if hasattr(img.dataobj, "get_unscaled") else \
        read_data(img, data_path)
    new = nib.Nifti1Image(raw, img.affine, header=img.header.copy())
    new.set_qform(img.affine, code=1)
    new.set_sform(img.affine, code=1)
    new.to_filename(str(dst))


def convert_case(task: CaseTask) -> CaseRecord:
    """Place one case's image(s) and label in the working dataset folder.

    Validates every file, links what nnU-Net can read as it is, and writes a
    corrected copy only where needed (see the module docstring). The plain
    case (see :func:`plain_case`) is decided without nibabel.
    """
    record = plain_case(task)
    return record if record is not None else checked_case(task)


def plain_case(task: CaseTask) -> CaseRecord | None:
    """The common case, checked from headers read without nibabel: integer
    ``.nii.gz`` images and label on one grid, forms that agree, label values
    allowed and not remapped. Everything is linked; None (nothing placed)
    where any file needs :func:`checked_case` to decide or to word an error."""
    heads = [plain_header(p) for p in task.images]
    label = plain_header(task.label) if task.label is not None else None
    if any(h is None for h in heads) or (task.label is not None and label is None):
        return None
    grids = [Grid(tuple(h.shape[:3]), np.asarray(h.affine, dtype=float)) for h in heads]
    if any(form_gap(h) > task.form_tolerance for h in [*heads, *([label] if label else [])]):
        return None
    if any(grid_mismatch(g, grids[0]) for g in grids[1:]):
        return None
    present = None
    if label is not None:
        if grid_mismatch(Grid(tuple(label.shape[:3]), np.asarray(label.affine, dtype=float)), grids[0]):
            return None
        try:
            present = sorted(stream_values(task.label, label.dtype, label.offset, int(np.prod(label.shape))))
        except InputError:
            return None
        if label_problem(present, task.allowed, task.remap) or (
                task.remap is not None and any(task.remap.get(int(v), int(v)) != int(v) for v in present if v)):
            return None
        if present == [0]:
            log.warning("%s: label is empty (background only)", task.label)
    actions: list[str] = []
    out_images = []
    for c, path in enumerate(task.images):
        dst = task.work / task.images_dir / f"{task.case_id}_{c:04d}{FILE_ENDING}"
        how = place(path, dst, task.link)
        if how != task.link:
            actions.append(f"image {c} {how} (no {task.link})")
        out_images.append(f"{task.images_dir}/{dst.name}")
    out_label = None
    if task.label is not None:
        dst = task.work / task.labels_dir / f"{task.case_id}{FILE_ENDING}"
        how = place(task.label, dst, task.link)
        if how != task.link:
            actions.append(f"label {how} (no {task.link})")
        out_label = f"{task.labels_dir}/{dst.name}"
    return CaseRecord(task.case_id, task.split, [str(p) for p in task.images],
                      str(task.label) if task.label else None, out_images, out_label, actions)


def checked_case(task: CaseTask) -> CaseRecord:
    """Every case through nibabel: corrected copies, and the errors worded."""
    actions: list[str] = []
    out_images: list[str] = []
    images = [load_nifti(p, check_forms=False) for p in task.images]
    grids = []
    for path, img in zip(task.images, images):
        check_3d_shape(img.shape, path)
        if np.issubdtype(img.get_data_dtype(), np.floating):  # integer images cannot hold NaN: no read needed
            load_image(path)
        grids.append(Grid.of(img))
    ref = grids[0]
    for c, (path, img, grid) in enumerate(zip(task.images, images, grids)):
        dst = task.work / task.images_dir / f"{task.case_id}_{c:04d}{FILE_ENDING}"
        rel = f"{task.images_dir}/{dst.name}"
        gap = qform_sform_discrepancy(img)
        if c > 0 and grid_mismatch(grid, ref):
            if not grids_overlap(grid, ref):
                raise GeometryError(f"channel {c} does not overlap channel 0 ({dataset_path(task.images[0])}) "
                                    "in world space", path, "register the channels first")
            data = resample_image(read_data(img, path, dtype=np.float32), img.affine, ref)
            _save_float(data, ref.affine, dst)
            actions.append(f"channel {c} resampled onto channel 0")
        elif gap > task.form_tolerance:
            _rewrite_image(img, path, dst)
            actions.append(f"image {c} qform/sform ({gap:.3g} mm apart) rewritten as sform")
        elif not path.name.endswith(".nii.gz"):
            _rewrite_image(img, path, dst)
            actions.append(f"image {c} compressed")
        else:
            how = place(path, dst, task.link)
            if how != task.link:
                actions.append(f"image {c} {how} (no {task.link})")
        out_images.append(rel)
    out_label = None
    if task.label is not None:
        out_label = _convert_label(task, ref, actions)
    return CaseRecord(task.case_id, task.split, [str(p) for p in task.images],
                      str(task.label) if task.label else None, out_images, out_label, actions)


def _save_float(data: np.ndarray, affine: np.ndarray, dst: Path) -> None:
    """A resampled channel, as float32 with qform == sform."""
    import nibabel as nib

    img = nib.Nifti1Image(np.asarray(data, np.float32), affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.to_filename(str(dst))


def _convert_label(task: CaseTask, ref: Grid, actions: list[str]) -> str:
    """Check one label's values and geometry; link it, or write a corrected copy."""
    path = task.label
    img = load_nifti(path, check_forms=False)  # the header is needed below (stored type, scaling, forms)
    data = None
    if streamable(img, path):
        present = sorted(stream_label_values(img, path))
    else:
        data = label_array(img, path)
        present = sorted(present_values(data))  # sorts the labelled box only
    problem = label_problem(present, task.allowed, task.remap)
    if problem:
        fix = ("pass --labels-json with a \"remap\" for these values" if task.remap is None
               else "add the values to \"remap\" in --labels-json")
        raise InputError(problem, path, fix)
    if present == [0]:
        log.warning("%s: label is empty (background only)", path)
    remapped = task.remap is not None and any(task.remap.get(int(v), int(v)) != int(v) for v in present if v)
    reasons, why = _label_header_reasons(img, ref, task, remapped)
    if why:
        if not grids_overlap(Grid.of(img), ref):
            raise GeometryError(f"label and image do not overlap in world space ({why})", path,
                                f"check the label belongs to {task.images[0].name} or register it")
        reasons.append(f"resampled onto the image grid ({why})")
    dst = task.work / task.labels_dir / f"{task.case_id}{FILE_ENDING}"
    if reasons or not path.name.endswith(".nii.gz"):
        data = label_array(img, path) if data is None else data
        if remapped:
            data = apply_remap(data, task.remap)
        if why:
            data = resample_label(data, img.affine, ref, mode="nearest")
        save_mask(data, ref.affine, dst)
        actions.append("label rewritten: " + (", ".join(reasons) or "compressed"))
    else:
        how = place(path, dst, task.link)
        if how != task.link:
            actions.append(f"label {how} (no {task.link})")
    return f"{task.labels_dir}/{dst.name}"


def _label_header_reasons(img, ref: Grid, task: CaseTask, remapped: bool) -> tuple[list[str], str | None]:
    """Why a label must be rewritten (stored type, scaling, remapped values,
    qform/sform: all but the values come from the header), and how its grid
    differs from the image's (None: the same grid)."""
    reasons = []
    stored = img.get_data_dtype()
    slope, inter = img.header.get_slope_inter()
    if np.issubdtype(stored, np.floating):
        reasons.append(f"stored as {stored}")
    if (slope not in (None, 1.0) and not np.isnan(slope)) or (inter not in (None, 0.0) and not np.isnan(inter)):
        reasons.append("scaled (scl_slope/scl_inter)")
    if remapped:
        reasons.append("values remapped")
    gap = qform_sform_discrepancy(img)
    if gap > task.form_tolerance:
        reasons.append(f"qform/sform {gap:.3g} mm apart")
    return reasons, grid_mismatch(Grid.of(img), ref)

