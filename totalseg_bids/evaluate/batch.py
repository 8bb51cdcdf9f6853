"""The batch step: pair the cases, measure them in parallel, complete the class table, write it once.

The metrics table is one product: when a case fails, the others are still
measured (so every problem is reported in one run), then nothing is written and
one BatchError names the failures; its ``done`` holds the records that completed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from ..core.atomic import atomic_write_text
from ..core.datalad import ensure_content, get_requested
from ..core.options import resolve_options
from ..core.parallel import finish, run_tasks
from .case import evaluate_case
from .measure import empty_class_metrics
from .options import EvaluateOptions
from .pairing import Pair, pair_config, pair_folders
from .summary import summary_markdown
from .table import tsv_text


def complete_classes(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every case reports every class that any case reports: a class a case holds in neither
    map gets the both-empty row there (Dice 1, flagged), so each class is summarised over every case.

    >>> recs = [{"labels": {"a": {"value": 1}}}, {"labels": {"b": {"value": 2}}}]
    >>> [sorted(r["labels"]) for r in complete_classes(recs)], recs[1]["labels"]["a"]["flags"]
    ([['a', 'b'], ['a', 'b']], ['both_empty'])
    """
    names: dict[int, str] = {}
    for rec in records:
        for name, m in rec["labels"].items():
            names.setdefault(m["value"], name)
    for rec in records:
        have = {m["value"] for m in rec["labels"].values()}
        for value, name in names.items():
            if value not in have:
                rec["labels"][name] = {"value": value, **empty_class_metrics()}
        rec["labels"] = dict(sorted(rec["labels"].items(), key=lambda kv: kv[1]["value"]))
    return records


def evaluate_pairs(pairs: Sequence[Pair], options: EvaluateOptions | None = None, **kwargs) -> list[dict[str, Any]]:
    """Measure every pair (``options.jobs`` workers, or a Dask cluster); one record per case, in pair order."""
    opts = resolve_options(EvaluateOptions, options, kwargs).check()
    get = get_requested(opts.datalad_get)
    ensure_content(list(dict.fromkeys(p for pair in pairs for p in (pair.pred, pair.ref))), get=get)
    carried = replace(opts, datalad_get=get, scheduler=None)  # what every task carries; the scheduler stays here
    outcomes = run_tasks(partial(evaluate_case, options=carried), list(pairs), keys=[p.case for p in pairs],
                         jobs=opts.jobs, executor=opts.executor, scheduler=opts.scheduler, desc="evaluate")
    return complete_classes(finish(outcomes, "cases"))


def evaluate_folders(pred: str | Path, ref: str | Path, options: EvaluateOptions | None = None,
                     **kwargs) -> list[dict[str, Any]]:
    """Predictions against references paired by file name (nnU-Net's ``evaluate_folder`` convention).

    Everything else is ``options`` (an :class:`EvaluateOptions`, or its fields as keyword arguments).
    """
    opts = resolve_options(EvaluateOptions, options, kwargs).check()
    return evaluate_pairs(pair_folders(pred, ref, opts.chill), opts)


def evaluate_config(config: str | Path, pred: str | Path, ref: str | Path | None = None, split: str = "TESTING",
                    datasets_path: str | Path | None = None, options: EvaluateOptions | None = None,
                    **kwargs) -> list[dict[str, Any]]:
    """The cases of one split of a data config: the config's labels (or those in ``ref``) against the
    labels of the same images and structures in ``pred`` (a folder, or a derivative name)."""
    opts = resolve_options(EvaluateOptions, options, kwargs).check()
    return evaluate_pairs(pair_config(config, pred, ref, split, datasets_path, opts.chill), opts)


def write_table(records: Sequence[dict[str, Any]], path: str | Path, tolerance_mm: float) -> Path:
    """The metrics TSV, written atomically (one row per case and class)."""
    atomic_write_text(path, tsv_text(records, tolerance_mm))
    return Path(path)


def write_summary(records: Sequence[dict[str, Any]], path: str | Path | None, tolerance_mm: float,
                  pred: str = "", ref: str = "") -> str:
    """The Markdown summary; written atomically to ``path`` when one is given. Returns the text."""
    text = summary_markdown(records, tolerance_mm, pred, ref)
    if path is not None:
        atomic_write_text(path, text)
    return text
