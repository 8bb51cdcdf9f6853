"""CT labels with TotalSegmentator, written as BIDS derivative labels.

For every CT of a BIDS dataset (suffix ``CT``/``ct`` in ``anat/`` or ``ct/``),
run ``TotalSegmentator`` as a separate process (it rewrites the nnU-Net
environment variables of its own process), keep the asked classes and write
them on the CT's exact grid as
``derivatives/labels/sub-XX/[ses-YY/]anat/<CT stem>_label-<class>_seg.nii.gz``
(or one ``_label-<NAME>_dseg.nii.gz`` + ``_dseg.tsv`` with ``--combine``), each
with a JSON sidecar recording TotalSegmentator's version, task and flags.
Existing TotalSegmentator outputs can be imported with ``--from-existing``.
"""

from __future__ import annotations

import argparse
import difflib
import gzip
import logging
import re
import shutil
import subprocess
import tempfile
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..core import flags
from ..core import cli
from ..core.bids import CT_SUFFIXES, IMAGE_DATATYPES, derivative_path, dseg_tsv_path, label_value, split_extension
from ..core.datalad import ensure_content, get_requested
from ..core.derivatives import (ensure_dataset_description, generated_by, output_complete,
                               write_dseg_tsv, write_sidecar)
from ..core.errors import BatchError, ExternalToolError, GeometryError, InputError, MissingFileError, UsageError
from ..core.index import BidsIndex
from ..core.nifti import (Grid, Volume, grid_mismatch, grids_overlap, load_label, load_nifti, present_values,
                          resample_label, save_mask)
from ..core.options import normalise_fields, options_from_args, resolve_options
from ..core.parallel import Outcome, finish, run_tasks
from ..core.qc_hook import qc_entry

log = logging.getLogger(__name__)

EXECUTABLE = "TotalSegmentator"
DEFAULT_CLASSES = ("sacrum",)
DEFAULT_SUFFIXES = CT_SUFFIXES
#: Image suffixes of TotalSegmentator's MRI tasks (``*_mr``), labelled directly on the MRI.
MR_SUFFIXES = ("T1w", "T2w")
#: Smallest image extent, in voxels of the model's own resolution, worth handing to TotalSegmentator.
MIN_MODEL_VOXELS = 4
CT_DATATYPES = IMAGE_DATATYPES
DEVICE_RE = re.compile(r"^(gpu|cpu|mps|auto|gpu:\d+)$")
WEIGHTS_FIX = ("download the weights where there is internet (`totalseg_download_weights -t {task}`) "
               "and point TOTALSEG_HOME_DIR (or TOTALSEG_WEIGHTS_PATH) at them")
#: Words in TotalSegmentator's output that mean "could not get the weights".
_WEIGHTS_RE = re.compile(r"download|weights|connection|max retries|name resolution|failed to resolve"
                         r"|name or service not known|urlopen|nnunet_results", re.IGNORECASE)


# ============================================================ pure helpers
def pick_device(requested: str, cuda_available: bool) -> str:
    """The ``-d`` value for TotalSegmentator; ``auto`` means gpu when CUDA works.

    >>> pick_device("auto", False), pick_device("auto", True), pick_device("gpu:1", False)
    ('cpu', 'gpu', 'gpu:1')
    """
    if not DEVICE_RE.match(requested):
        raise UsageError(f"unknown device {requested!r}", None, "use gpu, gpu:N, cpu, mps or auto")
    if requested == "auto":
        return "gpu" if cuda_available else "cpu"
    return requested


def check_classes(classes: Sequence[str], known: Iterable[str], task: str) -> list[str]:
    """Refuse class names the task does not have, suggesting close ones.

    Duplicates are dropped (order kept). Names must also stay distinct once
    turned into BIDS ``label-`` values.

    >>> check_classes(["sacrum", "sacrum"], ["sacrum", "vertebrae_L5"], "total")
    ['sacrum']
    >>> check_classes(["vertebrae_l5"], ["sacrum", "vertebrae_L5"], "total")
    Traceback (most recent call last):
    ...
    totalseg_bids.core.errors.UsageError: unknown class 'vertebrae_l5' for task 'total' (close: vertebrae_L5); ...
    """
    known = list(known)
    out = list(dict.fromkeys(classes))
    if not out:
        raise UsageError("no classes given", None, "pass --classes sacrum ...")
    lower = {k.lower(): k for k in known}
    for name in out:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
            if name.lower() in lower and lower[name.lower()] not in close:
                close.insert(0, lower[name.lower()])
            hint = f" (close: {', '.join(close)})" if close else ""
            raise UsageError(f"unknown class {name!r} for task {task!r}{hint}", None,
                             f"list the classes with `TotalSegmentator --list-classes {task}`")
    values: dict[str, str] = {}
    for name in out:
        value = label_value(name)
        if value in values:
            raise UsageError(f"classes {values[value]!r} and {name!r} give the same label name "
                             f"{value!r}", None, "ask for one of them")
        values[value] = name
    return out


