"""Visual quality control: a static, keyboard-driven HTML report of label overlays.

``python -m totalseg_bids.qc --labels LAB [LAB ...] --qc DIR`` (images found from
the label names), ``--images IMG ... --labels LAB ...`` (paired by position) or
``--config CONFIG.json --qc DIR``. Library callers pass the pairs to
:func:`add_entries`, which renders each entry and rebuilds ``<DIR>/index.html``
once.

The entries and the page are written by :mod:`totalseg_bids.core.qc` (the
report's design, its display convention and its record format are described
there), because ``register``, ``segment_ct`` and ``predict`` add their outputs
to the same report through :func:`totalseg_bids.core.qc_hook.qc_entry`; this
package is the command that adds entries for labels or a config. Its names of
the report machinery (:func:`add_entry`, :func:`build_report`...) are re-exported
from there.

Modules: :mod:`.options`, :mod:`.pairs` (which image each label is shown over),
:mod:`.case` (one entry and its record), :mod:`.batch` (many entries, the page
once), :mod:`.cli`.
"""

from __future__ import annotations

from ..core.qc.entry import add_entry, write_entry
from ..core.qc.evaluate import evaluate_entry
from ..core.qc.marks import filter_labels, read_marks
from ..core.qc.records import ENTRIES_DIR, SCHEMA, entry_stem, file_checksum, load_records
from ..core.qc.render import View, Views, render_views
from ..core.qc.report import MARKS, build_report, report_html
from .batch import add_entries
from .case import UNREADABLE_FLAGS, EntryCase, add_case, entry_result, unreadable_problem
from .cli import get_parser, main
from .options import QcOptions
from .pairs import Pair, check_pairs, entry_pairs, pairs_from_labels

__all__ = [
    # the stage
    "EntryCase", "Pair", "QcOptions", "UNREADABLE_FLAGS", "add_case", "add_entries", "check_pairs", "entry_pairs",
    "entry_result", "get_parser", "main", "pairs_from_labels", "unreadable_problem",
    # the report it writes (core.qc)
    "ENTRIES_DIR", "MARKS", "SCHEMA", "View", "Views", "add_entry", "build_report", "entry_stem", "evaluate_entry",
    "file_checksum", "filter_labels", "load_records", "read_marks", "render_views", "report_html", "write_entry",
]
