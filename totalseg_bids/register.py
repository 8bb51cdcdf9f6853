"""Bring CT-derived labels into MRI space (issue 4).

Labels are made on the CT (TotalSegmentator, manual); training needs them on
every MRI of the same subject and session. Four ways to get them there:

* ``header`` (default): resample through the NIfTI headers (world
  coordinates) onto the MRI grid, in-process; right when the scanners share a
  frame of reference and the patient did not move.
* ``rigid`` / ``affine``: register the CT image (moving) to the MRI (fixed)
  with Mattes mutual information in SimpleITK, starting from the headers, then
  send the label through that transform; corrects the small misalignments
  header-only transfer leaves. The transform is saved beside the output
  (``<output stem>_xfm.txt``, ITK format, LPS, fixed=MRI -> moving=CT) so it
  can be re-applied with ITK, SimpleITK or ``antsApplyTransforms``.
* ``sct``: ``sct_register_multimodal -identity 1 -x nn`` exactly as a
  spinalcordtoolbox user runs it, in a scratch folder.

``python -m totalseg_bids.register --path-img <bids> [--label sacrum] [--method rigid]``
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .core import cli
from .core.atomic import atomic_path, ensure_writable_dir
from .core.bids import (
    BidsName,
    dataset_root_of,
    derivative_path,
    label_value,
    raw_root_of,
    sidecar_path,
    split_extension,
)
from .core.datalad import dataset_of, ensure_content, get_requested, save_outputs
from .core.derivatives import (
    ensure_dataset_description,
    generated_by,
    output_complete,
    read_dseg_tsv,
    write_dseg_tsv,
    write_sidecar,
)
from .core.errors import ExternalToolError, GeometryError, InputError, MissingFileError, UsageError
from .core.index import BidsFile, BidsIndex
from .core.nifti import (
    Grid,
    Volume,
    grid_mismatch,
    grids_overlap,
    load_grid,
    load_image,
    load_label,
    load_nifti,
    present_values,
    read_data,
    resample_label,
    same_grid,
    save_mask,
    touches_edge,
)
from .core.parallel import raise_for_failures, run_tasks

log = logging.getLogger(__name__)

METHODS = ("header", "rigid", "affine", "sct")
INTERPOLATIONS = ("nearest", "label")
DEFAULT_CONTRASTS = ("T1w", "T2w")
DEFAULT_CT_SUFFIXES = ("CT", "ct")
DEFAULT_LABEL = "sacrum"
SCT_COMMAND = "sct_register_multimodal"
SCT_TIMEOUT_S = 1800
#: CT window (HU) fed to registration: soft tissue to bone, air and metal clipped,
#: so mutual information is driven by anatomy rather than the table or streaks.
CT_WINDOW_HU = (-200.0, 1000.0)
#: Registration works on a CT resampled to at least this spacing (mm): MRI grids
#: are coarser anyway, and it makes the moving-image gradients 8x cheaper.
REGISTRATION_MIN_SPACING_MM = 2.0
#: Fixed seed and one thread: ITK's threaded metric sums in a varying order,
#: so only single-threaded registration gives bit-identical transforms across
#: runs and ``-j`` values (measured: no slower on 2 cores; parallelism comes
#: from ``-j`` over subjects).
REGISTRATION_SEED = 20240601
REGISTRATION_THREADS = 1
REGISTRATION_SAMPLING = 0.2
_RAS_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


# ============================================================ pure functions
def ras_lps(matrix: np.ndarray) -> np.ndarray:
    """Convert a 4x4 world transform between RAS (nibabel) and LPS (ITK).

    The conversion is its own inverse.

    >>> m = np.eye(4); m[:3, 3] = [1.0, 2.0, 3.0]
    >>> ras_lps(m)[:3, 3].tolist()
    [-1.0, -2.0, 3.0]
    >>> bool(np.allclose(ras_lps(ras_lps(m)), m))
    True
    """
    return _RAS_LPS @ np.asarray(matrix, float) @ _RAS_LPS


def moved_label_affine(label_affine: np.ndarray, ct_from_mri: np.ndarray) -> np.ndarray:
    """The label affine that makes header resampling apply ``ct_from_mri``.

    ``ct_from_mri`` maps an MRI world point to the CT world point that holds
    the same anatomy (RAS). Resampling reads ``label[inv(A) @ T @ y]`` for each
    MRI point ``y``, which is header resampling with ``A' = inv(T) @ A``: one
    code path (bounding-box cropping, per-label linear) for every method.

    >>> a = np.diag([2.0, 2.0, 2.0, 1.0])
    >>> bool(np.allclose(moved_label_affine(a, np.eye(4)), a))
    True
    >>> t = np.eye(4); t[0, 3] = 5.0
    >>> float(moved_label_affine(a, t)[0, 3])
    -5.0
    """
    return np.linalg.inv(np.asarray(ct_from_mri, float)) @ np.asarray(label_affine, float)


def extract_class(data: np.ndarray, value: int, path: str | Path | None = None) -> np.ndarray:
    """The binary (uint8) mask of one class of a multi-class map.

    An absent value is an error (a silently empty label would poison training).

    >>> extract_class(np.array([0, 25, 27, 25]), 25).tolist()
    [0, 1, 0, 1]
    """
    mask = np.asarray(data) == int(value)
    if not mask.any():
        present = sorted(int(v) for v in np.unique(data) if v != 0)
        raise InputError(f"label value {int(value)} is absent from this map (present: {present[:12]})",
                         path, "pass a value (or name) the map contains, see its _dseg.tsv")
    return mask.astype(np.uint8)


def class_value(classes: dict[int, str], name: str, path: str | Path | None = None) -> int:
    """The index of class ``name`` in a ``_dseg.tsv`` table.

    Names match exactly or in their BIDS-entity spelling (``vertebraeL5`` for
    ``vertebrae_L5``), because the output name is spelled that way.

    >>> class_value({25: "sacrum", 27: "vertebrae_L5"}, "vertebraeL5")
    27
    """
    for index, cname in classes.items():
        if cname == name:
            return int(index)
    wanted = label_value(name)
    for index, cname in classes.items():
        if label_value(cname) == wanted:
            return int(index)
    raise InputError(f"class {name!r} is not in this lookup table (has: {', '.join(list(classes.values())[:12])})",
                     path, "pass a class name listed there, or --label-value")


def label_flags(mask: np.ndarray) -> dict[str, bool]:
    """Sidecar keys for suspicious transfers: empty, or cut by the MRI field of view.

    >>> label_flags(np.zeros((3, 3, 3)))
    {'EmptyLabel': True}
    >>> m = np.zeros((3, 3, 3)); m[0, 1, 1] = 1
    >>> label_flags(m)
    {'TouchesFieldOfViewEdge': True}
    """
    if not np.any(mask):
        return {"EmptyLabel": True}
    return {"TouchesFieldOfViewEdge": True} if touches_edge(mask) else {}


def pick_ct_label(mri: BidsName, candidates: Sequence[Path]) -> Path:
    """Choose the CT label of ``mri`` among the same session's candidates.

    Several CTs in one session: the one whose ``acq``/``run`` match the MRI's
    wins; otherwise the choice is ambiguous and we refuse to guess.

    >>> mri = BidsName.parse("sub-01_acq-a_T2w.nii.gz")
    >>> pick_ct_label(mri, [Path("sub-01_acq-a_CT_label-s_seg.nii.gz"),
    ...                     Path("sub-01_acq-b_CT_label-s_seg.nii.gz")]).name
    'sub-01_acq-a_CT_label-s_seg.nii.gz'
    """
    if len(candidates) == 1:
        return Path(candidates[0])
    names = {Path(c): BidsName.parse(Path(c).name) for c in candidates}
    matching = [c for c, n in names.items() if all(n.get(k) == mri.get(k) for k in ("acq", "run"))]
    if len(matching) == 1:
        return matching[0]
    listed = ", ".join(sorted(Path(c).name for c in candidates))
    raise InputError(f"{len(candidates)} CT labels for this session ({listed}) and "
                     f"{'none' if not matching else 'several'} match the MRI's acq/run",
                     mri.filename, "keep one CT per session or give the CT the MRI's acq-/run- entities")


# ----------------------------------------------------------- SimpleITK layer
def to_sitk(data: np.ndarray, affine: np.ndarray):
    """A float32 SimpleITK image with the geometry of (data, RAS affine).

    We build it from nibabel's array and affine of record rather than letting
    ITK read the file, because ITK and nibabel disagree on qform vs sform.
    """
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(data, np.float32).transpose(2, 1, 0)))
    lps = _RAS_LPS @ np.asarray(affine, float)
    spacing = np.sqrt((lps[:3, :3] ** 2).sum(axis=0))
    img.SetSpacing([float(s) for s in spacing])
    img.SetOrigin([float(o) for o in lps[:3, 3]])
    img.SetDirection([float(d) for d in (lps[:3, :3] / spacing).ravel()])
    return img


def transform_to_ras(transform) -> np.ndarray:
    """4x4 RAS ``ct_from_mri`` matrix of a SimpleITK linear transform (LPS)."""
    import SimpleITK as sitk

    if isinstance(transform, sitk.CompositeTransform):
        transform.FlattenTransform()
        if transform.GetNumberOfTransforms() != 1:
            raise ExternalToolError("registration returned a composite transform", None,
                                    "report this with the input files")
        transform = transform.GetNthTransform(0)
    tx = sitk.AffineTransform(3)
    tx.SetMatrix(transform.GetMatrix())
    tx.SetCenter(transform.GetCenter())
    tx.SetTranslation(transform.GetTranslation())
    a = np.array(tx.GetMatrix(), float).reshape(3, 3)
    c = np.array(tx.GetCenter(), float)
    m = np.eye(4)
    m[:3, :3] = a
    m[:3, 3] = np.array(tx.GetTranslation(), float) + c - a @ c
    return ras_lps(m)


def _registration_moving(ct: Volume):
    """CT windowed, smoothed and resampled to >= 2 mm (anti-aliased)."""
    import SimpleITK as sitk

    moving = to_sitk(np.clip(ct.data, *CT_WINDOW_HU), ct.affine)
    old = np.array(moving.GetSpacing())
    new = np.maximum(old, REGISTRATION_MIN_SPACING_MM)
    if np.allclose(old, new):
        return moving
    sigma = [float(np.sqrt(max(n * n - o * o, 0.0)) / 2.355) for o, n in zip(old, new)]
    smooth = sitk.SmoothingRecursiveGaussian(moving, sigma)
    size = [int(np.ceil(n * o / s)) for n, o, s in zip(moving.GetSize(), old, new)]
    return sitk.Resample(smooth, size, sitk.Transform(), sitk.sitkLinear, moving.GetOrigin(),
                         [float(s) for s in new], moving.GetDirection(), CT_WINDOW_HU[0], sitk.sitkFloat32)


def register_ct_to_mri(ct: Volume, mri: Volume, kind: str = "rigid", seed: int = REGISTRATION_SEED):
    """Rigid or affine SimpleITK transform (LPS) mapping MRI points to CT points.

    Mattes mutual information (CT and MRI intensities are unrelated), initial
    transform = identity in world space (the headers), three resolution levels
    (shrink 4/2/1, smoothing 2/1/0 mm), regular-step gradient descent with
    physical-shift scales, 20 % random sampling with a fixed seed.
    """
    import SimpleITK as sitk

    if kind not in ("rigid", "affine"):
        raise UsageError(f"unknown registration kind {kind!r}", None, "use rigid or affine")
    fixed = to_sitk(mri.data, mri.affine)
    moving = _registration_moving(ct)
    initial = sitk.Euler3DTransform() if kind == "rigid" else sitk.AffineTransform(3)
    centre = fixed.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2.0 for s in fixed.GetSize()])
    initial.SetCenter(centre)
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(REGISTRATION_SAMPLING, seed)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(learningRate=2.0, minStep=1e-3, numberOfIterations=200,
                                                 relaxationFactor=0.5, gradientMagnitudeTolerance=1e-6)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([4, 2, 1])
    reg.SetSmoothingSigmasPerLevel([2.0, 1.0, 0.0])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetInitialTransform(initial, inPlace=False)
    reg.SetNumberOfThreads(REGISTRATION_THREADS)
    previous = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(REGISTRATION_THREADS)  # the pyramid filters too
    try:
        result = reg.Execute(fixed, moving)
    except RuntimeError as exc:
        raise ExternalToolError(f"SimpleITK registration failed ({str(exc).splitlines()[-1][:160]})",
                                mri.path, "check that the CT and MRI show the same anatomy, or use "
                                "--method header") from None
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(previous)
    log.debug("%s: %s after %d iterations, metric %.4f", mri.path, kind, reg.GetOptimizerIteration(),
              reg.GetMetricValue())
    return result


def transform_record(transform) -> dict:
    """The transform as sidecar JSON: ITK type and parameters, enough to rebuild
    it (``sitk.<Type>()``, ``SetFixedParameters``, ``SetParameters``)."""
    return {"Type": transform.GetName(), "Parameters": [float(v) for v in transform.GetParameters()],
            "FixedParameters": [float(v) for v in transform.GetFixedParameters()]}


def write_transform(transform, path: Path) -> Path:
    """Save a SimpleITK transform atomically (ITK text format for ``.txt``)."""
    import SimpleITK as sitk

    with atomic_path(path) as tmp:
        sitk.WriteTransform(transform, str(tmp))
    return path


# ----------------------------------------------------------------- SCT layer
def run_sct(label: Path, mri_path: Path, mri_grid: Grid, interp: str = "nearest") -> np.ndarray:
    """Transfer ``label`` with ``sct_register_multimodal -identity 1`` into a
    scratch folder and return its output array (on the MRI grid).

    SCT leaves side files (``*_inv``, ``warp_*``) next to its output; the
    scratch folder takes them all and is removed.
    """
    exe = shutil.which(SCT_COMMAND)
    if exe is None:
        raise ExternalToolError(f"{SCT_COMMAND} not found on PATH (--method sct needs spinalcordtoolbox)",
                                SCT_COMMAND, "install spinalcordtoolbox and activate it, "
                                "or use --method header (same result, in-process)")
    with tempfile.TemporaryDirectory(prefix="totalseg_bids_sct_") as scratch:
        out = Path(scratch) / "out.nii.gz"
        cmd = [exe, "-i", str(label), "-d", str(mri_path), "-identity", "1",
               "-x", "nn" if interp == "nearest" else "linear", "-o", str(out)]
        log.info("running %s", " ".join(cmd))
        try:
            proc = subprocess.run(cmd, cwd=scratch, capture_output=True, text=True, timeout=SCT_TIMEOUT_S,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise ExternalToolError(f"{SCT_COMMAND} timed out after {SCT_TIMEOUT_S} s", label,
                                    "run it by hand to see why") from None
        if proc.returncode != 0 or not out.exists():
            tail = " ".join((proc.stderr or proc.stdout or "").split())[-200:]
            raise ExternalToolError(f"{SCT_COMMAND} failed (exit {proc.returncode}: {tail})", label,
                                    "run the command by hand to see the full message")
        img = load_nifti(out, check_forms=False)
        data = read_data(img, out, dtype=np.float32)
        why = grid_mismatch(Grid.of(img), mri_grid, atol=1e-2)
        if why:
            raise ExternalToolError(f"{SCT_COMMAND} output is not on the MRI grid ({why})", mri_path,
                                    "check the spinalcordtoolbox version")
    if interp == "label":
        return (data > 0.5).astype(np.uint8)
    return np.rint(data).clip(0, None).astype(np.uint16 if data.max() > 255 else np.uint8)


# ============================================================ per-pair step
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
        from .qc import add_entry
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
                   raw_root: str | Path | None = None) -> TransferResult:
    """Put the label ``ct_label_path`` onto the grid of ``mri_path`` and write ``out_path``.

    ``value`` extracts one class of a multi-class map; ``kind='dseg'`` keeps
    all classes (``classes`` is then the lookup table written beside it).
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
    from .core.provenance import refuse_manual_overwrite
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
    if not grids_overlap(label.grid, mri_grid):
        raise GeometryError("the label's field of view and the MRI's do not overlap at all in world space",
                            mri_path, f"check that {ct_label_path.name} and this MRI are of the same scan "
                            "session and that their headers are right")
    values = sorted(present_values(data) - {0}) if kind == "dseg" else [1]
    tool: dict = {"Method": used_method, "Interpolation": interp}
    if value is not None:
        tool["LabelValue"] = int(value)
    transform = None
    if own_label:
        out = data.copy() if same_grid(label.grid, mri_grid) else resample_label(
            data, label.affine, mri_grid, mode=interp, values=values)
    elif method == "header":
        out = resample_label(data, label.affine, mri_grid, mode=interp, values=values)
    elif method in ("rigid", "affine"):
        import SimpleITK as sitk

        if ct_image is None:
            raise MissingFileError(f"--method {method} needs the CT image of this label, not found", ct_label_path,
                                   "put the CT in the raw dataset (sub-XX/[ses-YY/]anat|ct/) or use --method header")
        ct = load_image(ct_image)
        if not same_grid(ct.grid, label.grid):
            raise GeometryError(f"label is not on its CT's grid ({grid_mismatch(ct.grid, label.grid)})",
                                ct_label_path, f"re-create the label on {ct_image.name}")
        t_reg = time.perf_counter()
        transform = register_ct_to_mri(ct, load_image(mri_path), method)
        ct_from_mri = transform_to_ras(transform)
        out = resample_label(data, moved_label_affine(label.affine, ct_from_mri), mri_grid,
                             mode=interp, values=values)
        tool.update({"SimpleITKVersion": sitk.Version_VersionString(), "Metric": "MattesMutualInformation",
                     "Seed": REGISTRATION_SEED,
                     "TransformFile": None if bids_named else xfm_path.name,
                     "Transform": transform_record(transform),
                     "TransformDirection": "MRI (fixed) to CT (moving) points, ITK LPS",
                     "RegistrationSeconds": round(time.perf_counter() - t_reg, 2)})
    else:  # sct
        with tempfile.TemporaryDirectory(prefix="totalseg_bids_lbl_") as tmp:
            source = ct_label_path
            if value is not None or not np.array_equal(data, label.data):
                source = Path(tmp) / f"{split_extension(ct_label_path.name)[0]}_class-{value}.nii.gz"
                save_mask(data, label.affine, source)
            out = run_sct(source, mri_path, mri_grid, interp)
        x = "nn" if interp == "nearest" else "linear"
        tool["Command"] = f"{SCT_COMMAND} -i <label> -d <MRI> -identity 1 -x {x}"

    flags = label_flags(out)
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


