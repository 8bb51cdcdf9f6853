"""The images a run labels: which ones, and whether TotalSegmentator can use each."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..core.bids import CT_SUFFIXES, IMAGE_DATATYPES
from ..core.errors import InputError
from ..core.index import BidsIndex
from ..core.nifti import Grid, load_nifti
from ..totalsegmentator import MR_SUFFIXES, is_mr_task

DEFAULT_SUFFIXES = CT_SUFFIXES
#: Smallest image extent, in voxels of the model's own resolution, worth handing to TotalSegmentator.
MIN_MODEL_VOXELS = 4
CT_DATATYPES = IMAGE_DATATYPES


def default_suffixes(task: str) -> tuple[str, ...]:
    """Image suffixes a task labels: MRI contrasts for ``*_mr`` tasks, CT otherwise.

    >>> default_suffixes("total_mr"), default_suffixes("total")
    (('T1w', 'T2w'), ('CT', 'ct'))
    """
    return MR_SUFFIXES if is_mr_task(task) else DEFAULT_SUFFIXES


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
            return (f"axis {axis} spans {n * float(mm):.1f} mm, "
                    f"under {MIN_MODEL_VOXELS} voxels of the {model_mm} mm model")
    return None


def find_cts(bids_dir: Path, suffixes: Sequence[str] = DEFAULT_SUFFIXES) -> list[Path]:
    """The raw images to label (CTs, or MRIs for ``*_mr`` tasks), or a clear error when there are none."""
    files = BidsIndex.scan(bids_dir).query(suffix=list(suffixes), derivative=False, datatype=CT_DATATYPES)
    if not files:
        raise InputError(f"no images with suffix {'/'.join(suffixes)} in anat/ or ct/", bids_dir,
                         "check the dataset path and --ct-suffix")
    return [f.path for f in files]


def _stream_size(path: Path) -> int:
    """Bytes of image data the file really holds (a gzip stream is read to its end)."""
    try:
        if not path.name.endswith(".gz"):
            return path.stat().st_size
        size = 0
        with gzip.open(path, "rb") as fh:
            while chunk := fh.read(1 << 22):
                size += len(chunk)
        return size
    except (EOFError, OSError, zlib.error) as exc:
        raise InputError(f"truncated or corrupt file ({type(exc).__name__})", path,
                         "re-copy the file or `datalad get` it again") from None


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
    size = _stream_size(path)
    if size < expected:
        raise InputError(f"truncated image data ({size} of {expected} bytes)", path,
                         "re-copy the file or `datalad get` it again")
    if np.issubdtype(img.get_data_dtype(), np.floating) and not np.isfinite(np.asanyarray(img.dataobj)).all():
        raise InputError("image has NaN or infinite voxels", path, "replace them (e.g. by -1024 HU for air) first")
    return Grid.of(img), np.asarray(img.affine, float)
