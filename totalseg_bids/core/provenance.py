"""Manual corrections in the sidecar's ``GeneratedBy``, and the rule that protects them.

A label corrected by hand carries ``{"Name": "Manual", "Author": ..., "Date": ...}``
in its sidecar's ``GeneratedBy`` (BIDS derivatives' provenance field). Every
stage that writes labels calls :func:`refuse_manual_overwrite` before replacing
one, so a rerun with ``--overwrite`` cannot silently discard hours of editing.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .atomic import atomic_write_json
from .bids import sidecar_path
from .derivatives import read_sidecar
from .errors import InputError

MANUAL = "Manual"
#: The ``overwrite`` value that also replaces manually corrected labels (``--overwrite-manual``).
OVERWRITE_MANUAL = "manual"


def manual_entries(sidecar: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``GeneratedBy`` entries of a sidecar that record a manual correction.

    >>> manual_entries({"GeneratedBy": [{"Name": "totalseg_bids"}, {"Name": "Manual", "Author": "A"}]})
    [{'Name': 'Manual', 'Author': 'A'}]
    >>> manual_entries({"GeneratedBy": "broken"})
    []
    """
    gen = sidecar.get("GeneratedBy")
    if not isinstance(gen, list):
        return []
    return [dict(g) for g in gen if isinstance(g, Mapping) and str(g.get("Name", "")).lower() == MANUAL.lower()]


def is_manual(label: str | Path) -> bool:
    """True when the label's sidecar records a manual correction."""
    return bool(manual_entries(read_sidecar(label)))


def refuse_manual_overwrite(label: str | Path, overwrite: bool | str = False) -> None:
    """Raise InputError when ``label`` exists, was corrected by hand, and ``overwrite``
    is not :data:`OVERWRITE_MANUAL`. Call it before replacing an existing label."""
    label = Path(label)
    if overwrite == OVERWRITE_MANUAL or not label.exists():
        return
    found = manual_entries(read_sidecar(label))
    if found:
        who = found[-1].get("Author") or "someone"
        raise InputError(f"corrected by hand ({who}, {found[-1].get('Date', 'no date')}); not overwritten", label,
                         "keep it, or pass --overwrite-manual to replace the manual correction")


def mark_manual(label: str | Path, author: str, date: str | None = None, description: str | None = None) -> Path:
    """Append a Manual entry to the label's sidecar ``GeneratedBy`` (creating the sidecar when absent)."""
    label = Path(label)
    if not label.exists():
        raise InputError("label file is missing", label, "give the path of the corrected label")
    if not author.strip():
        raise InputError("empty author name", label, "pass --author 'First Last'")
    side = sidecar_path(label)
    data = read_sidecar(label)
    if side.exists() and not data:
        raise InputError("sidecar is not valid JSON", side, "fix or remove the sidecar, then re-run")
    gen = data.get("GeneratedBy")
    gen = list(gen) if isinstance(gen, list) else []
    entry: dict[str, Any] = {"Name": MANUAL, "Author": author.strip(),
                             "Date": date or datetime.datetime.now().strftime("%Y-%m-%dT%H:%M:%S")}
    if description:
        entry["Description"] = description
    gen.append(entry)
    data["GeneratedBy"] = gen
    atomic_write_json(side, data)
    return side