# ============================================================== batch step
@dataclass(frozen=True)
class LabelSpec:
    """Which label to transfer, from the CLI's --label / --label-value / --labels-dseg.

    ``name`` is the structure in the output name; ``value`` a class to extract;
    ``dseg`` the multi-class map's name; ``keep_dseg`` transfers all classes.
    """

    name: str = DEFAULT_LABEL
    value: int | None = None
    dseg: str | None = None
    keep_dseg: bool = False

    @property
    def kind(self) -> str:
        return "dseg" if self.keep_dseg else "seg"


@dataclass(frozen=True)
class Pair:
    """One planned transfer (picklable); ``error`` is a pairing problem to report."""

    mri: str
    out: str
    ct_label: str | None = None
    ct_image: str | None = None
    value: int | None = None
    kind: str = "seg"
    classes: tuple[tuple[int, str], ...] | None = None
    own_label: bool = False
    method: str = "header"
    interp: str = "nearest"
    overwrite: bool = False
    qc_dir: str | None = None
    raw_root: str | None = None
    datalad_get: bool = False
    error: tuple[str, str | None, str] | None = None

    @property
    def key(self) -> str:
        return Path(self.mri).name


def needed_inputs(pair: Pair) -> list[str]:
    """The files a transfer reads: the MRI, the CT label, and the CT image for rigid/affine."""
    ct_image = pair.ct_image if pair.method in ("rigid", "affine") else None
    return [p for p in (pair.mri, pair.ct_label, ct_image) if p]


