"""The one way a stage hands a finished output to the QC report.

``register``, ``segment_ct`` and ``predict`` call :func:`qc_entry` after an
output is complete; the entry is written by :mod:`.qc.entry` (the same code the
``qc`` stage writes with), and a QC problem is a warning, never a failure of the
stage's work.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .qc.entry import add_entry, add_figures

log = logging.getLogger(__name__)


def qc_entry(qc_dir: str | Path | None, image: str | Path, label: str | Path, stage: str,
             compare_label: str | Path | None = None, meta: Mapping[str, Any] | None = None) -> Path | None:
    """Add or replace the report entry of ``label`` over ``image`` in ``qc_dir`` (None: no QC asked).

    Returns the entry's record, or None when no QC was asked or the entry
    could not be written (logged as a warning; the stage's output stays valid).
    """
    if qc_dir is None:
        return None
    try:
        return add_entry(qc_dir, image=image, label=label, stage=stage, compare_label=compare_label,
                         meta=dict(meta or {}))
    except Exception as exc:  # noqa: BLE001 - add_entry reports its own problems; this is the last guard
        log.warning("--qc: no QC entry for %s (%s)", label, exc)
        return None


def qc_figures(qc_dir: str | Path | None, label: str | Path, figures: Mapping[str, Any],
               image: str | Path | None = None, compare_label: str | Path | None = None,
               stage: str = "evaluate") -> Path | None:
    """Show a later stage's ``figures`` (``evaluate``'s metrics) beside ``label`` in ``qc_dir``.

    They join the entry of ``label`` when the report has one (the entry ``predict --qc``
    wrote); otherwise a new entry shows ``label`` over ``image`` with ``compare_label`` as
    the contour, or, without an image, nothing is added. Returns the record, or None
    (no QC asked, nothing added, or a problem logged as a warning).
    """
    if qc_dir is None:
        return None
    try:
        return add_figures(qc_dir, label, figures, image=image, compare_label=compare_label, stage=stage)
    except Exception as exc:  # noqa: BLE001 - add_figures reports its own problems; this is the last guard
        log.warning("--qc: no QC figures for %s (%s)", label, exc)
        return None
