"""Convert a data config into an nnU-Net v2 raw dataset (docs/conventions.md section 5).

``python -m totalseg_bids.convert_config_to_nnunet --config train_sacrum.json
--path-out "$nnUNet_raw" -dnum 300`` writes ``Dataset300_SacrumDataset/`` with
``imagesTr``/``labelsTr`` (TRAINING + VALIDATION), ``imagesTs``/``labelsTs``
(TESTING), ``dataset.json``, ``case_mapping.tsv``/``.json`` and
``splits_final.json`` (the config's split as nnU-Net fold 0).

Why it is built this way:

* Files are **linked** (symlink by default) when nnU-Net can read them as they
  are: a 200-case cohort converts in seconds and takes no extra disk space.
  Only cases that need it get a **corrected copy**: a label on another grid in
  the same world space (resampled, nearest neighbour, onto the image grid), a
  label stored as float or with scaling (rewritten as integers), a label whose
  values are remapped, an image or label whose qform and sform disagree beyond
  the tolerance (SimpleITK, which nnU-Net uses, and nibabel may then see
  different geometries), an uncompressed ``.nii`` (nnU-Net needs one file
  ending). Source files are never changed.
* Case ids are built from BIDS entities (``<Name>_<dataset>_sub-01_ses-02_
  acq-sag_T2w``) so a person can read them; the mapping file gives every case's
  split, source image(s) and label, so results map back to BIDS.
* The dataset is built in a hidden temporary folder beside the target and
  renamed into place at the end: a failure leaves no partial dataset. Every
  case is checked even after one fails, and one ``BatchError`` lists all the
  failing cases (its ``done`` is empty: nothing was written).
* ``conversion_request.json`` records the cases, options and input sizes and
  times: rerunning the same command is a no-op ("up to date"); a changed
  config, option or input file is refused naming the difference, and
  ``--overwrite`` converts again.
* nnunetv2 is imported only where needed (``dataset.json`` writer, ``--verify``
  in a subprocess), after the ``nnUNet_*`` variables are set.
"""

from __future__ import annotations

import argparse
import csv
import errno
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core import flags
from ..core import cli
from ..core.atomic import atomic_write_json, atomic_write_text
from ..core.bids import BidsName, dataset_path, is_ct_suffix, raw_root_of
from ..nnunet.dataset import (SPLITS_FILE, dataset_folder_name, find_id_conflicts, splits_record,
                          write_dataset_json)
from ..core.config import Case, check_cases, load_config, read_request, request_difference, request_record
from ..core.datalad import ensure_content, get_requested
from ..core.errors import (
    BatchError,
    ExternalToolError,
    GeometryError,
    InputError,
    MissingFileError,
    OutputError,
    TotalsegBidsError,
    UsageError,
)
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
from ..core.nifti_header import Header, read_header
from ..core.options import options_from_args, resolve_options
from ..core.parallel import finish, run_tasks

#: Without -j, cohorts of this many cases always use the process pool (benchmarks/RESULTS.md) ...
SERIAL_BELOW = 1000
#: ... and smaller ones use it when their labels hold this many voxels in all: decoding the labels is
#: the per-case work; below this the pool's start-up costs more than it saves (benchmarks/RESULTS.md).
POOL_VOXELS = 150_000_000
log = logging.getLogger(__name__)  # not __name__ under python -m

READERS = ("SimpleITKIO", "NibabelIO", "NibabelIOWithReorient")
LINK_MODES = ("symlink", "hardlink", "copy")
FILE_ENDING = ".nii.gz"
DEFAULT_NAME = "SacrumDataset"
MAPPING_TSV = "case_mapping.tsv"
MAPPING_JSON = "case_mapping.json"
#: What the dataset folder was converted from (cases, options, input sizes/times): a rerun compares it.
REQUEST_FILE = "conversion_request.json"
NNUNET_ENV = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")

_TOKEN_RE = re.compile(r"[^A-Za-z0-9-]+")
_CHANNEL_TAIL_RE = re.compile(r"_\d{4}$")


# ------------------------------------------------------------ pure helpers
def safe_token(text: str) -> str:
    """A case-id fragment: runs of characters other than letters, digits and '-'
    become one '-' (nnU-Net splits case ids from channel indices at '_').

    >>> safe_token("whole spine_v2")
    'whole-spine-v2'
    """
    return _TOKEN_RE.sub("-", text).strip("-") or "x"


