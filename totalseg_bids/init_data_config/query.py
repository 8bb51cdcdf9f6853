"""Querying BIDS datasets for the files of a config: labels in a derivative folder ending with a
suffix, or raw images of some contrasts."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from ..core.bids import split_extension
from ..core.config import TYPES, ConfigType
from ..core.errors import InputError, MissingFileError, UsageError
from ..core.folders import DERIVATIVES, derivative_dir
from ..core.index import BidsIndex
from .listing import absolute

log = logging.getLogger(__name__)


def normalize_label_suffix(suffix: str) -> str:
    """A ``--label-suffix`` as the end of a file stem (leading ``_``, no extension).

    >>> normalize_label_suffix("label-sacrum_seg.nii.gz")
    '_label-sacrum_seg'
    >>> normalize_label_suffix("_space-T2w_label-sacrum_mask")
    '_space-T2w_label-sacrum_mask'
    """
    stem = split_extension(suffix.strip())[0] if suffix.strip().endswith((".nii.gz", ".nii")) else suffix.strip()
    if not stem:
        raise UsageError("--label-suffix is empty", None, "e.g. --label-suffix _label-sacrum_seg")
    return stem if stem.startswith("_") else "_" + stem


def query_bids(bids_dirs: Sequence[str | Path], type: ConfigType = "LABEL", label_dir: str | None = None,
               label_suffix: str | None = None, contrasts: Sequence[str] | None = None) -> list[Path]:
    """Label files (``<ds>/derivatives/<label_dir>/...<label_suffix>.nii.gz``)
    or raw images (with a suffix in ``contrasts``) of one or more datasets."""
    if type not in TYPES:
        raise UsageError(f"unknown --type {type!r}", None, "use LABEL or IMAGE")
    if type == "LABEL" and (not label_dir or not label_suffix):
        raise UsageError("--bids-dir with --type LABEL needs --label-dir and --label-suffix", None,
                         "e.g. --label-dir labels --label-suffix _label-sacrum_seg")
    suffix = normalize_label_suffix(label_suffix) if type == "LABEL" else None
    wanted = set(contrasts) if contrasts else None
    found: list[Path] = []
    for d in bids_dirs:
        root = absolute(d)
        if not root.exists():
            raise MissingFileError("dataset folder not found", root, "check the --bids-dir path")
        if not root.is_dir():
            raise InputError("not a folder", root, "give a BIDS dataset folder to --bids-dir")
        if type == "LABEL":
            folder = derivative_dir(root, str(label_dir))
            if not folder.is_dir():
                have = sorted(p.name for p in (root / DERIVATIVES).glob("*") if p.is_dir())
                raise MissingFileError("label folder not found", folder,
                                       f"check --label-dir (folders in derivatives/: {', '.join(have) or 'none'})")
            files = [f for f in BidsIndex.scan(folder) if f.name.is_derivative
                     and split_extension(f.path.name)[0].endswith(suffix)
                     and (wanted is None or f.name.suffix in wanted)]
        else:
            files = BidsIndex.scan(root).query(suffix=sorted(wanted) if wanted else None, derivative=False)
        if not files:
            log.warning("%s: no %s matched the query", root, "labels" if type == "LABEL" else "images")
        found.extend(f.path for f in files)
    if not found:
        what = (f"labels ending in {suffix}.nii.gz under derivatives/{label_dir}" if type == "LABEL"
                else "raw images")
        extra = f" with contrasts {' '.join(sorted(wanted))}" if wanted else ""
        raise InputError(f"no {what}{extra} found", absolute(bids_dirs[0]),
                         "check --bids-dir, --label-dir, --label-suffix and --contrasts")
    return found

