"""Many entries at once (process pool or Dask), with the page rebuilt once at the end."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.atomic import TMP_PREFIX
from ..core.errors import BatchError
from ..core.options import resolve_options
from ..core.parallel import finish, run_tasks
from ..core.qc.records import ENTRIES_DIR, entry_stem
from ..core.qc.report import build_report
from .case import EntryCase, add_case, read_result
from .options import QcOptions
from .pairs import Pair


def add_entries(qc_dir: str | Path, pairs: Sequence[Pair], options: QcOptions | None = None,
                compares: Sequence[Any] | None = None, **kwargs: Any) -> list[dict]:
    """Add ``(image, label)`` pairs (in parallel for ``jobs`` > 1), then rebuild the page once.

    Returns one record per entry (``kind: entry``, ``path``: its JSON record) and
    the report's (``kind: report``, ``path``: ``index.html``) last. An input that
    is missing, unreadable or invalid still gets its flagged entry, but it fails
    the batch like an unwritable entry: one :class:`BatchError` whose ``done``
    holds the other records and the report's.
    """
    options = resolve_options(QcOptions, options, kwargs)
    qc_dir = Path(qc_dir)
    compares = list(compares) if compares else [None] * len(pairs)
    cases = [EntryCase(qc_dir, img, lab, options.stage, cmp_) for (img, lab), cmp_ in zip(pairs, compares)]
    keys = [entry_stem(lab if lab is not None else img) for img, lab in pairs]
    outcomes = run_tasks(add_case, cases, keys=keys, jobs=options.jobs, executor=options.executor,
                         scheduler=options.scheduler, desc="qc")
    index = build_report(qc_dir)
    for outcome in outcomes:
        if outcome.ok:
            outcome.value, problem = read_result(outcome.value, index)
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
    return sum(1 for p in (qc_dir / ENTRIES_DIR).glob("*.json") if not p.name.startswith(TMP_PREFIX))
