"""``--from-existing``: masks of a CT read from TotalSegmentator outputs made elsewhere.

Layout: ``<DIR>/<CT stem>/<class>.nii.gz`` (one file per class, TotalSegmentator
without ``--ml``), or ``<DIR>/<CT stem>.nii.gz`` (``--ml`` output, ids of the class map).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.datalad import ensure_content, get_requested
from ..core.errors import InputError, MissingFileError, UsageError
from ..core.nifti import Grid, load_label, present_values
from ..totalsegmentator import class_file
from .job import CtJob
from .masks import read_class_file, read_masks


def _exists(path: Path) -> bool:
    """Present, or an annexed file whose content is not here yet (a dangling link)."""
    return path.exists() or path.is_symlink()


def _read_folder(job: CtJob, folder: Path, ct_grid: Grid) -> dict[str, np.ndarray]:
    classes = job.options.classes
    missing = [c for c in classes if not _exists(class_file(folder, c))]
    if missing:
        raise MissingFileError(f"no {', '.join(m + '.nii.gz' for m in missing)} in this folder", folder,
                               "run TotalSegmentator with --roi_subset including these classes")
    files = [class_file(folder, c) for c in classes]
    ensure_content(files, get=get_requested(job.options.datalad_get))
    return {c: read_class_file(f, ct_grid) for c, f in zip(classes, files)}


def _read_multilabel(job: CtJob, multi: Path, ct_grid: Grid) -> dict[str, np.ndarray]:
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
    return read_masks(label, ct_grid, {c: job.class_ids[c] for c in job.options.classes})


def read_existing(job: CtJob, ct_grid: Grid) -> dict[str, np.ndarray]:
    """Masks of ``job.ct`` from a folder of earlier TotalSegmentator outputs (layout above)."""
    root = job.options.from_existing
    assert root is not None
    folder, multi = root / job.stem, root / f"{job.stem}.nii.gz"
    if folder.is_dir():
        return _read_folder(job, folder, ct_grid)
    if _exists(multi):
        return _read_multilabel(job, multi, ct_grid)
    raise MissingFileError(f"no TotalSegmentator output for this CT (looked for {folder}/ and {multi.name})",
                           job.ct, f"put the outputs in {root} as <CT stem>/<class>.nii.gz "
                           "or <CT stem>.nii.gz, or drop --from-existing")
