"""Visual quality control: a static, keyboard-driven HTML report of label overlays.

``python -m totalseg_bids.qc --labels LAB [LAB ...] --qc DIR`` (images found from
the label names), ``--images IMG ... --labels LAB ...`` (paired by position) or
``--config CONFIG.json --qc DIR``; the ``register`` and ``predict`` stages call
:func:`add_entry` for every image they process (it never fails their work).

Why it is built this way:

* People check transferred and predicted masks by eye, the way the
  spinalcordtoolbox QC report taught them: one entry per image, paged with the
  keyboard, marked pass / fail / artifact, marks exported as TSV/JSON.
* Every entry is a JSON record plus PNGs in ``<qc>/entries/``; ``index.html``
  is rebuilt from *all* records under a file lock, so parallel jobs (a process
  pool, several SLURM jobs, register and predict at once) can add entries
  without losing each other's. Re-adding an entry replaces it (stable ids).
* The report opens from the file system (``file://``): no server, no network;
  the records are inlined in the page, the script and style sheet are local.
* Each record carries the label's checksum, so a mark given in the browser
  stays with the version of the file that was reviewed.
* QC must never stop a pipeline: unreadable files, a missing label or a label
  on another grid become *flagged* entries that say why.

Display convention (documented in the report next to every view): images are
brought onto an axis-aligned RAS grid through their affines whatever their
storage orientation (sagittal ASL, oblique, LPS...), with square pixels.
Sagittal tiles show superior up and anterior on the left (the ITK-SNAP /
FSLeyes view SCT users know), ordered from the patient's right to left. Axial
tiles use the radiological convention (patient's right on the viewer's left,
anterior up), ordered from superior to inferior. CT is shown with a bone
window (W 1500 / L 300 HU), MRI with a 1-99 percentile window of the shown
voxels.

Modules: :mod:`.display` (pixels), :mod:`.geometry` (where to look),
:mod:`.figures`, :mod:`.render` (mosaics), :mod:`.evaluate` (checks and flags),
:mod:`.records` (entry files), :mod:`.entry` (one entry), :mod:`.options`, :mod:`.report` (the
page), :mod:`.batch` (many entries),
:mod:`.cli`.
"""

from __future__ import annotations

from .batch import UNREADABLE_FLAGS, add_entries, check_pairs, entry_result, unreadable_problem
from .cli import get_parser, main
from ..core.bids import is_ct_name
from ..core.display import to_uint8
from .display import (COMPARE_RGB, CT_WINDOW, MRI_PERCENTILES, PALETTE, contour, label_colors, looks_like_ct, mosaic,
                      orient_tile, overlay_rgb, slice_positions, window_bounds)
from .entry import add_entry, write_entry
from .evaluate import evaluate_entry
from .figures import label_figures
from .geometry import crop_bounds, foreground_box, foreground_world_bounds
from .options import QcOptions
from .records import ENTRIES_DIR, SCHEMA, entry_stem, file_checksum, load_records
from .render import View, Views, render_views
from .report import MARKS, build_report, report_html

__all__ = ["COMPARE_RGB", "CT_WINDOW", "ENTRIES_DIR", "MARKS", "MRI_PERCENTILES", "PALETTE", "QcOptions", "SCHEMA",
           "UNREADABLE_FLAGS", "View", "Views", "add_entries", "add_entry", "build_report", "check_pairs",
           "contour", "crop_bounds", "entry_result", "entry_stem", "evaluate_entry", "file_checksum", "foreground_box",
           "foreground_world_bounds", "get_parser", "is_ct_name", "label_colors", "label_figures",
           "load_records", "looks_like_ct", "main", "mosaic", "orient_tile", "overlay_rgb",
           "render_views", "report_html", "slice_positions", "to_uint8", "unreadable_problem", "window_bounds",
           "write_entry"]