def case_id(dataset_name: str, source_dataset: str, image: BidsName) -> str:
    """A readable case id from BIDS entities: ``<Name>_<dataset>_<entities>_<suffix>``.

    It never ends like a channel index (``_0000``), which nnU-Net would
    mistake for one.

    >>> case_id("SacrumDataset", "whole-spine", BidsName.parse("sub-01_ses-02_acq-sag_T2w.nii.gz"))
    'SacrumDataset_whole-spine_sub-01_ses-02_acq-sag_T2w'
    """
    cid = "_".join([dataset_name, safe_token(source_dataset), image.source().stem])
    if _CHANNEL_TAIL_RE.search(cid):
        cid += "x"
    return cid


def unique_ids(ids: Sequence[str]) -> list[str]:
    """Make ids unique by appending ``-dup2``, ``-dup3``... to repeats, in order.

    >>> unique_ids(["a", "b", "a", "a"])
    ['a', 'b', 'a-dup2', 'a-dup3']
    """
    seen: dict[str, int] = {}
    out = []
    for i in ids:
        seen[i] = seen.get(i, 0) + 1
        out.append(i if seen[i] == 1 else f"{i}-dup{seen[i]}")
    return out


def default_channel_name(suffixes: Iterable[str]) -> str:
    """The ``channel_names`` entry for the suffixes found in one channel.

    nnU-Net picks the normalisation from this name: ``CT`` (any case) selects
    CT normalisation, anything else z-scoring. So CT images are named ``CT``
    and MRI never is: one MRI suffix keeps its name, mixed MRI suffixes get the
    legacy contrasts code.

    >>> default_channel_name(["T2w"])
    'T2w'
    >>> default_channel_name(["T1w", "T2w"])
    't1_t2'
    >>> default_channel_name(["ct"])
    'CT'
    """
    from ..core.config import contrasts_code

    found = sorted(set(suffixes))
    if found and all(is_ct_suffix(s) for s in found):
        return "CT"
    if any(is_ct_suffix(s) for s in found):
        raise InputError(f"one channel mixes CT and MRI images ({', '.join(found)})", None,
                         "nnU-Net normalises CT and MRI differently: convert them as separate datasets")
    if len(found) == 1:
        return found[0]
    return contrasts_code(found) or "MRI"


def parse_labels_json(data: Any) -> tuple[dict[str, int], dict[int, int] | None]:
    """Read a ``--labels-json`` map: ``{"background": 0, "sacrum": 1}`` (the values
    the labels hold) or ``{"labels": {...}, "remap": {"25": 1, "92": 1}}``
    (source value -> nnU-Net value). Values must be consecutive from 0.

    >>> parse_labels_json({"background": 0, "sacrum": 1})
    ({'background': 0, 'sacrum': 1}, None)
    >>> parse_labels_json({"labels": {"background": 0, "sacrum": 1}, "remap": {"25": 1}})
    ({'background': 0, 'sacrum': 1}, {25: 1})
    """
    if not isinstance(data, dict):
        raise InputError("labels JSON must be an object", None, 'e.g. {"background": 0, "sacrum": 1}')
    remap = None
    labels = data
    if isinstance(data.get("labels"), dict):
        labels = data["labels"]
        if data.get("remap") is not None:
            if not isinstance(data["remap"], dict):
                raise InputError("\"remap\" must be an object of source value -> label value", None,
                                 'e.g. "remap": {"25": 1}')
            try:
                remap = {int(k): int(v) for k, v in data["remap"].items()}
            except (TypeError, ValueError):
                raise InputError("\"remap\" keys and values must be integers", None,
                                 'e.g. "remap": {"25": 1}') from None
    try:
        out = {str(k): int(v) for k, v in labels.items()}
    except (TypeError, ValueError):
        raise InputError("label values must be integers (regions are not supported here)", None,
                         'e.g. {"background": 0, "sacrum": 1}') from None
    check_label_map(out)
    if remap is not None:
        bad = sorted(set(remap.values()) - set(out.values()))
        if bad:
            raise InputError(f"remap targets {bad} are not declared label values", None,
                             "map every source value to a value of \"labels\"")
    return out, remap


def check_label_map(labels: Mapping[str, int]) -> None:
    """nnU-Net's rule: ``background`` is 0 and values are consecutive.

    >>> check_label_map({"background": 0, "a": 2})
    Traceback (most recent call last):
    ...
    totalseg_bids.core.errors.InputError: label values [0, 2] are not consecutive from 0; number them 0, 1, 2, ...
    """
    values = sorted(labels.values())
    if labels.get("background") != 0:
        raise InputError("the label map needs \"background\": 0", None, 'add "background": 0')
    if len(set(values)) != len(values) or values != list(range(len(values))):
        raise InputError(f"label values {values} are not consecutive from 0", None, "number them 0, 1, 2, ...")