def totalseg_command(executable: str, ct: str | Path, out_dir: str | Path, task: str,
                     classes: Sequence[str], device: str, fast: bool) -> list[str]:
    """The command line, as TotalSegmentator documents it.

    ``--roi_subset`` only exists for the ``total*`` tasks; other tasks write
    all their classes and we keep the asked ones.

    >>> totalseg_command("TotalSegmentator", "ct.nii.gz", "/tmp/o", "total", ["sacrum"], "cpu", True)
    ['TotalSegmentator', '-i', 'ct.nii.gz', '-o', '/tmp/o', '-ta', 'total', '--roi_subset', 'sacrum', '-d', 'cpu', '--fast']
    >>> totalseg_command("TotalSegmentator", "ct.nii.gz", "/tmp/o", "body", ["skin"], "gpu", False)
    ['TotalSegmentator', '-i', 'ct.nii.gz', '-o', '/tmp/o', '-ta', 'body', '-d', 'gpu']
    """
    cmd = [str(executable), "-i", str(ct), "-o", str(out_dir), "-ta", task]
    if task.startswith("total"):
        cmd += ["--roi_subset", *classes]
    cmd += ["-d", device]
    if fast:
        cmd.append("--fast")
    return cmd


def looks_like_missing_weights(stdout: str, stderr: str) -> bool:
    """True when a failed run died fetching its weights.

    The real program prints ``Downloading model for Task N ...`` on stdout and
    dies with a connection error on stderr. Only stderr and the last line of
    stdout count, so an earlier successful download does not mislead us.

    >>> looks_like_missing_weights("Downloading model for Task 297 ...", "requests.exceptions.ConnectionError: ...")
    True
    >>> looks_like_missing_weights("Downloading model for Task 297 ...\\nDone\\n", "CUDA out of memory")
    False
    """
    tail = (stdout.strip().splitlines() or [""])[-1]
    return bool(_WEIGHTS_RE.search(stderr) or _WEIGHTS_RE.search(tail))


def default_suffixes(task: str) -> tuple[str, ...]:
    """Image suffixes a task labels: MRI contrasts for ``*_mr`` tasks, CT otherwise.

    >>> default_suffixes("total_mr"), default_suffixes("total")
    (('T1w', 'T2w'), ('CT', 'ct'))
    """
    return MR_SUFFIXES if task.endswith("_mr") else DEFAULT_SUFFIXES


def too_small(shape: Sequence[int], zooms: Sequence[float], model_mm: float) -> str | None:
    """Why an image is too small for a model working at ``model_mm``, or None.

    >>> too_small((100, 100, 1), (1, 1, 1), 1.5)
    'axis 3 has 1 voxel(s)'
    >>> too_small((10, 100, 100), (1, 1, 1), 3.0)
    'axis 1 spans 10.0 mm, under 4 voxels of the 3.0 mm model'
    >>> too_small((100, 100, 100), (1, 1, 1), 3.0) is None
    True
    """
    for axis, (n, mm) in enumerate(zip(shape[:3], zooms[:3]), start=1):
        if n < 2:
            return f"axis {axis} has {n} voxel(s)"
        if n * float(mm) < MIN_MODEL_VOXELS * model_mm:
            return f"axis {axis} spans {n * float(mm):.1f} mm, under {MIN_MODEL_VOXELS} voxels of the {model_mm} mm model"
    return None


