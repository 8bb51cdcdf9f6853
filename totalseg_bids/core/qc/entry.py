"""Adding one entry: evaluate, render, write the record and PNGs, rebuild the page.

:func:`add_entry` is the hook the other stages (``register``, ``predict``,
``segment_ct``) call for each output; it never fails the stage's own work.
:func:`write_entry` is the same work for the ``qc`` command, where an unwritable
report folder is an error.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_json, file_lock
from .evaluate import evaluate_entry
from .records import (
    ENTRIES_DIR,
    SCHEMA,
    _bids_info,
    _choose_id,
    _entry_key,
    _jsonable,
    _save_png,
    _str_or_none,
    entry_stem,
    file_checksum,
)
from .render import Views
from .report import _build_report_locked

log = logging.getLogger(__name__)


def add_entry(qc_dir, image, label, stage="label", compare_label=None, meta=None, title=None) -> Path | None:
    """Add (or replace) one entry and rebuild the report; return the record path.

    ``image`` is the background, ``label`` the mask to check (a missing or
    unreadable one is a flagged entry), ``compare_label`` (register) the source
    CT label shown as a cyan contour after header resampling onto the image grid,
    ``meta`` extra figures from the stage (e.g. ``{"dice": 0.93}``).

    Never raises: QC must not stop a pipeline, so any failure (an unwritable
    report folder included) is logged as a warning and None is returned.
    """
    try:
        return write_entry(qc_dir, image, label, stage, compare_label, meta, title, rebuild=True)
    except Exception as exc:  # noqa: BLE001 - the calling stage's output is already written and valid
        log.warning("--qc: no QC entry for %s (%s)", label if label is not None else image, exc)
        log.debug("QC entry failed", exc_info=True)
        return None


def _record(image, label, stage, compare_label, meta, title, info: dict[str, Any],
            views: Views | None) -> dict[str, Any]:
    """The JSON part of an entry (views are filled in once the id is known)."""
    flags = info["flags"]
    status = "error" if any(f["level"] == "error" for f in flags) else "warning" if flags else "ok"
    stem = entry_stem(label if label is not None else image)
    return {
        "schema": SCHEMA, "id": None, "key": _entry_key(image, label),
        "title": title or stem, "stage": stage, "status": status,
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "image": _str_or_none(image), "label": _str_or_none(label), "compare_label": _str_or_none(compare_label),
        "checksum": file_checksum(label) if label is not None else None,
        **_bids_info(label, image),
        "figures": _jsonable(info["figures"]), "geometry": info["geometry"], "flags": flags,
        "meta": _jsonable(meta or {}), "views": {}, "window": views.window if views else None,
    }


def _write_views(entries: Path, entry_id: str, views: Views | None) -> dict[str, Any]:
    """Save the plain and overlay PNG of each view; drop stale ones of an entry that no longer renders."""
    out: dict[str, Any] = {}
    if views is None:
        for old in entries.glob(f"{entry_id}_*.png"):
            old.unlink(missing_ok=True)
        return out
    for view in (views.sagittal, views.axial):
        short = {"sagittal": "sag", "axial": "ax"}[view.name]
        plain, over = f"{entry_id}_{short}.png", f"{entry_id}_{short}_overlay.png"
        _save_png(view.image, entries / plain)
        _save_png(view.overlay(), entries / over)
        out[view.name] = {
            "image": f"{ENTRIES_DIR}/{plain}", "overlay": f"{ENTRIES_DIR}/{over}",
            "width": int(view.image.shape[1]), "height": int(view.image.shape[0]),
            "positions_mm": [round(p, 2) for p in view.positions_mm], "axis": view.axis,
            "spacing_mm": round(view.spacing_mm, 4), "crop_mm": views.crop_mm,
            "has_label": view.label is not None and bool(np.any(view.label)),
            "has_compare": view.compare is not None}
    return out


def write_entry(qc_dir, image, label, stage="label", compare_label=None, meta=None, title=None,
                rebuild: bool = True) -> Path:
    """Add (or replace) one entry; bad data becomes flags, an unwritable ``qc_dir`` raises OutputError.

    ``rebuild=False`` lets a batch rebuild the page once at the end instead of
    once per entry (quadratic in the number of records).
    """
    t0 = time.perf_counter()
    qc_dir = Path(qc_dir)
    info, views = evaluate_entry(image, label, compare_label)
    record = _record(image, label, stage, compare_label, meta, title, info, views)
    entries = qc_dir / ENTRIES_DIR
    with file_lock(qc_dir / ".lock"):
        entry_id = _choose_id(entries, entry_stem(label if label is not None else image), record["key"])
        record["id"] = entry_id
        record["views"] = _write_views(entries, entry_id, views)
        record["seconds"] = round(time.perf_counter() - t0, 3)
        path = entries / f"{entry_id}.json"
        atomic_write_json(path, record)
        if rebuild:
            _build_report_locked(qc_dir)
    return path


def _own_record(path: Path, key: str) -> dict[str, Any] | None:
    """The record at ``path`` when it is the entry of ``key``, else None."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("schema") == SCHEMA and record.get("key") == key else None


def add_figures(qc_dir, label, figures, image=None, compare_label=None, stage="evaluate") -> Path | None:
    """Merge a later stage's ``figures`` (``evaluate``'s metrics) into the ``meta`` of the entry of
    ``label`` (the one ``predict --qc`` wrote) and rebuild the page; without such an entry, add one
    (``label`` over ``image``, ``compare_label`` as the contour) when ``image`` is known, else nothing.

    Never raises, like :func:`add_entry`; returns the record path or None.
    """
    try:
        qc_dir = Path(qc_dir)
        entries, key = qc_dir / ENTRIES_DIR, _entry_key(image, label)
        with file_lock(qc_dir / ".lock"):
            path = entries / f"{_choose_id(entries, entry_stem(label), key)}.json"
            record = _own_record(path, key)
            if record is not None:
                record["meta"] = {**(record.get("meta") or {}), **_jsonable(figures)}
                atomic_write_json(path, record)
                _build_report_locked(qc_dir)
                return path
        if image is None:
            log.info("--qc: %s has no QC entry and no known image; its figures are in the table only", label)
            return None
        return write_entry(qc_dir, image, label, stage, compare_label, figures, rebuild=True)
    except Exception as exc:  # noqa: BLE001 - the figures are already computed; QC must not fail the stage
        log.warning("--qc: no QC figures for %s (%s)", label, exc)
        log.debug("QC figures failed", exc_info=True)
        return None