def labels_from_names(names: Sequence[str]) -> dict[str, int]:
    """``--labels sacrum hip`` -> ``{"background": 0, "sacrum": 1, "hip": 2}``.

    >>> labels_from_names(["sacrum"])
    {'background': 0, 'sacrum': 1}
    """
    if "background" in names:
        raise UsageError("--labels lists the foreground names only", None, "e.g. --labels sacrum")
    if len(set(names)) != len(names):
        raise UsageError("--labels has a repeated name", None, "give each structure once")
    return {"background": 0, **{n: i + 1 for i, n in enumerate(names)}}


def label_problem(present: Iterable[int], allowed: Iterable[int], remap: Mapping[int, int] | None) -> str | None:
    """Why the values of a label map are not acceptable, or None.

    >>> label_problem([0, 1], [0, 1], None) is None
    True
    >>> label_problem([0, 255], [0, 1], None)
    'unexpected label values [255] (expected [0, 1])'
    >>> label_problem([0, 25], [0, 1], {25: 1}) is None
    True
    """
    present = {int(v) for v in present}
    if remap is not None:
        unexpected = sorted(present - set(remap) - {0})
        expected = sorted({0} | set(remap))
    else:
        unexpected = sorted(present - set(int(a) for a in allowed))
        expected = sorted(int(a) for a in allowed)
    if unexpected:
        return f"unexpected label values {unexpected[:10]} (expected {expected[:20]})"
    return None


def apply_remap(data: np.ndarray, remap: Mapping[int, int]) -> np.ndarray:
    """Map source label values to nnU-Net values with a lookup table (0 stays 0).

    >>> apply_remap(np.array([0, 25, 92]), {25: 1, 92: 1}).tolist()
    [0, 1, 1]
    """
    lut = np.zeros(max([int(data.max()) if data.size else 0, *remap]) + 1, dtype=np.uint16)
    for src, dst in remap.items():
        lut[src] = dst
    return lut[data.astype(np.int64)]


# ------------------------------------------------------------ per-case step
@dataclass
class CaseTask:
    """Everything one worker needs to place one case (picklable)."""

    case_id: str
    split: str
    images: tuple[Path, ...]
    label: Path | None
    work: Path
    link: str = "symlink"
    allowed: tuple[int, ...] = (0, 1)
    remap: dict[int, int] | None = None
    form_tolerance: float = QFORM_SFORM_TOLERANCE_MM

    @property
    def images_dir(self) -> str:
        return "imagesTs" if self.split == "TESTING" else "imagesTr"

    @property
    def labels_dir(self) -> str:
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


def _plain_header(path: Path) -> Header | None:
    """The header of a ``.nii.gz`` that :func:`load_nifti` would accept as it is (present,
    gzip, plain NIfTI, as many bytes as the header promises, 3D), or None."""
    from ..core.nifti import check_input_file

    try:
        check_input_file(path)
    except TotalsegBidsError:
        return None
    if not path.name.endswith(".nii.gz"):
        return None
    hdr = read_header(path)
    if hdr is None or len(hdr.shape) < 3 or any(s != 1 for s in hdr.shape[3:]):
        return None
    expected = hdr.offset + int(np.prod(hdr.shape)) * hdr.dtype.itemsize
    with open(path, "rb") as fh:
        fh.seek(-4, 2)
        if int.from_bytes(fh.read(4), "little") != expected % 2**32:
            return None
    return hdr


def _form_gap(hdr: Header) -> float:
    """:func:`~totalseg_bids.core.nifti.qform_sform_discrepancy` of a plain header."""
    if hdr.qform is None or hdr.sform is None:
        return 0.0
    shape = tuple(hdr.shape[:3])
    return float(np.linalg.norm(Grid(shape, hdr.qform).corners() - Grid(shape, hdr.sform).corners(), axis=1).max())


def plain_case(task: CaseTask) -> CaseRecord | None:
    """The common case, checked from headers read without nibabel: integer
    ``.nii.gz`` images and label on one grid, forms that agree, label values
    allowed and not remapped. Everything is linked; None (nothing placed)
    where any file needs :func:`checked_case` to decide or to word an error."""
    heads = [_plain_header(p) for p in task.images]
    label = _plain_header(task.label) if task.label is not None else None
    if any(h is None for h in heads) or (task.label is not None and label is None):
        return None
    grids = [Grid(tuple(h.shape[:3]), np.asarray(h.affine, dtype=float)) for h in heads]
    if any(_form_gap(h) > task.form_tolerance for h in [*heads, *([label] if label else [])]):
        return None
    if any(grid_mismatch(g, grids[0]) for g in grids[1:]):
        return None
    present = None
    if label is not None:
        if grid_mismatch(Grid(tuple(label.shape[:3]), np.asarray(label.affine, dtype=float)), grids[0]):
            return None
        try:
            present = sorted(_stream_values(task.label, label.dtype, label.offset, int(np.prod(label.shape))))
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
                raise GeometryError(f"channel {c} does not overlap channel 0 ({dataset_path(task.images[0])}) in world space",
                                    path, "register the channels first")
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