def transfer_pair(pair: Pair) -> dict:
    """The batch task (module level, picklable): one MRI."""
    if pair.error is not None:
        raise InputError(*pair.error)
    ensure_content(needed_inputs(pair), get=pair.datalad_get)
    result = transfer_label(pair.ct_label, pair.mri, pair.out, method=pair.method, interp=pair.interp,
                            ct_image=pair.ct_image, value=pair.value, kind=pair.kind,
                            classes=dict(pair.classes) if pair.classes else None, own_label=pair.own_label,
                            overwrite=pair.overwrite, qc_dir=pair.qc_dir, raw_root=pair.raw_root)
    return asdict(result)


def _is_label_of(f: BidsFile, name: str, kinds: Iterable[str]) -> bool:
    """``f`` is label ``name`` (neuropoly ``label-``, or bids ``label-``/``desc-`` for dseg)."""
    n = f.name
    if n.deriv_suffix not in kinds:
        return False
    wanted = label_value(name)
    return n.get("label") == wanted or (n.deriv_suffix == "dseg" and n.get("desc") == wanted)


def _dseg_table(path: Path) -> dict[int, str] | None:
    tsv = path.with_name(split_extension(path.name)[0] + ".tsv")
    if not tsv.is_file():
        return None
    try:
        return read_dseg_tsv(tsv)
    except (OSError, ValueError, IndexError):
        raise InputError("unreadable _dseg.tsv (expected columns index, name)", tsv, "fix the table") from None