def last_line(text: str, limit: int = 200) -> str:
    """The last non-empty line of a program's output, shortened.

    >>> last_line("a\\n  b  \\n\\n")
    'b'
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:limit] if lines else ""


def binarise(data: np.ndarray, value: int | None = None) -> np.ndarray:
    """A 0/1 uint8 mask: voxels equal to ``value``, or all non-zero voxels.

    >>> binarise(np.array([0, 2, 25])).tolist(), binarise(np.array([0, 2, 25]), 25).tolist()
    ([0, 1, 1], [0, 0, 1])
    """
    data = np.asarray(data)
    mask = data == value if value is not None else data > 0
    return mask.astype(np.uint8)


def combine_masks(masks: Mapping[str, np.ndarray], ids: Mapping[str, int]) -> np.ndarray:
    """One label map from binary masks, each class painted with its id.

    TotalSegmentator's classes do not overlap; should they, the later class
    in ``masks`` wins, as in TotalSegmentator's own multi-label output.

    >>> combine_masks({"a": np.array([1, 1, 0]), "b": np.array([0, 1, 1])}, {"a": 25, "b": 27}).tolist()
    [25, 27, 27]
    """
    out: np.ndarray | None = None
    for name, mask in masks.items():
        if out is None:
            out = np.zeros(np.shape(mask), np.uint16 if max(ids.values()) > 255 else np.uint8)
        out[np.asarray(mask) > 0] = ids[name]
    if out is None:
        raise ValueError("no masks to combine")
    return out


# ============================================================ TotalSegmentator lookups
def load_class_map(task: str) -> dict[int, str] | None:
    """``{id: name}`` of ``task`` from the installed TotalSegmentator, or None
    when TotalSegmentator is not importable (classes then go unchecked)."""
    try:
        from totalsegmentator.map_to_binary import class_map
    except ImportError:
        log.info("TotalSegmentator is not importable here: class names and ids are not checked")
        return None
    if task not in class_map:
        close = difflib.get_close_matches(task, list(class_map), n=5, cutoff=0.5)
        hint = f" (close: {', '.join(close)})" if close else ""
        raise UsageError(f"unknown TotalSegmentator task {task!r}{hint}", None,
                         "list the tasks with `TotalSegmentator --list-tasks`")
    return {int(k): str(v) for k, v in class_map[task].items()}


def totalseg_version() -> str | None:
    """The installed TotalSegmentator's version (recorded in sidecars)."""
    from importlib import metadata

    try:
        return metadata.version("TotalSegmentator")
    except metadata.PackageNotFoundError:
        return None


def find_executable() -> str:
    """The ``TotalSegmentator`` program on PATH, or a one-line error."""
    exe = shutil.which(EXECUTABLE)
    if exe is None:
        raise ExternalToolError(f"the {EXECUTABLE} program is not on PATH", EXECUTABLE,
                                "pip install TotalSegmentator (in the environment on PATH), "
                                "or pass --from-existing with outputs made elsewhere")
    return exe


def is_package_program(exe: str | Path) -> bool:
    """True when ``exe`` is the installed TotalSegmentator package's own command
    (its console script, or a pyenv shim to it): only then do the package's
    config and weight folders, which we can read, describe what it will load.
    Another program of that name (another environment, a wrapper) is left to
    report for itself."""
    import sysconfig

    path = Path(exe).resolve()
    if path.parent == Path(sysconfig.get_path("scripts")).resolve():
        return True
    try:
        head = path.read_bytes()[:4096].decode("utf-8", "replace")
    except OSError:
        return False
    return "from totalsegmentator.bin" in head or ("pyenv" in head and "exec" in head)


def resolve_device(requested: str) -> str:
    """Turn ``auto`` into gpu/cpu by asking torch (imported only then)."""
    if requested != "auto":
        return pick_device(requested, False)
    try:
        import torch

        cuda = bool(torch.cuda.is_available())
    except ImportError:
        cuda = False
    device = pick_device(requested, cuda)
    log.info("--device auto: using %s", device)
    return device


# ============================================================ options
@dataclass(frozen=True)
class SegmentOptions:
    """Everything :func:`segment_dataset` takes besides the raw dataset and the output folder.

    ``classes``/``task``/``fast``/``device``: what TotalSegmentator runs
    (``device`` ``auto``: gpu when CUDA works); ``ct_suffixes``: the images to
    label (None: CT, or MRI contrasts for ``*_mr`` tasks); ``combine``: one
    ``_dseg`` of that name instead of one ``_seg`` per class;
    ``from_existing``: a folder of outputs made elsewhere, read instead of
    running the program; ``overwrite`` (``"manual"`` also replaces
    hand-corrected labels), ``naming``, ``qc_dir``; ``jobs``/``executor``/
    ``scheduler``: the batch (default one CT at a time: TotalSegmentator uses
    every core or the whole GPU by itself); ``datalad_get``.

    >>> SegmentOptions(classes=["sacrum", "sacrum"]).classes
    ('sacrum', 'sacrum')
    >>> SegmentOptions(device="tpu").check()
    Traceback (most recent call last):
    ...
    totalseg_bids.core.errors.UsageError: unknown device 'tpu'; use gpu, gpu:N, cpu, mps or auto
    """

    classes: tuple[str, ...] = DEFAULT_CLASSES
    task: str = "total"
    fast: bool = False
    device: str = "auto"
    ct_suffixes: tuple[str, ...] | None = None
    combine: str | None = None
    from_existing: Path | None = None
    overwrite: bool | str = False
    naming: str = "neuropoly"
    qc_dir: Path | None = None
    jobs: int | None = None
    executor: str = "local"
    scheduler: Any = field(default=None, compare=False)
    datalad_get: bool = False

    def __post_init__(self) -> None:
        # folders absolute: the options travel to workers unchanged
        normalise_fields(self, tuples=("classes", "ct_suffixes"), paths=("from_existing", "qc_dir"), absolute=True)

    def check(self) -> SegmentOptions:
        """Refuse values no CT could use, before the dataset is read (usage errors, exit 2)."""
        pick_device(self.device, False)
        if not self.classes:
            raise UsageError("no classes given", None, "pass --classes sacrum ...")
        if self.combine:
            label_value(self.combine)
        return self