def streamable(img, path: Path) -> bool:
    """Whether a label's values can be checked slice by slice from its gzip
    stream: an unscaled native-integer array in a ``.nii.gz`` on disk."""
    from nibabel.arrayproxy import ArrayProxy

    proxy, shape = img.dataobj, img.shape
    if len(shape) < 3 or any(s != 1 for s in shape[3:]):  # label_array words the error
        return False
    if not (isinstance(proxy, ArrayProxy) and path.name.endswith(".gz")
            and str(getattr(proxy, "file_like", "")) == str(path)):
        return False
    dtype = np.dtype(proxy.dtype)
    return dtype.kind in "iu" and dtype.isnative and float(proxy.slope) == 1.0 and float(proxy.inter) == 0.0


def stream_label_values(img, path: Path) -> set[int]:
    """The values (0 included) of an integer ``.nii.gz`` label that
    :func:`streamable` accepts, decompressed in 1 MiB slices that are scanned
    and dropped: no array of the whole volume is built.

    Most labels are linked as they are, so their array is never needed: the
    check costs the decompression alone. Errors as
    :func:`~totalseg_bids.core.nifti.label_array` words them.
    """
    return _stream_values(path, np.dtype(img.dataobj.dtype), int(img.dataobj.offset), int(np.prod(img.shape)))


def _stream_values(path: Path, dtype: np.dtype, skip: int, count: int) -> set[int]:
    """:func:`stream_label_values` of ``count`` values of ``dtype`` after ``skip`` bytes."""
    from ..core.gzip_codec import codec_errors, iter_decompressed

    lo, hi, found, carry = 0, 0, set(), b""
    try:
        for piece in iter_decompressed(path, skip, skip + count * dtype.itemsize):
            buf = carry + bytes(piece) if carry else piece
            n = len(buf) - len(buf) % dtype.itemsize
            carry = bytes(buf[n:])
            arr = np.frombuffer(buf[:n], dtype)
            if arr.size:
                lo, hi = min(lo, int(arr.min())), max(hi, int(arr.max()))
                if hi > 1:
                    found |= set(np.unique(arr).tolist())
    except codec_errors() + (ValueError,) as exc:
        raise InputError(f"truncated or corrupt image data ({type(exc).__name__})", path,
                         "re-copy the file or `datalad get` it again") from None
    if lo < 0:
        raise InputError(f"label has negative values (min {lo:g})", path, "fix the label file")
    return (found | {0}) if hi > 1 else {0, hi}


# --------------------------------------------------------------- batch step
@dataclass(frozen=True)
class ConvertOptions:
    """Every option of :func:`convert` besides the config, the output folder and the dataset id and name.

    ``labels`` (foreground names for values 1, 2, ...) or ``labels_json`` (a file or
    dict, with an optional remap) set the label map, else the files' ``label-``
    entity does; ``channels`` names the channels; ``reader`` is nnU-Net's image
    reader; ``link`` how unchanged files are placed; ``datasets_path`` overrides
    the config's; ``verify`` runs nnU-Net's integrity check; ``form_tolerance``
    (mm) is the qform/sform gap above which a file is rewritten; ``jobs`` None
    picks serial or a pool from the cohort size.
    """

    labels: Sequence[str] | None = None
    labels_json: str | Path | dict | None = None
    channels: Sequence[str] | None = None
    reader: str = "SimpleITKIO"
    link: str = "symlink"
    datasets_path: str | Path | None = None
    verify: bool = False
    overwrite: bool | str = False
    jobs: int | None = None
    form_tolerance: float = QFORM_SFORM_TOLERANCE_MM
    datalad_get: bool = False

    def check(self) -> ConvertOptions:
        """Refuse option values that contradict each other before any file is read."""
        if self.reader not in READERS:
            raise UsageError(f"unknown reader {self.reader!r}", None, f"use one of {', '.join(READERS)}")
        if self.link not in LINK_MODES:
            raise UsageError(f"unknown link mode {self.link!r}", None, f"use one of {', '.join(LINK_MODES)}")
        if self.labels and self.labels_json:
            raise UsageError("--labels and --labels-json exclude each other", None, "give one of them")
        if self.form_tolerance < 0:
            raise UsageError("--form-tolerance must be >= 0", None, f"e.g. --form-tolerance {QFORM_SFORM_TOLERANCE_MM}")
        return self