def _resolve_source(spec: LabelSpec, labels: list[BidsFile]) -> tuple[list[Path], int | None, dict | None, str | None]:
    """CT label files for one session, and the class value to extract.

    Returns (candidates, value, classes, problem). A binary label of the
    structure wins; else a multi-class map whose table (or --label-value)
    provides the class.
    """
    if not spec.keep_dseg and spec.value is None:
        binary = [f.path for f in labels if _is_label_of(f, spec.name, ("seg", "mask"))]
        if binary and spec.dseg is None:
            return binary, None, None, None
    dsegs = [f for f in labels if f.name.deriv_suffix == "dseg"
             and (spec.dseg is None or _is_label_of(f, spec.dseg, ("dseg",)))]
    if not dsegs:
        return [], None, None, None
    if spec.keep_dseg or spec.value is not None:
        chosen = [f.path for f in dsegs]
        table = _dseg_table(chosen[0]) if len(chosen) == 1 else None
        return chosen, spec.value, table, None
    # by name: the dsegs whose lookup table has the class
    found: list[tuple[Path, int, dict]] = []
    for f in dsegs:
        table = _dseg_table(f.path)
        if table is None:
            continue
        try:
            found.append((f.path, class_value(table, spec.name, f.path), table))
        except InputError:
            continue
    if not found:
        where = ", ".join(f.path.name for f in dsegs)
        return [], None, None, f"no CT label {spec.name!r}, and no _dseg.tsv of {where} has that class"
    values = {v for _, v, _ in found}
    return [p for p, _, _ in found], (values.pop() if len(values) == 1 else None), found[0][2], None