# ============================================================ per-CT step
@dataclass(frozen=True)
class CtJob:
    """Everything one CT needs; picklable so it can travel to a worker.

    ``options`` are the run's, resolved (classes checked, device chosen, no
    scheduler); the other fields are what the installed TotalSegmentator says
    about the task."""

    ct: Path
    raw_root: Path
    out_root: Path
    options: SegmentOptions = SegmentOptions()
    class_ids: Mapping[str, int] = field(default_factory=dict)  # empty: no class map
    version: str | None = None
    task_ids: tuple[int, ...] = ()
    model_mm: float | None = None  # TotalSegmentator's resolution for this task
    weights: str | None = None  # description of locally built weights, when used

    @property
    def stem(self) -> str:
        return split_extension(self.ct.name)[0]


def planned_outputs(job: CtJob) -> list[Path]:
    """The label files this CT gets (sidecars and ``.tsv`` go beside them)."""
    if job.options.combine:
        return [derivative_path(job.ct, job.out_root, job.options.combine, kind="dseg", naming=job.options.naming)]
    return [derivative_path(job.ct, job.out_root, c, kind="seg", naming=job.options.naming) for c in job.options.classes]


def outputs_complete(job: CtJob) -> bool:
    """All labels and their sidecars (and the dseg's ``.tsv``) are present."""
    outs = planned_outputs(job)
    if not all(output_complete(p) for p in outs):
        return False
    if job.options.combine:
        return dseg_tsv_path(outs[0]).is_file()
    return True


def check_ct(path: Path, model_mm: float | None = None) -> tuple[Grid, np.ndarray]:
    """Header checks plus a full read of the compressed stream, so a truncated
    or corrupt CT fails here (one line, before any output) and not inside
    TotalSegmentator; integer images are never held in memory, float ones
    are read once to refuse NaN voxels (TotalSegmentator would turn them
    into garbage labels without a word)."""
    img = load_nifti(path)
    shape = img.shape
    if len(shape) < 3 or (len(shape) > 3 and any(s != 1 for s in shape[3:])):
        raise InputError(f"expected a 3D image, got shape {tuple(shape)}", path,
                         "extract one 3D volume (e.g. fslroi or nibabel)")
    small = too_small(shape, img.header.get_zooms(), model_mm) if model_mm else None
    if small:
        raise InputError(f"image too small for TotalSegmentator's {model_mm} mm model ({small})", path,
                         "label a larger field of view, or drop this image")
    expected = int(img.header.get_data_offset()) + int(np.prod(shape)) * img.get_data_dtype().itemsize
    try:
        if path.name.endswith(".gz"):
            size = 0
            with gzip.open(path, "rb") as fh:
                while chunk := fh.read(1 << 22):
                    size += len(chunk)
        else:
            size = path.stat().st_size
    except (EOFError, OSError, zlib.error) as exc:
        raise InputError(f"truncated or corrupt file ({type(exc).__name__})", path,
                         "re-copy the file or `datalad get` it again") from None
    if size < expected:
        raise InputError(f"truncated image data ({size} of {expected} bytes)", path,
                         "re-copy the file or `datalad get` it again")
    if np.issubdtype(img.get_data_dtype(), np.floating) and not np.isfinite(np.asanyarray(img.dataobj)).all():
        raise InputError("image has NaN or infinite voxels", path, "replace them (e.g. by -1024 HU for air) first")
    return Grid.of(img), np.asarray(img.affine, float)


def _read_masks(label: Volume, ct_grid: Grid, values: Mapping[str, int | None]) -> dict[str, np.ndarray]:
    """0/1 masks (one per ``values`` entry: that id, or None for non-zero) from
    one loaded TotalSegmentator file, on the CT grid: resampled by nearest
    neighbour when its grid differs (e.g. outputs made on a resampled CT)."""
    data, grid, path = label.data, label.grid, label.path
    if not grids_overlap(grid, ct_grid):
        raise GeometryError("does not overlap the CT's field of view", path,
                            "check that this TotalSegmentator output belongs to this CT")
    why = grid_mismatch(grid, ct_grid)
    if why is not None:
        log.info("%s: not on the CT grid (%s); resampling by nearest neighbour", path, why)
    out = {}
    for name, value in values.items():
        mask = binarise(data, value)
        if why is not None:
            mask = resample_label(mask, grid.affine, ct_grid, mode="nearest")
        out[name] = mask.astype(np.uint8, copy=False)
    return out


