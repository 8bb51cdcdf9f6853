"""The source layouts ``bidsify`` reads: one module per layout, each with ``plan(root, options) -> Plan``.

A new layout is one module here with a ``plan`` function and one entry in
:data:`SOURCES` (its ``--source`` name and its module).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ...core.errors import UsageError
from ..options import BidsifyOptions
from ..plan import Plan

#: ``--source`` name -> module of this package that plans it
SOURCES: dict[str, str] = {
    "synthrad2023": "synthrad2023",
    "totalsegmentator": "totalsegmentator",
    "mrspineseg": "mrspineseg",
    "spider": "spider",
    "goldatlas": "goldatlas",
    "dicom": "dicom",
    "ctich": "ctich",
    "finding-lungs": "finding_lungs",
    "clotseg": "clotseg",
    "pattern": "pattern",
}


def plan_source(source: str, root: Path, options: BidsifyOptions) -> Plan:
    """The plan of layout ``source`` on the download ``root`` (modules load on use: openpyxl, pydicom)."""
    if source not in SOURCES:
        raise UsageError(f"unknown --source {source!r}", None, f"use one of {', '.join(SOURCES)}")
    return importlib.import_module(f"{__name__}.{SOURCES[source]}").plan(root, options)