def plan_pairs(path_img: Path, path_label: Path, path_out: Path, spec: LabelSpec,
               contrasts: Sequence[str] = DEFAULT_CONTRASTS, ct_suffixes: Sequence[str] = DEFAULT_CT_SUFFIXES,
               naming: str = "neuropoly", method: str = "header", interp: str = "nearest",
               overwrite: bool = False, qc_dir: Path | None = None, datalad_get: bool = False) -> list[Pair]:
    """Pair every MRI with its CT label (same subject and session, acq/run aware).

    Pairing problems become :class:`Pair` items carrying an error, so they are
    reported with the other failures while the good pairs still run.
    """
    raw = BidsIndex.scan(path_img)
    label_index = BidsIndex.scan(path_label)
    mris = raw.query(suffix=list(contrasts), derivative=False)
    if not mris:
        raise InputError(f"no MRI image with suffix {' or '.join(contrasts)}", path_img,
                         "check --path-img and --contrasts")
    cts = raw.query(suffix=list(ct_suffixes), derivative=False)
    ct_labels = label_index.query(suffix=list(ct_suffixes), derivative=True)
    own_labels = {f.path.name: f.path for f in label_index.query(suffix=list(contrasts), derivative=True)}
    common = {"method": method, "interp": interp, "overwrite": overwrite, "raw_root": str(path_img),
                  "qc_dir": str(qc_dir) if qc_dir else None, "datalad_get": datalad_get}
    pairs: list[Pair] = []

    def plan_one(m: BidsFile, out: Path) -> Pair:
        # a label drawn on this MRI itself (legacy layout) wins over the CT
        own = None
        for nm in ("neuropoly", "bids"):
            cand = m.name.derivative(spec.name, kind=spec.kind, naming=nm).filename
            if cand in own_labels and own_labels[cand] != out:
                own = own_labels[cand]
                break
        if own is not None and spec.value is None:
            table = _dseg_table(own) if spec.keep_dseg else None
            return Pair(str(m.path), str(out), str(own), kind=spec.kind, own_label=True,
                        classes=tuple(sorted(table.items())) if table else None, **common)
        session_labels = [f for f in ct_labels if f.subject == m.subject and f.session == m.session]
        candidates, value, table, problem = _resolve_source(spec, session_labels)
        if not candidates:
            expected = [derivative_path(c.path, path_label, spec.dseg or spec.name,
                                        kind="dseg" if (spec.dseg or spec.value) else "seg")
                        for c in cts if c.subject == m.subject and c.session == m.session]
            err = (f"{problem or 'no CT label'} (for {m.path.name} in {path_label})",
                   str(expected[0]) if expected else str(m.path),
                   "run the CT segmentation first, or check --path-label / --label")
            return Pair(str(m.path), str(out), error=err, **common)
        try:
            chosen = pick_ct_label(m.name, candidates)
        except InputError as exc:
            return Pair(str(m.path), str(out), error=(exc.problem, str(m.path), exc.fix or ""), **common)
        from_dseg = BidsName.parse(chosen.name).deriv_suffix == "dseg"
        if value is None and spec.value is None and not spec.keep_dseg and from_dseg:
            value = class_value(_dseg_table(chosen) or {}, spec.name, chosen)
        if spec.keep_dseg or spec.value is not None:
            table = _dseg_table(chosen)
        ct_image = _ct_image_of(chosen, cts)
        return Pair(str(m.path), str(out), str(chosen), str(ct_image) if ct_image else None,
                    value=value, kind=spec.kind,
                    classes=tuple(sorted(table.items())) if (spec.keep_dseg and table) else None, **common)

    for m in mris:
        out = derivative_path(m.path, path_out, spec.name, kind=spec.kind, naming=naming)
        try:
            pairs.append(plan_one(m, out))
        except InputError as exc:  # an unreadable table, a class missing: this MRI only
            pairs.append(Pair(str(m.path), str(out), error=(exc.problem, exc.path, exc.fix or ""), **common))
    return pairs