def _read_class_file(path: Path, ct_grid: Grid) -> np.ndarray:
    """One ``<class>.nii.gz``: must be 0/1 (a soft or multi-valued file is not what we think it is)."""
    return _read_masks(load_label(path, binary=True), ct_grid, {path.name: None})[path.name]


def read_existing(job: CtJob, ct_grid: Grid) -> dict[str, np.ndarray]:
    """Masks of ``job.ct`` from a folder of earlier TotalSegmentator outputs.

    Layout: ``<DIR>/<CT stem>/<class>.nii.gz`` (one file per class), or
    ``<DIR>/<CT stem>.nii.gz`` (``--ml`` output, ids of the class map).
    """
    assert job.options.from_existing is not None
    folder = job.options.from_existing / job.stem
    multi = job.options.from_existing / f"{job.stem}.nii.gz"
    if folder.is_dir():
        missing = [c for c in job.options.classes if not (folder / f"{c}.nii.gz").exists()
                   and not (folder / f"{c}.nii.gz").is_symlink()]
        if missing:
            raise MissingFileError(f"no {', '.join(m + '.nii.gz' for m in missing)} in this folder", folder,
                                   "run TotalSegmentator with --roi_subset including these classes")
        files = [folder / f"{c}.nii.gz" for c in job.options.classes]
        ensure_content(files, get=get_requested(job.options.datalad_get))
        return {c: _read_class_file(f, ct_grid) for c, f in zip(job.options.classes, files)}
    if multi.exists() or multi.is_symlink():
        if not job.class_ids:
            raise UsageError("reading a multi-label TotalSegmentator file needs its class map", multi,
                             "pip install TotalSegmentator, or give a folder with one <class>.nii.gz per class")
        ensure_content([multi], get=get_requested(job.options.datalad_get))
        label = load_label(multi)  # read once: for the id check and for the masks
        unknown = sorted(present_values(label.data) - {0} - set(job.task_ids))
        if unknown:
            raise InputError(f"values {unknown[:10]} are not class ids of task {job.options.task!r} in "
                             f"TotalSegmentator {job.version or ''}".rstrip(), multi,
                             "pass the --task (and TotalSegmentator version) the file was made with")
        return _read_masks(label, ct_grid, {c: job.class_ids[c] for c in job.options.classes})
    raise MissingFileError(f"no TotalSegmentator output for this CT (looked for {folder}/ and {multi.name})",
                           job.ct, f"put the outputs in {job.options.from_existing} as <CT stem>/<class>.nii.gz "
                           "or <CT stem>.nii.gz, or drop --from-existing")


def run_totalsegmentator(job: CtJob, ct_grid: Grid) -> dict[str, np.ndarray]:
    """Run the program on one CT into a scratch folder and read its masks."""
    exe = find_executable()
    with tempfile.TemporaryDirectory(prefix="totalseg_bids-") as tmp:
        out_dir = Path(tmp) / "out"
        cmd = totalseg_command(exe, job.ct, out_dir, job.options.task, job.options.classes, job.options.device, job.options.fast)
        log.info("%s", " ".join(cmd))
        try:
            proc = subprocess.run(cmd, capture_output=True, encoding="utf-8", errors="replace")
        except OSError as exc:
            raise ExternalToolError(f"cannot start {EXECUTABLE} ({exc.strerror})", exe,
                                    "reinstall TotalSegmentator (pip install TotalSegmentator)") from None
        log.debug("TotalSegmentator stdout:\n%s\nstderr:\n%s", proc.stdout, proc.stderr)
        if proc.returncode != 0:
            if looks_like_missing_weights(proc.stdout, proc.stderr):
                raise ExternalToolError(
                    f"TotalSegmentator weights for task {job.options.task!r}"
                    f"{' (--fast)' if job.options.fast else ''} are not installed and could not be downloaded "
                    f"({last_line(proc.stderr, 120) or 'no network'})", job.ct,
                    WEIGHTS_FIX.format(task=job.options.task))
            raise ExternalToolError(
                f"TotalSegmentator failed (exit {proc.returncode}: "
                f"{last_line(proc.stderr) or last_line(proc.stdout) or 'no output'})", job.ct,
                "rerun with -vv to see its full output")
        missing = [c for c in job.options.classes if not (out_dir / f"{c}.nii.gz").is_file()]
        if missing:
            raise ExternalToolError(f"TotalSegmentator wrote no {', '.join(m + '.nii.gz' for m in missing)}",
                                    job.ct, "check the class names against "
                                    f"`TotalSegmentator --list-classes {job.options.task}`")
        return {c: _read_class_file(out_dir / f"{c}.nii.gz", ct_grid) for c in job.options.classes}