@dataclass
class ConversionResult:
    """Summary of a conversion, for the CLI and for callers (``status``: ``written``, or
    ``skipped`` when the folder was already up to date)."""

    folder: Path
    num_training: int
    num_testing: int
    corrected: int
    seconds: float
    splits_written: list[Path]
    records: list[CaseRecord]
    status: str = "written"

    def record(self, dataset_id: int) -> dict:
        """The stdout record of the dataset folder."""
        return {"status": self.status, "path": str(self.folder), "dataset_id": dataset_id,
                "cases": self.num_training + self.num_testing, "training": self.num_training,
                "testing": self.num_testing, "corrected": self.corrected}


def _label_names_from_files(labels: Iterable[Path]) -> list[str]:
    names = {BidsName.parse(p).get("label") for p in labels if BidsName.try_parse(p)}
    names.discard(None)
    return sorted(names) if len(names) == 1 else ["foreground"]


def _channel_names(cases: Sequence[Case], channels: Sequence[str] | None) -> dict[str, str]:
    nchan = {len(c.images) for c in cases}
    if len(nchan) != 1:
        raise InputError(f"cases have different numbers of channels ({sorted(nchan)})", None,
                         "give every case the same number of IMAGE entries")
    n = nchan.pop()
    suffixes = [[BidsName.parse(c.images[i]).suffix for c in cases] for i in range(n)]
    if channels:
        if len(channels) != n:
            raise UsageError(f"--channels names {len(channels)} channel(s) but cases have {n}", None,
                             f"give {n} name(s)")
        for i, name in enumerate(channels):
            is_ct = all(is_ct_suffix(s) for s in suffixes[i])
            if name.casefold() == "ct" and not is_ct:
                raise UsageError(f"channel {i} holds MRI images ({', '.join(sorted(set(suffixes[i])))}) "
                                 "but is named CT, which selects CT normalisation", None,
                                 "name MRI channels by their contrast (e.g. T2w)")
            if is_ct and name.casefold() != "ct":
                log.warning("channel %d (%s) holds CT images: nnU-Net z-score normalises it; only the name "
                            "'CT' selects CT normalisation", i, name)
        return {str(i): n_ for i, n_ in enumerate(channels)}
    return {str(i): default_channel_name(s for s in suffixes[i] if s) for i in range(n)}


def _write_mapping(folder: Path, records: Sequence[CaseRecord], datasets_path: Path, nchan: int) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n")
    writer.writerow(["case_id", "split", *[f"image_{c:04d}" for c in range(nchan)], "label",
                     *[f"nnunet_image_{c:04d}" for c in range(nchan)], "nnunet_label", "actions"])
    for r in records:
        writer.writerow([r.case_id, r.split, *r.images, r.label or "", *r.nnunet_images, r.nnunet_label or "",
                         "; ".join(r.actions)])
    atomic_write_text(folder / MAPPING_TSV, buf.getvalue())
    atomic_write_json(folder / MAPPING_JSON, {
        "DATASETS_PATH": str(datasets_path),
        "cases": [{"case_id": r.case_id, "split": r.split, "images": r.images, "label": r.label,
                   "nnunet_images": r.nnunet_images, "nnunet_label": r.nnunet_label, "actions": r.actions}
                  for r in records]})


def read_mapping(folder: str | Path) -> list[dict]:
    """The cases of a converted dataset, from ``case_mapping.json``: id, split,
    source image(s) and label, and their nnU-Net file names."""
    path = Path(folder) / MAPPING_JSON
    try:
        return json.loads(path.read_text(encoding="utf-8"))["cases"]
    except (OSError, ValueError, KeyError):
        raise InputError("no readable case mapping", path, "convert the dataset with this module") from None


def verify_with_nnunet(folder: Path, processes: int = 1) -> None:
    """Run nnU-Net's ``verify_dataset_integrity`` on ``folder`` in a subprocess.

    A subprocess because nnU-Net prints freely and reads its ``nnUNet_*``
    variables at import; its output becomes our one-line error on failure.
    """
    env = dict(os.environ)
    env.setdefault("nnUNet_raw", str(folder.parent))
    env.setdefault("nnUNet_preprocessed", str(folder.parent))
    env.setdefault("nnUNet_results", str(folder.parent))
    code = ("import sys\nfrom nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity\n"
            "verify_dataset_integrity(sys.argv[1], int(sys.argv[2]))\n")
    proc = subprocess.run([sys.executable, "-c", code, str(folder), str(max(1, processes))],
                          capture_output=True, encoding="utf-8", errors="replace", env=env)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stdout + "\n" + proc.stderr).splitlines() if ln.strip()]
        errors = [ln for ln in lines if "error" in ln.lower()] or lines
        raise ExternalToolError(f"nnU-Net's verify_dataset_integrity failed ({(errors[-1] if errors else '?')[:200]})",
                                folder, "fix the cases it names (rerun with -v for nnU-Net's output)")
    log.debug(proc.stdout)