def _ct_image_of(label: Path, cts: list[BidsFile]) -> Path | None:
    """The raw CT a CT label was made on (same entities), or None."""
    raw_name = BidsName.parse(label.name).raw().filename
    for c in cts:
        if c.path.name == raw_name:
            return c.path
    return None


def explicit_pair(mri: Path, ct_label: Path, path_img: Path, path_out: Path, spec: LabelSpec,
                  naming: str = "neuropoly", **common) -> Pair:
    """A user-given (MRI, CT label) pair: same checks, no discovery."""
    for p in (mri, ct_label):
        if not (p.exists() or p.is_symlink()):
            raise MissingFileError("file not found", p, "check the path")
    ln = BidsName.parse(ct_label.name)
    if not ln.is_derivative:
        raise InputError("not a label file name (no _seg/_dseg/_mask suffix)", ct_label,
                         "name it <CT stem>_label-<name>_seg.nii.gz")
    value, table = spec.value, None
    if ln.deriv_suffix == "dseg":
        table = _dseg_table(ct_label)
        if value is None and not spec.keep_dseg:
            if table is None:
                raise InputError("multi-class map without a _dseg.tsv", ct_label, "pass --label-value")
            value = class_value(table, spec.name, ct_label)
    try:
        cts = BidsIndex.scan(path_img).query(derivative=False)
    except InputError:
        cts = []
    ct_image = _ct_image_of(ct_label, cts)
    out = derivative_path(mri, path_out, spec.name, kind=spec.kind, naming=naming)
    return Pair(str(mri), str(out), str(ct_label), str(ct_image) if ct_image else None, value=value,
                kind=spec.kind, classes=tuple(sorted(table.items())) if (spec.keep_dseg and table) else None,
                raw_root=str(path_img), **common)