def _tool_entry(job: CtJob) -> dict:
    if job.options.from_existing is not None:
        return generated_by("TotalSegmentator", None, Task=job.options.task, Classes=list(job.options.classes),
                            Description=f"imported from existing TotalSegmentator outputs "
                                        f"({job.options.from_existing.name}/)")
    cmd = totalseg_command(EXECUTABLE, "<image>", "<out>", job.options.task, job.options.classes, job.options.device, job.options.fast)
    extra = {"Weights": job.weights} if job.weights else {}
    return generated_by("TotalSegmentator", job.version, Task=job.options.task, Classes=list(job.options.classes),
                        ClassIds={c: job.class_ids[c] for c in job.options.classes if c in job.class_ids},
                        Fast=job.options.fast, Device=job.options.device, Flags=cmd[5:], **extra)


def _add_qc(job: CtJob, outputs: Sequence[Path]) -> None:
    """Hand each new label to the QC report, when one was asked for."""
    for out in outputs:
        qc_entry(job.options.qc_dir, job.ct, out, "segment_ct",
                 meta={"task": job.options.task, "classes": list(job.options.classes), "fast": job.options.fast,
                       "source": "existing" if job.options.from_existing else "TotalSegmentator"})


def output_records(job: CtJob, status: str) -> list[dict]:
    """One result per label file of this CT: ``status``, ``path``, the CT and the label name
    (a class, or the ``--combine`` name)."""
    names = [job.options.combine] if job.options.combine else list(job.options.classes)
    return [{"status": status, "path": str(out), "ct": str(job.ct), "label": name}
            for name, out in zip(names, planned_outputs(job))]


def segment_ct(job: CtJob) -> list[dict]:
    """Label one CT; skip it when its outputs are complete (unless overwrite).

    Inputs are checked and every mask is read before the first write, so a bad
    input leaves no partial output. Sidecars are written last. Returns
    :func:`output_records`.
    """
    outputs = planned_outputs(job)
    if not job.options.overwrite and outputs_complete(job):
        log.info("%s: outputs complete, skipped", job.ct)
        return output_records(job, "skipped")
    from ..core.provenance import refuse_manual_overwrite
    for out in outputs:  # a hand-corrected label survives --overwrite
        refuse_manual_overwrite(out, job.options.overwrite)
    ct_grid, ct_affine = check_ct(job.ct, job.model_mm)
    masks = (read_existing(job, ct_grid) if job.options.from_existing is not None
             else run_totalsegmentator(job, ct_grid))
    generated = [_tool_entry(job), generated_by("totalseg_bids", Step="segment_ct")]
    ensure_dataset_description(job.out_root, description="CT labels from TotalSegmentator (totalseg_bids.segment_ct)")
    if job.options.combine:
        out = outputs[0]
        ids = dict(job.class_ids) or {c: i + 1 for i, c in enumerate(job.options.classes)}
        save_mask(combine_masks(masks, ids), ct_affine, out)
        write_dseg_tsv(out, {ids[c]: c for c in job.options.classes})
        write_sidecar(out, [job.ct], generated, spatial_reference=job.ct, raw_root=job.raw_root)
    else:
        for cls, out in zip(job.options.classes, outputs):
            save_mask(masks[cls], ct_affine, out)
            write_sidecar(out, [job.ct], generated, spatial_reference=job.ct, raw_root=job.raw_root)
    for cls, mask in masks.items():
        if not mask.any():
            log.warning("%s: %s is empty (not in the field of view?)", job.ct, cls)
    _add_qc(job, outputs)
    return output_records(job, "written")


def _segment_task(job: CtJob) -> list[dict]:
    """Module-level task for the process pool."""
    return segment_ct(job)


# ============================================================ batch step
def default_out_root(path_img: str | Path) -> Path:
    """``<path-img>/derivatives/labels`` (docs/conventions.md section 2)."""
    return Path(path_img).absolute() / "derivatives" / "labels"


def find_cts(path_img: Path, suffixes: Sequence[str] = DEFAULT_SUFFIXES) -> list[Path]:
    """The raw images to label (CTs, or MRIs for ``*_mr`` tasks), or a clear error when there are none."""
    files = BidsIndex.scan(path_img).query(suffix=list(suffixes), derivative=False, datatype=CT_DATATYPES)
    if not files:
        raise InputError(f"no images with suffix {'/'.join(suffixes)} in anat/ or ct/", path_img,
                         "check the dataset path and --ct-suffix")
    return [f.path for f in files]


