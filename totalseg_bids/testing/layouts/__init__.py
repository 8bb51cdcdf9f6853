"""Phantom anatomy written as public datasets' publishers ship them.

A registry of one module per layout: each defines ``NAME`` (the ``--layout``
value) and ``write(out, subjects, seed) -> Path``. A new layout is one module
and one entry in :data:`MODULES`. Used by ``python -m totalseg_bids.phantoms
--layout NAME``, the demo and the bidsify tests.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ...core.errors import UsageError
from . import (
    clotseg,
    ctich,
    ctich_nifti,
    dicom,
    dicom_export,
    finding_lungs,
    glands,
    goldatlas,
    mrspineseg,
    npy,
    png_stack,
    spider,
    synthrad2023,
    synthrad2025,
    totalsegmentator,
)

#: The layout modules, in the order ``--help`` lists them.
MODULES = (synthrad2023, synthrad2025, mrspineseg, spider, goldatlas, totalsegmentator, dicom, dicom_export,
           png_stack, npy, glands, clotseg, ctich, ctich_nifti, finding_lungs)
#: ``--layout`` value -> writer.
WRITERS: dict[str, Callable[..., Path]] = {module.NAME: module.write for module in MODULES}
LAYOUTS = tuple(WRITERS)

__all__ = ["LAYOUTS", "MODULES", "WRITERS", "write_layout"]


def write_layout(name: str, out: str | Path, subjects: int = 2, seed: int = 0) -> Path:
    """Write layout ``name`` at ``out``; return its root."""
    if name not in WRITERS:
        raise UsageError(f"unknown --layout {name!r}", None, f"use one of {', '.join(LAYOUTS)}")
    return WRITERS[name](out, subjects, seed)
