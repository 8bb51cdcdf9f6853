"""Many entries at once (process pool), with the page rebuilt once at the end."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

from ..core.errors import BatchError, InputError, TotalsegBidsError
from ..core.options import resolve_options
from .entry import write_entry
from .options import QcOptions
from .records import ENTRIES_DIR, entry_stem
from .report import build_report

log = logging.getLogger(__name__)

#: Flags that mean an input is not a valid file (missing, unreadable, values its name forbids),
#: as opposed to findings about valid data (grids, emptiness) that the report is for.
UNREADABLE_FLAGS = ("missing_image", "image_unreadable", "missing_label", "label_unreadable", "label_values")


def _add_item(item: tuple) -> str:
    """One batch entry (module level so a process pool can pickle it)."""
    qc_dir, image, label, stage, compare = item
    return str(write_entry(qc_dir, image, label, stage=stage, compare_label=compare, rebuild=False))


def add_entries(qc_dir: str | Path, pairs: Sequence[tuple[Any, Any]], options: QcOptions | None = None,
                compares: Sequence[Any] | None = None, **kwargs: Any) -> list[dict]:
    """Add ``(image, label)`` pairs (process pool for ``jobs`` > 1), then rebuild the page once.

    Returns one record per entry (``kind: entry``, ``path``: its JSON record) and
    the report's (``kind: report``, ``path``: ``index.html``) last. An input that
    is missing, unreadable or invalid still gets its flagged entry, but it fails
    the batch like an unwritable entry: one :class:`BatchError` whose ``done``
    holds the other records and the report's.
    """
    from ..core.parallel import finish, run_tasks

    options = resolve_options(QcOptions, options, kwargs)
    qc_dir = Path(qc_dir)
    compares = list(compares) if compares else [None] * len(pairs)
    items = [(qc_dir, img, lab, options.stage, cmp_) for (img, lab), cmp_ in zip(pairs, compares)]
    keys = [entry_stem(lab if lab is not None else img) for img, lab in pairs]
    outcomes = run_tasks(_add_item, items, keys=keys, jobs=options.jobs, desc="qc")
    index = build_report(qc_dir)
    for outcome in outcomes:
        if outcome.ok:
            rec = json.loads(Path(outcome.value).read_text(encoding="utf-8"))
            problem = unreadable_problem(rec, index)
            outcome.value = entry_result(Path(outcome.value), rec)
            if problem is not None:
                outcome.ok, outcome.error = False, problem
    report = {"status": "written", "path": str(index), "kind": "report", "entries": _entry_count(qc_dir)}
    try:
        entries = finish(outcomes, "QC entries")
    except BatchError as exc:
        exc.done.append(report)
        raise
    return [*entries, report]


def _entry_count(qc_dir: Path) -> int:
    """Entries the report now shows (this batch's and earlier ones)."""
    from ..core.atomic import TMP_PREFIX

    return sum(1 for p in (qc_dir / ENTRIES_DIR).glob("*.json") if not p.name.startswith(TMP_PREFIX))


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


def check_pairs(pairs: Sequence[tuple[Any, Any]]) -> None:
    """Refuse an image paired with a label of another subject/session (by BIDS name)."""
    from ..core.bids import BidsName, dataset_path

    for img, lab in pairs:
        if img is None or lab is None:
            continue
        a, b = BidsName.try_parse(img), BidsName.try_parse(lab)
        if a is not None and b is not None and (a.subject, a.session) != (b.subject, b.session):
            raise InputError(f"label of sub-{b.subject} given for image {dataset_path(img)}", lab,
                             "give --images and --labels in the same order")


def _pairs_from_labels(labels: Sequence[Path]) -> list[tuple[Path | None, Path]]:
    from ..core.bids import image_for_label

    pairs = []
    for lab in labels:
        if not (Path(lab).exists() or Path(lab).is_symlink()):
            pairs.append((None, lab))  # flagged as a missing label, whatever its name
            continue
        try:
            pairs.append((image_for_label(lab), lab))
        except TotalsegBidsError as exc:  # flagged as "no image" rather than stopping the batch
            log.warning("%s", exc)
            pairs.append((None, lab))
    return pairs