def segment_dataset(path_img: str | Path, path_out: str | Path | None = None,
                    options: SegmentOptions | None = None, **kwargs) -> list[dict]:
    """Label every CT of ``path_img`` into ``path_out`` (default ``<path_img>/derivatives/labels``).

    ``options``: a :class:`SegmentOptions`, or its fields as keyword arguments.
    Returns one record per label file (``status``, ``path``, ``ct``, ``label``).
    Every CT runs even when some fail; then one BatchError lists the failures
    and carries the records of the CTs that completed in ``.done``.
    """
    opts = resolve_options(SegmentOptions, options, kwargs).check()
    path_img = Path(path_img).absolute()
    out_root = Path(path_out).absolute() if path_out else default_out_root(path_img)
    if opts.from_existing is not None and not opts.from_existing.is_dir():
        raise MissingFileError("--from-existing folder not found", opts.from_existing, "check the path")
    scheduler = opts.scheduler  # stays here: the jobs' options travel to the workers without it
    opts, jobs_list = _plan_jobs(path_img, out_root, opts)
    todo = [j for j in jobs_list if opts.overwrite or not outputs_complete(j)]
    if todo and opts.from_existing is None:
        if is_package_program(find_executable()):  # one clear error up front rather than one per CT
            check_weights(opts.task, opts.fast, opts.classes)
    if todo and opts.datalad_get:
        ensure_content([j.ct for j in todo], get=True)
    jobs = opts.jobs
    if jobs is None and opts.from_existing is None:
        jobs = 1  # TotalSegmentator uses all cores / the whole GPU by itself
    outcomes = run_tasks(_segment_task, jobs_list, keys=[str(j.ct.relative_to(path_img)) for j in jobs_list],
                         jobs=jobs, executor=opts.executor, scheduler=scheduler, desc="segment_ct")
    return finish_segment(outcomes, opts.task, path_img)


def _plan_jobs(path_img: Path, out_root: Path, opts: SegmentOptions) -> tuple[SegmentOptions, list[CtJob]]:
    """The options resolved once, and one job per image carrying them: classes checked against the installed
    TotalSegmentator's class map, the device chosen, the datalad choice read, no scheduler."""
    class_map = load_class_map(opts.task)
    ids: dict[str, int] = {}
    if class_map is not None:
        classes = check_classes(opts.classes, class_map.values(), opts.task)
        by_name = {v: k for k, v in class_map.items()}
        ids = {c: by_name[c] for c in classes}
    else:
        classes = check_classes(opts.classes, opts.classes, opts.task)
        if opts.combine:
            log.info("--combine without TotalSegmentator's class map: ids 1..%d in --classes order", len(classes))
    cts = find_cts(path_img, opts.ct_suffixes or default_suffixes(opts.task))
    model_mm, weights = _task_facts(opts.task, opts.fast)
    existing = opts.from_existing is not None
    resolved = replace(opts, classes=tuple(classes), scheduler=None, datalad_get=get_requested(opts.datalad_get),
                       device=opts.device if existing else resolve_device(opts.device))
    version = totalseg_version()
    return resolved, [CtJob(ct=ct, raw_root=path_img, out_root=out_root, options=resolved, class_ids=ids,
                            version=version, task_ids=tuple(sorted(class_map)) if class_map else (),
                            model_mm=model_mm, weights=None if existing else weights)
                      for ct in cts]


def _task_facts(task: str, fast: bool) -> tuple[float | None, str | None]:
    """The model resolution of ``task`` and, when the weights in use were built
    locally by totalseg_bids, their description (recorded in the sidecars)."""
    try:
        from totalsegmentator.config import get_totalseg_dir

        from ..totalsegmentator.tasks import model_spacing
    except ImportError:
        return None, None
    stamp = Path(get_totalseg_dir()) / "totalseg_bids_tiny_weights.json"
    weights = None
    if stamp.is_file():
        import json

        weights = json.loads(stamp.read_text(encoding="utf-8")).get("description")
    return model_spacing(task, fast), weights


def check_weights(task: str, fast: bool, classes: Sequence[str]) -> None:
    """One error before any image when the task's weight folders are missing
    (TotalSegmentator would try, and fail, to download them once per image)."""
    try:
        from ..totalsegmentator.tasks import missing_models
    except ImportError:
        return
    try:
        missing = missing_models(task, fast, classes)
    except ImportError:
        return  # TotalSegmentator not importable here: the program reports for itself
    if missing:
        names = ", ".join(f"{m.task_id} ({m.folder.name})" for m in missing)
        raise ExternalToolError(f"TotalSegmentator weights for task {task!r}{' (--fast)' if fast else ''} "
                                f"are not installed: model {names}", missing[0].folder.parent,
                                WEIGHTS_FIX.format(task=task))