def register_dataset(path_img: str | Path, path_label: str | Path | None = None, path_out: str | Path | None = None,
                     spec: LabelSpec = LabelSpec(), method: str = "header", interp: str = "nearest",
                     contrasts: Sequence[str] = DEFAULT_CONTRASTS,
                     ct_suffixes: Sequence[str] = DEFAULT_CT_SUFFIXES, naming: str = "neuropoly",
                     overwrite: bool = False, jobs: int | None = None, executor: str = "local",
                     scheduler=None, qc_dir: str | Path | None = None, datalad_get: bool = False,
                     datalad_save: bool = False, mri: str | Path | None = None,
                     ct_label: str | Path | None = None, save_message: str | None = None) -> list[dict]:
    """Transfer the CT labels of a whole dataset (or one explicit pair) to MRI space.

    Failures of single MRIs are collected and raised together as a
    BatchError after the others finished (and were saved).
    """
    path_img = Path(path_img)
    if not path_img.is_dir():
        raise MissingFileError("BIDS dataset folder not found", path_img, "check --path-img")
    path_label = Path(path_label) if path_label else path_img / "derivatives" / "labels"
    path_out = Path(path_out) if path_out else path_img / "derivatives" / "reg-labels"
    if method not in METHODS or interp not in INTERPOLATIONS:
        raise UsageError(f"unknown method/interpolation {method!r}/{interp!r}", None,
                         f"use --method {'|'.join(METHODS)} and --interp {'|'.join(INTERPOLATIONS)}")
    if method == "sct" and shutil.which(SCT_COMMAND) is None:
        raise ExternalToolError(f"{SCT_COMMAND} not found on PATH (--method sct needs spinalcordtoolbox)",
                                SCT_COMMAND, "install spinalcordtoolbox, or use --method header")
    get = get_requested(datalad_get)
    common = {"method": method, "interp": interp, "overwrite": overwrite,
                  "qc_dir": str(qc_dir) if qc_dir else None, "datalad_get": get}
    if (mri is None) != (ct_label is None):
        raise UsageError("--mri and --ct-label go together", None, "give both, or neither for the whole dataset")
    if mri is not None:
        pairs = [explicit_pair(Path(mri), Path(ct_label), path_img, path_out, spec, naming, **common)]
    else:
        if not path_label.is_dir():
            raise MissingFileError("label folder not found", path_label,
                                   "run the CT segmentation first or pass --path-label")
        pairs = plan_pairs(path_img, path_label, path_out, spec, contrasts, ct_suffixes, naming, method,
                           interp, overwrite, Path(qc_dir) if qc_dir else None, get)
    # one check before any work: one error line naming the files and `datalad get`, or one fetch
    ensure_content(list(dict.fromkeys(p for pair in pairs if pair.error is None for p in needed_inputs(pair))),
                   get=get)
    ensure_writable_dir(path_out)
    outcomes = run_tasks(transfer_pair, pairs, keys=[p.key for p in pairs], jobs=jobs, executor=executor,
                         scheduler=scheduler, desc="register")
    results = [o.value for o in outcomes if o.ok]
    if datalad_save:
        written = [r for r in results if r["status"] == "written"]
        files: list[str] = []
        for r in written:
            files += [r["output"], str(sidecar_path(r["output"]))] + ([r["transform"]] if r["transform"] else [])
        if files:
            files.append(str(path_out / "dataset_description.json"))
            save_outputs(dataset_of(path_out), files, save_message or f"totalseg_bids.register: {len(written)} "
                                                                      f"label(s) transferred to MRI space ({method})")
    raise_for_failures(outcomes, "MRI images")
    return results