def convert(config: str | Path, path_out: str | Path | None, number: int, name: str = DEFAULT_NAME,
            options: ConvertOptions | None = None, **kwargs) -> ConversionResult:
    """Convert a data config into ``<path_out>/Dataset<NNN>_<name>/`` (see module doc).

    ``options`` (or its fields as keyword arguments): see :class:`ConvertOptions`.
    A case that fails does not stop the others from being checked; then one
    ``BatchError`` lists every failing case and nothing is written.
    """
    t0 = time.perf_counter()
    opts = resolve_options(ConvertOptions, options, kwargs).check()
    reader, link, form_tolerance = opts.reader, opts.link, opts.form_tolerance
    folder_name = dataset_folder_name(number, name)
    path_out = _output_root(path_out)
    cfg, cases = _load_cases(config, opts.datasets_path, opts.datalad_get)
    label_map, remap = _label_map(opts.labels, opts.labels_json, cases)
    channel_names = _channel_names(cases, opts.channels)
    _refuse_id_conflict(number, name, path_out)
    final = path_out / folder_name
    check_cases(cases, cfg.path)
    request = request_record(cases, {"name": name, "labels": label_map, "remap": remap or {},
                                     "channels": channel_names, "reader": reader, "link": link,
                                     "form_tolerance": form_tolerance})
    if (final.exists() or final.is_symlink()) and not opts.overwrite:
        done = _up_to_date(final, request, cfg.path)
        if done is not None:
            return done
    ids = unique_ids([case_id(name, raw_root_of(c.image).name if _in_bids(c.image) else c.image.parent.name,
                              c.name) for c in cases])
    work = _work_dir(path_out, folder_name)
    try:
        tasks = _tasks(cases, ids, work, link, tuple(sorted(label_map.values())), remap, form_tolerance)
        records = _convert_all(tasks, [str(c.image) for c in cases], opts.jobs)
        num_training = sum(r.split != "TESTING" for r in records)
        write_dataset_json(work, channel_names, label_map, num_training, FILE_ENDING, reader, name,
                           totalseg_bids={"config": str(cfg.path), "contrasts": cfg.contrasts,
                                          "link": link, "mapping": MAPPING_TSV})
        _write_mapping(work, records, cfg.datasets_path, len(channel_names))
        splits = _write_splits(work, records)
        atomic_write_json(work / REQUEST_FILE, request)
        if opts.verify:
            verify_with_nnunet(work, opts.jobs or 1)
        _move_into_place(work, final, path_out, folder_name)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    written = [final / SPLITS_FILE]
    pre = os.environ.get("nnUNet_preprocessed")
    if pre:
        atomic_write_json(Path(pre) / folder_name / SPLITS_FILE, splits)
        written.append(Path(pre) / folder_name / SPLITS_FILE)
    corrected = sum(1 for r in records if any("rewritten" in a or "resampled" in a or "compressed" in a
                                              for a in r.actions))
    return ConversionResult(final, num_training, len(records) - num_training, corrected,
                            time.perf_counter() - t0, written, records)


def _refuse_id_conflict(number: int, name: str, path_out: Path) -> None:
    """A dataset id already taken by another dataset name, here or in the nnU-Net folders, is refused."""
    conflicts = find_id_conflicts(number, name, [path_out, *[os.environ.get(v) for v in NNUNET_ENV]])
    if conflicts:
        raise OutputError(f"dataset id {number:03d} already belongs to {conflicts[0].name}", conflicts[0],
                          "choose another -dnum (or remove that dataset)")


def _output_root(path_out: str | Path | None) -> Path:
    """``--path-out``, else ``$nnUNet_raw``, as an absolute path."""
    path_out = path_out or os.environ.get("nnUNet_raw")
    if not path_out:
        raise UsageError("no output folder: --path-out is not given and nnUNet_raw is not set", None,
                         "pass --path-out DIR or export nnUNet_raw=DIR")
    return Path(path_out).expanduser().absolute()


def _load_cases(config: str | Path, datasets_path: str | Path | None, datalad_get: bool):
    """The config and its cases, refusing configs nnU-Net cannot train from;
    annexed inputs get their content (or a clear error)."""
    cfg = load_config(config, datasets_path, require=("TRAINING",))
    cases = cfg.cases(check_exists=False)  # annexed content is fetched (or refused) below
    if not cases:
        raise InputError("the config lists no cases", cfg.path, "add TRAINING/VALIDATION/TESTING entries")
    unlabelled = [c for c in cases if c.label is None and c.split != "TESTING"]
    if unlabelled:
        raise InputError(f"{len(unlabelled)} training case(s) without a label (e.g. {unlabelled[0].image})",
                         cfg.path, "use a LABEL config or object entries with a LABEL")
    if not any(c.split != "TESTING" for c in cases):
        raise InputError("no TRAINING or VALIDATION case", cfg.path, "add training cases to the config")
    all_files = [p for c in cases for p in (*c.images, *([c.label] if c.label else []))]
    ensure_content([p for p in all_files if Path(p).is_symlink() or Path(p).exists()], get=get_requested(datalad_get))
    return cfg, cfg.cases()  # every entry exists now: the same checks as without datalad


