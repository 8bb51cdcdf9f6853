"""One entry of a batch: written without rebuilding the page, then read back as a stdout record."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import InputError
from ..core.qc.entry import write_entry

#: Flags that mean an input is not a valid file (missing, unreadable, values its name forbids),
#: as opposed to findings about valid data (grids, emptiness) that the report is for.
UNREADABLE_FLAGS = ("missing_image", "image_unreadable", "missing_label", "label_unreadable", "label_values")


@dataclass(frozen=True)
class EntryCase:
    """One entry to write (picklable): ``label`` over ``image``, ``compare`` drawn as a contour."""

    qc_dir: Path
    image: Any
    label: Any
    stage: str
    compare: Any = None


def add_case(case: EntryCase) -> str:
    """Write one entry (the page is rebuilt once by the batch); the path of its JSON record."""
    return str(write_entry(case.qc_dir, case.image, case.label, stage=case.stage, compare_label=case.compare,
                           rebuild=False))


def read_result(record_path: str | Path, index: Path) -> tuple[dict, str | None]:
    """The stdout record of a written entry and, when its input is unusable, the error line."""
    rec = json.loads(Path(record_path).read_text(encoding="utf-8"))
    return entry_result(Path(record_path), rec), unreadable_problem(rec, index)


def entry_result(record_path: Path, rec: dict) -> dict:
    """The stdout record of one written entry (``rec``, its JSON): where it is, what it shows, what it found.

    >>> entry_result(Path("qc/entries/a.json"), {"label": "a.nii.gz", "status": "ok", "flags": []})["kind"]
    'entry'
    """
    return {"status": "written", "path": str(record_path), "kind": "entry", "image": rec.get("image"),
            "label": rec.get("label"), "qc_status": rec.get("status"),
            "flags": [f.get("code") for f in rec.get("flags", [])]}


def unreadable_problem(rec: dict, index: Path) -> str | None:
    """The error line of an entry (its JSON record) whose input is missing, unreadable or invalid, else None.

    Grid mismatches, empty labels and other findings are what the report is
    for and do not fail the batch.

    >>> unreadable_problem({"flags": [{"code": "touches_edge", "message": "label touches the edge"}]},
    ...                    Path("qc/index.html")) is None
    True
    >>> unreadable_problem({"label": "a_seg.nii.gz", "flags": [{"code": "missing_label", "message": "missing"}]},
    ...                    Path("qc/index.html"))
    'a_seg.nii.gz: missing (flagged in qc/index.html); fix or re-create the file, then re-run'
    """
    flag = next((f for f in rec.get("flags", []) if f.get("code") in UNREADABLE_FLAGS), None)
    if flag is None:
        return None
    which = rec.get("label") if "label" in flag["code"] else rec.get("image")
    return str(InputError(f"{flag['message']} (flagged in {index})", which or rec.get("image") or rec.get("label"),
                          "fix or re-create the file, then re-run"))
