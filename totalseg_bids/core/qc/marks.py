"""Reading the marks exported from the report (``qc_marks.tsv`` / ``.json``) to decide what trains.

A mark is matched to a label by its absolute path and by its checksum: a label
rewritten after review is "reviewed an older version", never silently trusted.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..errors import InputError
from .records import file_checksum

log = logging.getLogger(__name__)


def read_marks(path: str | Path) -> dict[str, dict[str, str]]:
    """``{absolute label path: row}`` of the marked rows of an exported TSV or JSON."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the QC marks ({exc.strerror or exc})", path, "export them from the report") \
            from exc
    try:
        rows = json.loads(text)["marks"] if path.suffix == ".json" else list(csv.DictReader(text.splitlines(),
                                                                                             delimiter="\t"))
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError("not a QC marks export", path, "use the TSV or JSON exported by the QC report") from exc
    if rows and "label" not in rows[0]:
        raise InputError("QC marks have no 'label' column", path, "use the TSV or JSON exported by the QC report")
    return {str(Path(r["label"]).absolute()): r for r in rows if r.get("label") and r.get("mark")}


def filter_labels(labels: Sequence[Path], marks: dict[str, dict[str, str]], exclude: Iterable[str] = ("fail",),
                  require_pass: bool = False) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The labels to keep and ``(label, why)`` for each one dropped.

    A mark whose checksum differs from the file's is not applied: the label is
    reported as "reviewed an older version" (and dropped with ``require_pass``).
    """
    exclude = set(exclude)
    kept, dropped = [], []
    for lab in labels:
        row = marks.get(str(Path(lab).absolute()))
        mark = row["mark"] if row else None
        if row and row.get("checksum") and row["checksum"] != file_checksum(lab):
            log.warning("%s: reviewed an older version (marked %s); the mark is not applied", lab, mark)
            mark = "stale"
        if mark in exclude:
            dropped.append((Path(lab), f"marked {mark}"))
        elif require_pass and mark != "pass":
            dropped.append((Path(lab), "reviewed an older version" if mark == "stale"
                            else f"marked {mark}" if mark else "not reviewed"))
        else:
            kept.append(lab)
    return kept, dropped