def _label_map(labels: Sequence[str] | None, labels_json: str | Path | dict | None,
               cases: Sequence[Case]) -> tuple[dict[str, int], dict[int, int] | None]:
    """The label map and remap from ``--labels-json``, ``--labels`` or the files' label- entity."""
    if labels_json is None:
        return labels_from_names(list(labels) if labels else
                                 _label_names_from_files(c.label for c in cases if c.label)), None
    if isinstance(labels_json, dict):
        data = labels_json
    else:
        try:
            data = json.loads(Path(labels_json).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise MissingFileError("labels JSON not found", labels_json, "check the path") from None
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read labels JSON ({exc})", labels_json, "fix the JSON") from None
    try:
        return parse_labels_json(data)
    except InputError as exc:
        raise InputError(exc.problem, labels_json if not isinstance(labels_json, dict) else None,
                         exc.fix) from None


def _work_dir(path_out: Path, folder_name: str) -> Path:
    """A hidden folder beside the target, renamed into place at the end."""
    try:
        path_out.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".tmp-{folder_name}-", dir=path_out))
        work.chmod(_default_dir_mode())  # mkdtemp makes 0700; the dataset is shared like any folder
    except OSError as exc:
        raise OutputError(f"cannot write ({exc.strerror})", path_out, "choose a writable --path-out") from None
    return work


def _tasks(cases: Sequence[Case], ids: Sequence[str], work: Path, link: str, allowed: tuple[int, ...],
           remap: dict[int, int] | None, form_tolerance: float) -> list[CaseTask]:
    """One task per case, and the split folders they write into."""
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (work / sub).mkdir()
    if any(c.split == "TESTING" and c.label for c in cases):
        (work / "labelsTs").mkdir()
    return [CaseTask(i, c.split, tuple(c.images), c.label, work, link, allowed, remap, form_tolerance)
            for i, c in zip(ids, cases)]


def _convert_all(tasks: Sequence[CaseTask], keys: Sequence[str], jobs: int | None) -> list[CaseRecord]:
    """Run every case; one BatchError lists every case that failed.

    Its ``done`` is empty: the cases that were placed live in the working folder,
    which the caller removes, so no output of them exists.
    """
    if jobs is None:
        jobs = _default_jobs(tasks)
    outcomes = run_tasks(convert_case, list(tasks), keys=list(keys), jobs=jobs, desc="convert")
    try:
        return finish(outcomes, "case(s)")
    except BatchError as exc:
        failed = [item for item, _msg in exc.failures]
        shown = ", ".join(failed[:5]) + (", ..." if len(failed) > 5 else "")
        raise BatchError(f"{len(failed)} of {len(outcomes)} case(s) failed, so no dataset was written: {shown}",
                         None, "fix the cases named above and rerun", failures=exc.failures) from None


def _default_jobs(tasks: Sequence[CaseTask]) -> int | None:
    """1 (serial) or None (all cores) when ``-j`` is not given, from the cohort
    size and the first label's voxel count (one header read)."""
    if len(tasks) >= SERIAL_BELOW:
        return None
    first = next((t.label for t in tasks if t.label is not None), None)
    if first is None or len(tasks) < 8:
        return 1
    head = _plain_header(first)
    try:
        voxels = int(np.prod(head.shape if head is not None else load_nifti(first, check_forms=False).shape))
    except TotalsegBidsError:  # the case itself reports it
        return 1
    return None if voxels * len(tasks) >= POOL_VOXELS else 1


def _write_splits(work: Path, records: Sequence[CaseRecord]) -> list[dict]:
    """The config's split as nnU-Net fold 0 (``splits_final.json``)."""
    splits = splits_record([r.case_id for r in records if r.split == "TRAINING"],
                           [r.case_id for r in records if r.split == "VALIDATION"])
    if not splits[0]["val"]:
        log.warning("the config has no VALIDATION case: nnU-Net fold 0 will have an empty validation set")
    atomic_write_json(work / SPLITS_FILE, splits)
    return splits