# ===================================================================== CLI
def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser("register", __doc__.splitlines()[0], epilog=(
        "examples:\n"
        "  python -m totalseg_bids.register --path-img ds --label sacrum\n"
        "  python -m totalseg_bids.register --path-img ds --labels-dseg total --label sacrum --method rigid -j 2\n"
        "  python -m totalseg_bids.register --path-img ds --label-value 25 --label-name sacrum --interp label"))
    p.add_argument("--path-img", required=True, type=Path, help="raw BIDS dataset (MRI and CT images)")
    p.add_argument("--path-label", type=Path, default=None,
                   help="CT labels (default <path-img>/derivatives/labels)")
    p.add_argument("--path-out", type=Path, default=None,
                   help="output derivative folder (default <path-img>/derivatives/reg-labels)")
    p.add_argument("--label", default=None,
                   help=f"structure to transfer (default {DEFAULT_LABEL}): its binary CT label, "
                        "else the class of that name in a _dseg map")
    p.add_argument("--label-value", type=int, default=None, help="class value to extract from a _dseg map")
    p.add_argument("--label-name", default=None, help="output structure name for --label-value")
    p.add_argument("--labels-dseg", default=None, metavar="NAME",
                   help="multi-class CT map label-NAME_dseg: alone, transfer all its classes as a _dseg; "
                        "with --label/--label-value, extract one class from it")
    p.add_argument("--method", choices=METHODS, default="header",
                   help="header: through the NIfTI headers (default); rigid/affine: SimpleITK mutual "
                        "information registration of CT to MRI; sct: sct_register_multimodal -identity 1")
    p.add_argument("--interp", choices=INTERPOLATIONS, default="nearest",
                   help="nearest (default) or label: per-label linear then argmax/threshold 0.5")
    p.add_argument("--contrasts", nargs="+", default=list(DEFAULT_CONTRASTS), metavar="SUFFIX",
                   help="MRI suffixes to process (default T1w T2w)")
    p.add_argument("--ct-suffix", nargs="+", default=list(DEFAULT_CT_SUFFIXES), metavar="SUFFIX",
                   help="CT suffixes (default CT ct)")
    p.add_argument("--mri", type=Path, default=None, help="one MRI file (with --ct-label): an explicit pair")
    p.add_argument("--ct-label", type=Path, default=None, help="the CT label for --mri")
    p.add_argument("--qc", type=Path, default=None, metavar="DIR", help="add each output to the QC report in DIR")
    cli.add_batch_args(p)
    cli.add_naming_arg(p)
    cli.add_datalad_args(p)
    return p


def spec_from_args(args: argparse.Namespace) -> LabelSpec:
    """Turn the label options into a :class:`LabelSpec` (usage errors exit 2)."""
    if args.label_value is not None:
        if args.label and args.label_name and args.label != args.label_name:
            raise UsageError("--label and --label-name disagree", None, "give one structure name")
        if args.label_value <= 0:
            raise UsageError("--label-value must be > 0", None, "e.g. --label-value 25")
        name = args.label_name or args.label
        if not name:
            raise UsageError("--label-value needs --label-name", None, "e.g. --label-value 25 --label-name sacrum")
        return LabelSpec(name=name, value=args.label_value, dseg=args.labels_dseg)
    if args.label_name and not args.label:
        raise UsageError("--label-name goes with --label-value", None, "or use --label NAME")
    if args.labels_dseg and not args.label:
        return LabelSpec(name=args.labels_dseg, dseg=args.labels_dseg, keep_dseg=True)
    name = args.label or DEFAULT_LABEL
    label_value(name)  # validates the name
    return LabelSpec(name=name, dseg=args.labels_dseg)


def _run(args: argparse.Namespace) -> int:
    import json

    spec = spec_from_args(args)
    results = register_dataset(
        args.path_img, args.path_label, args.path_out, spec, method=args.method, interp=args.interp,
        contrasts=args.contrasts, ct_suffixes=args.ct_suffix, naming=args.naming, overwrite=args.overwrite,
        jobs=args.jobs, executor=args.executor, scheduler=args.scheduler, qc_dir=args.qc,
        datalad_get=args.datalad_get, datalad_save=args.datalad_save, mri=args.mri, ct_label=args.ct_label,
        save_message=args.command_line)
    for r in results:
        print(json.dumps(r, sort_keys=True))
    written = sum(r["status"] == "written" for r in results)
    log.info("%d written, %d skipped", written, len(results) - written)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)


if __name__ == "__main__":
    raise SystemExit(main())
