"""Derivative dataset metadata: ``dataset_description.json``, sidecars, ``_dseg.tsv``.

Every derivative folder gets a ``dataset_description.json`` with
``GeneratedBy`` (pybids refuses one without it); every derived file gets a
sidecar with ``SpatialReference``, ``Sources`` and ``GeneratedBy``
(docs/conventions.md section 2).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import __version__
from .atomic import atomic_write_json, atomic_write_text, file_lock
from .bids import RAW_LINK, BidsName, bids_uri, dseg_tsv_path, is_binary_label, sidecar_path
from .folders import DERIVATIVES
from .resume import is_done

log = logging.getLogger(__name__)

BIDS_VERSION = "1.10.0"
CODE_URL = "https://github.com/neuropoly/totalseg_bids"
LOCK_NAME = ".totalseg_bids.lock"


def now() -> str:
    """Timestamp in the sidecar format ``YYYY-MM-DD HH:MM:SS``.

    ``SOURCE_DATE_EPOCH`` (seconds, the reproducible-builds convention) fixes
    it, in UTC, so that two runs of one step write byte-identical sidecars.
    """
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def generated_by(name: str = "totalseg_bids", version: str | None = None, **extra: Any) -> dict:
    """One ``GeneratedBy`` entry; ours carries our version and code URL."""
    entry: dict[str, Any] = {"Name": name}
    if name == "totalseg_bids":
        entry["Version"] = version or __version__
        entry["CodeURL"] = CODE_URL
    elif version is not None:
        entry["Version"] = version
    entry["Date"] = now()
    entry.update({k: v for k, v in extra.items() if v is not None})
    return entry


def ensure_dataset_description(root: str | Path, name: str | None = None,
                               description: str | None = None) -> Path:
    """Write ``<root>/dataset_description.json`` once (safe under concurrency).

    An existing file is kept; if it lacks ``GeneratedBy`` or ``DatasetType``
    (pybids needs them) those keys are added. A folder at ``<raw>/derivatives/<name>``
    gets ``DatasetLinks: {"raw": "../.."}``, which the ``bids:raw:`` URIs of its
    sidecars resolve against.
    """
    root = Path(root)
    path = root / "dataset_description.json"
    with file_lock(root / LOCK_NAME):
        data: dict[str, Any] = {}
        if path.exists():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = {}
        wanted: dict[str, Any] = {
            "Name": name or root.name,
            "BIDSVersion": BIDS_VERSION,
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "totalseg_bids", "Version": __version__, "CodeURL": CODE_URL}],
        }
        if description:
            wanted["Description"] = description
        if root.absolute().parent.name == DERIVATIVES:
            wanted["DatasetLinks"] = {RAW_LINK: "../.."}
        changed = False
        for key, value in wanted.items():
            if key not in data:
                data[key] = value
                changed = True
        if changed:
            atomic_write_json(path, data)
    return path


#: Image suffixes that BIDS has no datatype for yet: listed in a derivative's ``.bidsignore``.
BIDSIGNORED_SUFFIXES = ("CT",)


def ensure_bidsignore(root: str | Path, suffix: str) -> Path:
    """Add ``*_<suffix>.nii.gz``/``.json`` to ``<root>/.bidsignore`` (once, safe under
    concurrency), so the validator accepts images of a suffix BIDS does not define (CT).
    The validator reads it when ``root`` is validated as a dataset of its own."""
    root = Path(root)
    path = root / ".bidsignore"
    wanted = [f"*_{suffix}.nii.gz", f"*_{suffix}.json"]
    with file_lock(root / LOCK_NAME):
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        missing = [w for w in wanted if w not in lines]
        if missing:
            atomic_write_text(path, "\n".join([*lines, *missing]) + "\n")
    return path


def write_sidecar(nifti_path: str | Path, sources: Iterable[str | Path], generated: Iterable[Mapping],
                  spatial_reference: str | Path | None = None, raw_root: str | Path | None = None,
                  **extra: Any) -> Path:
    """Write the JSON sidecar of a derived file.

    ``sources`` and ``spatial_reference`` are paths, turned into BIDS URIs
    relative to the raw dataset; ``spatial_reference=None`` means ``"orig"``
    (the grid of the first source).
    """
    side = sidecar_path(nifti_path)
    data: dict[str, Any] = {
        "SpatialReference": "orig" if spatial_reference is None else bids_uri(spatial_reference, raw_root),
        "Sources": [bids_uri(s, raw_root) for s in sources],
        "GeneratedBy": [dict(g) for g in generated],
    }
    data.update({k: v for k, v in extra.items() if v is not None})
    atomic_write_json(side, data)
    return side


def write_dseg_tsv(nifti_path: str | Path, classes: Mapping[int, str]) -> Path:
    """The ``_dseg.tsv`` lookup table (columns ``index``, ``name``) beside a dseg."""
    tsv = dseg_tsv_path(nifti_path)
    lines = ["index\tname"] + [f"{int(i)}\t{n}" for i, n in sorted(classes.items())]
    atomic_write_text(tsv, "\n".join(lines) + "\n")
    return tsv


def read_dseg_tsv(path: str | Path) -> dict[int, str]:
    """Read a ``_dseg.tsv`` lookup table into ``{index: name}``."""
    out: dict[int, str] = {}
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t") if lines else []
    i_idx, i_name = header.index("index"), header.index("name")
    for line in lines[1:]:
        if line.strip():
            cols = line.split("\t")
            out[int(cols[i_idx])] = cols[i_name]
    return out


def label_class_names(labels: Iterable[str | Path], labels_tsv: str | Path | None = None) -> dict[int, str]:
    """Class names of label values, first source wins: ``labels_tsv``, then the
    ``_dseg.tsv`` beside each label, then the ``label-`` entity of a binary
    ``_seg``/``_mask`` (its value 1). Values found nowhere are absent.

    >>> label_class_names(["/nowhere/sub-01_T2w_label-sacrum_seg.nii.gz", "/nowhere/sub-01_T2w_dseg.nii.gz"])
    {1: 'sacrum'}
    """
    names: dict[int, str] = dict(read_dseg_tsv(labels_tsv)) if labels_tsv is not None else {}
    for lab in labels:
        tsv = dseg_tsv_path(lab)
        if tsv.is_file():
            for k, v in read_dseg_tsv(tsv).items():
                names.setdefault(k, v)
        name = BidsName.try_parse(Path(lab).name)
        structure = name.get("label") if name is not None else None
        if is_binary_label(lab) and structure:
            names.setdefault(1, structure)
    return names


def read_sidecar(nifti_path: str | Path) -> dict:
    """The sidecar of a NIfTI file, or ``{}`` when absent/unreadable."""
    side = sidecar_path(nifti_path)
    try:
        return json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def output_complete(nifti_path: str | Path) -> bool:
    """An output counts as done when it is whole (not truncated) and has its sidecar.

    Delegates to :func:`totalseg_bids.core.resume.is_done`, which warns when a
    damaged output is found so the caller redoes it.
    """
    return is_done(nifti_path)
