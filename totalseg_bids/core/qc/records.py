"""Entry records: one JSON file plus PNGs per entry in ``<qc>/entries/``, written under the folder lock.

Re-adding an entry replaces it (stable ids), so a rerun of a stage updates its
entries instead of duplicating them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import TMP_PREFIX, atomic_path
from ..bids import BidsName

SCHEMA = "totalseg_bids.qc/1"
ENTRIES_DIR = "entries"
log = logging.getLogger(__name__)


def _jsonable(obj: Any) -> Any:
    """Stage metadata made JSON-safe (numpy scalars, paths, tuples, NaN)."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    return str(obj)


def entry_stem(path: str | Path | None) -> str:
    """A file name without its NIfTI extension, reduced to safe characters.

    >>> entry_stem("/d/sub-01_T2w_label-sacrum_seg.nii.gz")
    'sub-01_T2w_label-sacrum_seg'
    >>> entry_stem("my image (1).nii")
    'my_image_1'
    """
    name = re.sub(r"\.nii(\.gz)?$", "", Path(str(path)).name) if path else "entry"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_.") or "entry"


def _bids_info(*paths: str | Path | None) -> dict[str, Any]:
    for p in paths:
        name = BidsName.try_parse(p) if p else None
        if name is not None:
            return {"subject": name.subject, "session": name.session, "suffix": name.suffix,
                    "structure": name.get("label")}
    return {"subject": None, "session": None, "suffix": None, "structure": None}


def _entry_key(image, label) -> str:
    """What identifies an entry: the label's absolute path (or the image's)."""
    target = label if label is not None else image
    return str(Path(str(target)).expanduser().absolute()) if target is not None else "?"


def _choose_id(entries: Path, stem: str, key: str) -> str:
    """``stem``, unless another file with the same name (another dataset) holds it."""
    candidate = entries / f"{stem}.json"
    if candidate.exists():
        try:
            other = json.loads(candidate.read_text(encoding="utf-8")).get("key")
        except (OSError, ValueError):
            other = key
        if other != key:
            return f"{stem}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"
    return stem


def _save_png(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG", compress_level=4)


def _str_or_none(p) -> str | None:
    return str(Path(str(p)).expanduser().absolute()) if p is not None else None


def load_records(qc_dir: str | Path) -> list[dict[str, Any]]:
    """All entry records of a QC folder, sorted by subject, session, stage, id."""
    records = []
    for p in sorted((Path(qc_dir) / ENTRIES_DIR).glob("*.json")):
        if p.name.startswith(TMP_PREFIX):
            continue
        try:
            rec = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("%s: skipped unreadable QC record (%s)", p, exc)
            continue
        if isinstance(rec, dict) and rec.get("schema") == SCHEMA:
            records.append(rec)
    records.sort(key=lambda r: (r.get("subject") or "", r.get("session") or "", r.get("stage") or "",
                                r.get("id") or ""))
    return records


def file_checksum(path: str | Path) -> str | None:
    """``sha256:<hex>`` of a file's bytes (None when it cannot be read): marks are tied to
    the version of the label that was reviewed."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return f"sha256:{digest.hexdigest()}"
