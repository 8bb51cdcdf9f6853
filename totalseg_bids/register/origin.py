"""What made a label: read from its sidecar's ``GeneratedBy``, never from its folder.

A label already drawn on an MRI is used instead of the CT label only when the
user asks for labels of that origin (``--mri-label-origin``); the origin is
what the sidecar says produced it.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..core.bids import sidecar_path

#: Origins a user can name, and the words in a ``GeneratedBy`` entry that identify them.
ORIGINS = {
    "Manual": ("manual",),
    "nnU-Net": ("nnu-net", "nnunet", "totalseg_bids.predict"),
    "TotalSegmentator": ("totalsegmentator", "totalseg_bids.segment_ct"),
}
ANY_ORIGIN = "any"


def classify_generated_by(entries: list) -> str:
    """The origin named by a ``GeneratedBy`` list (first matching entry), or ``unknown``.

    >>> classify_generated_by([{"Name": "Manual", "Description": "drawn in ITK-SNAP"}])
    'Manual'
    >>> classify_generated_by([{"Name": "nnUNetv2", "Version": "2.8"}])
    'nnU-Net'
    >>> classify_generated_by([{"Name": "TotalSegmentator"}])
    'TotalSegmentator'
    >>> classify_generated_by([])
    'unknown'
    """
    for entry in entries or []:
        if not isinstance(entry, dict):
            continue
        text = " ".join(str(entry.get(k, "")) for k in ("Name", "Description")).lower()
        for origin, words in ORIGINS.items():
            if any(w in text for w in words):
                return origin
    return "unknown"


def label_origin(path: str | Path) -> str:
    """The origin of the label at ``path`` from its JSON sidecar (``unknown`` without one)."""
    side = sidecar_path(path)
    try:
        data = json.loads(Path(side).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "unknown"
    entries = data.get("GeneratedBy") if isinstance(data, dict) else None
    return classify_generated_by(entries if isinstance(entries, list) else [])


def origin_accepted(origin: str, wanted: tuple[str, ...]) -> bool:
    """True when a label of ``origin`` may replace the CT label.

    >>> origin_accepted("Manual", ("Manual",)), origin_accepted("nnU-Net", ("Manual",))
    (True, False)
    >>> origin_accepted("unknown", ("any",)), origin_accepted("Manual", ())
    (True, False)
    """
    return bool(wanted) and (ANY_ORIGIN in wanted or origin in wanted)
