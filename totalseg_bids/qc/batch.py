"""Many entries at once (process pool), with the page rebuilt once at the end."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

from ..core.errors import InputError, TotalsegBidsError
from .entry import write_entry
from .records import entry_stem
from .report import build_report

log = logging.getLogger(__name__)

#: Flags that mean an input is not a valid file (missing, unreadable, values its name forbids),
#: as opposed to findings about valid data (grids, emptiness) that the report is for.
UNREADABLE_FLAGS = ("missing_image", "image_unreadable", "missing_label", "label_unreadable", "label_values")


def _add_item(item: tuple) -> str:
    """One batch entry (module level so a process pool can pickle it)."""
    qc_dir, image, label, stage, compare = item
    return str(write_entry(qc_dir, image, label, stage=stage, compare_label=compare, rebuild=False))


def add_entries(qc_dir: str | Path, pairs: Sequence[tuple[Any, Any]], stage: str = "label",
                compares: Sequence[Any] | None = None, jobs: int | None = 1) -> Path:
    """Add ``(image, label)`` pairs (process pool for ``jobs`` > 1), then rebuild
    the page once; return the index path. Only unwritable outputs fail."""
    return _add_entries(qc_dir, pairs, stage, compares, jobs)[0]


def _add_entries(qc_dir, pairs, stage, compares, jobs) -> tuple[Path, list[Path]]:
    from ..core.parallel import raise_for_failures, run_tasks

    qc_dir = Path(qc_dir)
    compares = list(compares) if compares else [None] * len(pairs)
    items = [(qc_dir, img, lab, stage, cmp_) for (img, lab), cmp_ in zip(pairs, compares)]
    keys = [entry_stem(lab if lab is not None else img) for img, lab in pairs]
    outcomes = run_tasks(_add_item, items, keys=keys, jobs=jobs, desc="qc")
    index = build_report(qc_dir)
    raise_for_failures(outcomes, "QC entries")
    return index, [Path(o.value) for o in outcomes]


def raise_for_unreadable(records: Sequence[Path], index: Path) -> None:
    """One error line for inputs QC could not read; they stay flagged in the report.

    Grid mismatches, empty labels and other findings are what the report is
    for and do not fail the command.
    """
    bad = []
    for rec_path in records:
        rec = json.loads(Path(rec_path).read_text(encoding="utf-8"))
        for flag in rec.get("flags", []):
            if flag.get("code") in UNREADABLE_FLAGS:
                which = rec.get("label") if "label" in flag["code"] else rec.get("image")
                bad.append((which or rec.get("image") or rec.get("label"), flag["message"]))
                break
    if bad:
        raise InputError(f"{bad[0][1]} ({len(bad)} of {len(records)} entries are missing, unreadable or invalid; "
                         f"they are flagged in {index})", bad[0][0], "fix or re-create the file, then re-run")


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
