"""The batch step: read every case of a config in parallel, then group them by dataset and split."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.bids import dataset_path, raw_root_of
from ..core.config import SPLIT_NAMES, check_cases, load_config
from ..core.derivatives import label_class_names
from ..core.errors import InputError
from ..core.options import resolve_options
from ..core.parallel import finish, run_tasks
from .case import case_stats
from .counts import CaseStats, group_stats
from .options import StatsOptions
from .slices import as_images, class_names, slice_items, slice_rows, slice_stats


def grouped_stats(per_case: Sequence[CaseStats], names: dict[int, str]) -> dict:
    """``{dataset: {split: group stats, ..., "all": group stats}}`` (splits in train, val, test order)."""
    stats: dict = {}
    for dataset in sorted({c.dataset for c in per_case}):
        stats[dataset] = {}
        for split in ("train", "val", "test"):
            group = [c for c in per_case if c.dataset == dataset and c.split == split]
            if group:
                stats[dataset][split] = group_stats(group, names)
        stats[dataset]["all"] = group_stats([c for c in per_case if c.dataset == dataset], names)
    return stats


def config_stats(config: str | Path, options: StatsOptions | None = None, **kwargs: Any) -> dict:
    """``{dataset: {split: group stats}}`` for a config (see :func:`~.counts.group_stats`).

    A case that cannot be read raises one BatchError once the others are read
    (``.done``: their :class:`CaseStats`): statistics of part of a config would mislead.
    """
    opts = resolve_options(StatsOptions, options, kwargs)
    cases = load_config(config, opts.datasets_path, require=("TRAINING",)).cases()
    if not cases:
        raise InputError("the config lists no cases", config, "add entries to TRAINING/VALIDATION/TESTING")
    check_cases(cases, config)  # a duplicate would be counted twice
    items = [(raw_root_of(c.image).name, SPLIT_NAMES[c.split], c.subject, c.image, c.label) for c in cases]
    outcomes = run_tasks(case_stats, items, keys=[dataset_path(c.image) for c in cases], jobs=opts.jobs,
                         executor=opts.executor, scheduler=opts.scheduler, desc="stats")
    per_case: list[CaseStats] = finish(outcomes, "cases")
    names = label_class_names([c.label for c in cases if c.label is not None], opts.labels_tsv)
    return grouped_stats(per_case, names)


def export_stats(folder: str | Path, options: StatsOptions | None = None, **kwargs: Any) -> dict:
    """``{export: {split: group stats}}`` of a 2D slice export, every slice counted as one image
    (pixel share and images per class, as MMSegmentation's dataset pages give them)."""
    opts = resolve_options(StatsOptions, options, kwargs)
    rows = slice_rows(Path(folder))
    items = slice_items(Path(folder), rows)
    outcomes = run_tasks(slice_stats, items, keys=[r["file"] for r in rows], jobs=opts.jobs,
                         executor=opts.executor, scheduler=opts.scheduler, desc="stats")
    per_slice: list[CaseStats] = finish(outcomes, "slices")
    names = {**class_names(Path(folder)), **label_class_names([], opts.labels_tsv)}
    stats = grouped_stats(per_slice, names)
    return {dataset: {split: as_images(g) for split, g in splits.items()} for dataset, splits in stats.items()}
