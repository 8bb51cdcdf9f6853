"""Dataset statistics of a data config: cases, subjects, classes, volumes, spacings, shapes.

Per dataset (the raw BIDS folder of each case) and per split, the class
table a training set is judged by: for every class the voxel share (% of all label voxels of
that group, background included) and the number of images containing it,
its volume in ml (mean/min/max over the images that contain it), and a
summary of voxel spacings and shapes (min/median/max per axis).

Stdout is one JSON line: ``{"stage": "stats", "status": "computed", "path":
<config>, "cases": N, "datasets": {dataset: {split: ...}}, "outputs": [...]}``.
``-o FILE`` writes the report by its extension: ``.tsv`` (one row per
dataset/split/class), ``.md`` (two Markdown tables) or ``.json`` (nested, the
record's ``datasets``); ``--json FILE`` writes the JSON beside another ``-o``.
Without any file the Markdown tables go to stderr, for a human reading the terminal.

``--slices DIR`` instead reads a 2D export of ``totalseg_bids.slices``: every slice
is an image and the Markdown report is the class table of MMSegmentation's dataset
pages (class name, pixel percentage, number of images in the class) per split.

Class names come from ``--labels-tsv``, a ``_dseg.tsv`` beside a label, the
``label-`` entity of binary masks, else ``class<value>``. Cases without a
label count as cases and in spacings/shapes, not in class statistics.

``python -m totalseg_bids.stats --config train.json -o stats.tsv``; library callers pass
:class:`StatsOptions` (or its fields as keywords) to :func:`config_stats` and
:func:`write_report`. Modules: :mod:`.options`, :mod:`.counts` (the class table),
:mod:`.reports` (TSV, Markdown, JSON), :mod:`.case`, :mod:`.batch`, :mod:`.cli`.
"""

from .batch import config_stats, export_stats, grouped_stats
from .case import StatsItem, case_stats
from .cli import get_parser, main
from .counts import CaseStats, axis_summary, count_classes, group_stats
from .options import StatsOptions
from .reports import REPORTS, TSV_COLUMNS, markdown, report_format, to_json, to_rows, tsv, write_report

__all__ = [
    "CaseStats", "REPORTS", "StatsItem", "StatsOptions", "TSV_COLUMNS", "axis_summary", "case_stats",
    "config_stats", "count_classes", "export_stats", "get_parser", "group_stats", "grouped_stats", "main", "markdown",
    "report_format", "to_json", "to_rows", "tsv", "write_report",
]
