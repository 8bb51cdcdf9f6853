"""One label: record its manual correction in its sidecar, or read what its sidecar records."""

from __future__ import annotations

from pathlib import Path

from ..core.derivatives import read_sidecar
from ..core.provenance import manual_entries, mark_manual
from .options import ManualOptions


def mark_one(item: tuple[Path, ManualOptions]) -> dict:
    """Mark one label (a module-level task, so :func:`~totalseg_bids.core.parallel.run_tasks` can run it)."""
    label, opts = item
    side = mark_manual(label, opts.author, opts.date, opts.description)
    return {"status": "written", "path": side, "label": str(label)}


def show_one(label: str | Path) -> dict:
    """The ``GeneratedBy`` of one label's sidecar; status ``manual`` for a hand-corrected one.

    >>> show_one("/nonexistent/sub-01_T2w_label-sacrum_seg.nii.gz")["status"]
    'generated'
    """
    side = read_sidecar(label)
    manual = bool(manual_entries(side))
    return {"status": "manual" if manual else "generated", "path": str(label), "manual": manual,
            "GeneratedBy": side.get("GeneratedBy", [])}
