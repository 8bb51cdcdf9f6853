"""When a stage may skip an output: it is complete, not merely present.

A killed copy, a full disk or a bad ``datalad get`` leaves a file that exists
but is shorter than its header promises. Skipping it would keep the damage
forever, so "done" means: the NIfTI is whole (gzip trailer/size check of
:func:`gzip_size_matches`, no full decode), its
sidecar exists and, when the caller knows them, names the same inputs.

API for stages: ``if is_done(out, sources, overwrite): skip`` ; a damaged
output is logged as a warning and redone. :func:`output_problem` gives the
reason without logging.
"""

from __future__ import annotations

import gzip
import json
import logging
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .bids import sidecar_path
from .folders import in_derivatives

log = logging.getLogger(__name__)


def _source_names(sources: Iterable[str | Path]) -> set[str]:
    """File names of sources (BIDS URIs or paths), robust to the raw-root spelling.

    >>> sorted(_source_names(["bids::sub-01/anat/a.nii.gz", "/x/b.nii.gz"]))
    ['a.nii.gz', 'b.nii.gz']
    """
    return {Path(str(s).split("::", 1)[-1]).name for s in sources}


def gzip_size_matches(path: str | Path, img) -> bool:
    """Whether a ``.nii.gz`` holds exactly as many bytes as its header promises.

    The gzip trailer stores the uncompressed size (mod 2**32); a truncated copy
    ends in arbitrary bytes instead. This catches truncation without
    decompressing the file, so every stage can afford it on every input.
    Files made of several gzip members are not checked (their trailer is the
    last member's only).
    """
    hdr = img.header
    offset = getattr(img.dataobj, "offset", None)  # the header's vox_offset as nibabel reads it
    offset = int(hdr.get_data_offset() if offset is None else offset)
    expected = offset + int(np.prod(img.shape)) * hdr.get_data_dtype().itemsize
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        if fh.tell() < 18:
            return False
        fh.seek(-4, 2)
        stored = int.from_bytes(fh.read(4), "little")
    if stored == expected % 2**32:
        return True
    with gzip.open(path, "rb") as gz:  # rare multi-member or padded files: decompress to be sure
        try:
            gz.seek(expected)
            return gz.read(1) == b"" and gz.tell() == expected
        except (EOFError, OSError, zlib.error):
            return False


def output_problem(nifti_path: str | Path, sources: Iterable[str | Path] | None = None) -> str | None:
    """Why ``nifti_path`` is not a finished output, or None when it is.

    Returns ``"missing"`` when the file is absent, otherwise a short reason
    (truncated, no sidecar, sidecar names other inputs).
    """
    import nibabel as nib

    path = Path(nifti_path)
    if not path.is_file():
        return "missing"
    if path.stat().st_size == 0:
        return "empty file"
    try:
        img: Any = nib.load(str(path))  # a NIfTI image: dataobj, get_data_dtype
        if path.name.endswith(".gz") and not gzip_size_matches(path, img):
            return "truncated (its size does not match its header)"
        if not path.name.endswith(".gz"):
            need = int(img.dataobj.offset) + int(img.dataobj.size) * img.get_data_dtype().itemsize
            if path.stat().st_size < need:
                return "truncated (shorter than its header promises)"
    except Exception as exc:  # any unreadable header or gzip stream means damaged
        return f"unreadable ({type(exc).__name__})"
    side = sidecar_path(path)
    if not side.is_file():
        return "its sidecar is missing"
    if sources is not None:
        try:
            recorded = json.loads(side.read_text(encoding="utf-8")).get("Sources", [])
        except (OSError, ValueError):
            return "its sidecar is unreadable"
        if _source_names(recorded) != _source_names(sources):
            return "its sidecar names other inputs"
    return None


def is_done(nifti_path: str | Path, sources: Iterable[str | Path] | None = None,
            overwrite: bool = False) -> bool:
    """Whether a stage may skip this output; warns when a damaged one will be redone."""
    if overwrite:
        return False
    problem = output_problem(nifti_path, sources)
    if problem is None:
        return True
    if problem != "missing":
        log.warning("%s: %s; redoing it", nifti_path, problem)
    return False


def recreate_fix(path: str | Path) -> str:
    """The fix for a damaged file: the stage that re-creates a derived file, else re-copy.

    >>> recreate_fix("/d/sub-01/anat/sub-01_T2w.nii.gz")
    're-copy the file or `datalad get` it again'
    >>> recreate_fix("/d/derivatives/labels/sub-01/anat/x_seg.nii.gz").startswith("re-create it")
    True
    """
    path = Path(path)
    if not in_derivatives(path):
        return "re-copy the file or `datalad get` it again"
    stage = _producing_stage(path)
    which = f"`python -m totalseg_bids.{stage}`" if stage else "the stage that wrote it"
    return f"re-create it with {which} (a rerun redoes damaged outputs)"


def _producing_stage(path: Path) -> str | None:
    """The totalseg_bids stage named in a derived file's sidecar ``GeneratedBy``."""
    try:
        data = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for entry in data.get("GeneratedBy", []) or []:
        if not isinstance(entry, dict):
            continue
        for key in ("Command", "Step", "Stage"):
            value = str(entry.get(key, ""))
            if value:
                return value.rsplit(".", 1)[-1]
        name = str(entry.get("Name", ""))
        if name.startswith("totalseg_bids."):
            return name.split(".", 1)[1]
    return None