def _move_into_place(work: Path, final: Path, path_out: Path, folder_name: str) -> None:
    """Rename the finished dataset into place, replacing an older one."""
    if final.exists() or final.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f".old-{folder_name}-", dir=path_out))
        os.replace(final, old / "ds")
        os.replace(work, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(work, final)


def _up_to_date(final: Path, request: dict, config: Path | None) -> ConversionResult | None:
    """The existing conversion when ``request`` made it and every file is there;
    otherwise an OutputError naming what differs (``--overwrite`` replaces it)."""
    old = read_request(final / REQUEST_FILE)
    if old is None:
        raise OutputError("dataset folder already exists (not made by this module, or by an older version)",
                          final, "pass --overwrite to replace it")
    diff = request_difference(old, request)
    if diff:
        raise OutputError(f"dataset folder was converted from another request ({diff})", final,
                          f"pass --overwrite to convert {config or 'the config'} again, or choose another -dnum")
    try:
        cases = read_mapping(final)
    except InputError:
        cases = None
    missing = None if cases is None else [p for c in cases for p in (*c["nnunet_images"], c["nnunet_label"])
                                          if p and not (final / p).exists()]
    if cases is None or missing:
        raise OutputError(f"dataset folder is incomplete ({missing[0] if missing else MAPPING_JSON} missing)",
                          final, "pass --overwrite to convert it again")
    log.info("%s is up to date with %s; nothing to do", final, config or "the config")
    records = [CaseRecord(c["case_id"], c["split"], c["images"], c["label"], c["nnunet_images"],
                          c["nnunet_label"], c.get("actions", [])) for c in cases]
    ntr = sum(r.split != "TESTING" for r in records)
    return ConversionResult(final, ntr, len(records) - ntr, 0, 0.0, [final / SPLITS_FILE], records, "skipped")


def _default_dir_mode() -> int:
    """0o777 minus the process umask (what ``mkdir`` would have given)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask


def _in_bids(path: Path) -> bool:
    return any(p.name.startswith("sub-") for p in path.parents)


# --------------------------------------------------------------------- CLI
def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser(
        "convert_config_to_nnunet", __doc__.splitlines()[0],
        epilog="example: python -m totalseg_bids.convert_config_to_nnunet --config train_sacrum.json "
               "--path-out \"$nnUNet_raw\" -dnum 300 --verify\n"
               "then: bash scripts/train_nnunet.sh 300 3d_fullres 0")
    p.add_argument("--config", required=True, type=Path, help="data config JSON (docs/conventions.md section 4)")
    flags.add_out(p, dest="path_out", default=None, help="nnU-Net raw folder (default: $nnUNet_raw)")
    flags.add_dataset_id(p, dest="dataset_number", required=True)
    p.add_argument("-dname", "--dataset-name", default=DEFAULT_NAME, help=f"dataset name (default {DEFAULT_NAME})")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--labels", nargs="+", metavar="NAME",
                   help="foreground names for values 1, 2, ... (default: the label- entity of the files)")
    g.add_argument("--labels-json", type=Path, metavar="MAP.json",
                   help='{"background": 0, "sacrum": 1} or {"labels": {...}, "remap": {"25": 1}}')
    p.add_argument("--channels", nargs="+", metavar="NAME",
                   help="channel names (default: the image suffix; CT images 'CT'; mixed MRI the contrasts code)")
    p.add_argument("--reader", choices=READERS, default="SimpleITKIO", help="nnU-Net image reader (default SimpleITKIO)")
    p.add_argument("--link", choices=LINK_MODES, default="symlink",
                   help="how unchanged files are placed (default symlink; falls back to copy)")
    p.add_argument("--datasets-path", type=Path, default=None,
                   help="override the config's DATASETS_PATH (or set TOTALSEG_BIDS_DATASETS_PATH)")
    p.add_argument("--form-tolerance", type=float, default=QFORM_SFORM_TOLERANCE_MM, metavar="MM",
                   help="qform/sform disagreement above which a file is rewritten (default %(default)s mm)")
    p.add_argument("--verify", action="store_true", help="run nnU-Net's verify_dataset_integrity before finishing")
    cli.add_batch_args(p, jobs=True, dask=False)
    cli.add_datalad_args(p)
    return p


def _run(args: argparse.Namespace) -> int:
    res = convert(args.config, args.path_out, args.dataset_number, args.dataset_name,
                  options_from_args(ConvertOptions, args))
    # an nnU-Net raw folder kept in a datalad dataset (e.g. a project superdataset) is saved there;
    # a failed conversion writes nothing, so there is nothing to save then
    cli.save_outputs(args, [res.folder])
    log.info("%d training and %d testing case(s), %d corrected copy(ies), in %.1f s; split file: %s",
             res.num_training, res.num_testing, res.corrected, res.seconds, ", ".join(map(str, res.splits_written)))
    cli.emit("convert_config_to_nnunet", [res.record(args.dataset_number)])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)