def finish_segment(outcomes: Sequence[Outcome], task: str = "total",
                   where: str | Path | None = None) -> list[dict]:
    """The label records of every CT, or one error: when every CT failed for want of weights,
    one line says so instead of the same line per CT; else a BatchError whose ``done``
    holds the records of the CTs that completed.

    >>> finish_segment([Outcome("a", True, [{"status": "written", "path": "a_seg.nii.gz"}])])
    [{'status': 'written', 'path': 'a_seg.nii.gz'}]
    """
    failed = [o for o in outcomes if not o.ok]
    if len(failed) > 1 and len(failed) == len(outcomes) and all(
            "totalseg_download_weights" in (o.error or "") for o in failed):
        raise ExternalToolError(f"TotalSegmentator weights for task {task!r} are not installed and could "
                                f"not be downloaded ({len(failed)} CTs not segmented)", where,
                                WEIGHTS_FIX.format(task=task))
    try:
        per_ct = finish(outcomes, "CT images")
    except BatchError as exc:
        exc.done = [record for records in exc.done for record in records]  # one per label file
        raise
    return [record for records in per_ct for record in records]


# ============================================================ CLI
EPILOG = """\
examples:
  python -m totalseg_bids.segment_ct --path-img ds --classes sacrum vertebrae_L5 --fast -d auto
  python -m totalseg_bids.segment_ct --path-img ds --classes sacrum hip_left hip_right --combine pelvis
  python -m totalseg_bids.segment_ct --path-img ds --from-existing /data/totalseg_out

--from-existing DIR layout (TotalSegmentator outputs made elsewhere), per CT, either
  DIR/<CT stem>/<class>.nii.gz   one file per class (TotalSegmentator without --ml), or
  DIR/<CT stem>.nii.gz           one multi-label file (TotalSegmentator --ml; ids of --task)
where <CT stem> is the CT file name without .nii.gz, e.g. DIR/sub-01_ses-01_CT/sacrum.nii.gz.

Weights: TotalSegmentator looks for them under TOTALSEG_HOME_DIR (default ~/.totalsegmentator)
or TOTALSEG_WEIGHTS_PATH; fetch them once with `totalseg_download_weights -t total`.
"""


def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser("segment_ct", __doc__.splitlines()[0], epilog=EPILOG)
    flags.add_bids_dir(p, dest="path_img", required=True, help="raw BIDS dataset with the CT images")
    p.add_argument("--classes", nargs="+", default=list(DEFAULT_CLASSES), metavar="CLASS",
                   help="TotalSegmentator class names to keep (default: sacrum)")
    p.add_argument("--task", default="total",
                   help="TotalSegmentator task (default: total; total_mr labels MRI directly)")
    p.add_argument("--fast", action="store_true", help="TotalSegmentator's 3 mm model (--fast)")
    flags.add_device(p, spelling="totalsegmentator", help="auto (GPU when CUDA is available), cpu, mps, cuda or cuda:N")
    p.add_argument("--ct-suffix", nargs="+", default=None, metavar="SUFFIX", dest="ct_suffixes",
                   help="file suffixes of the images to label (default: CT ct; T1w T2w for *_mr tasks)")
    flags.add_out(p, dest="path_out", default=None, help="derivative folder (default: <bids-dir>/derivatives/labels)")
    p.add_argument("--combine", metavar="NAME", default=None,
                   help="write one <CT>_label-NAME_dseg.nii.gz (+ .tsv, TotalSegmentator ids) "
                        "instead of one _seg per class")
    p.add_argument("--from-existing", type=Path, metavar="DIR", default=None,
                   help="import TotalSegmentator outputs from DIR instead of running it (layout below)")
    p.add_argument("--qc", type=Path, metavar="DIR", default=None, dest="qc_dir", help="add each label to the QC report in DIR")
    cli.add_batch_args(p)
    cli.add_naming_arg(p)
    cli.add_datalad_args(p)
    return p


def _run(args: argparse.Namespace) -> int:
    options = options_from_args(SegmentOptions, args)
    out_root = Path(args.path_out).absolute() if args.path_out else default_out_root(args.path_img)
    # the CTs that succeeded are saved even when others failed (rerunning retries those)
    with cli.saving(args, [out_root]):
        results = cli.report("segment_ct", lambda: segment_dataset(args.path_img, args.path_out, options))
    written = sum(r["status"] == "written" for r in results)
    log.info("%d label file(s) written, %d skipped", written, len(results) - written)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)
