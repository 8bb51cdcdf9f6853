"""Measure predictions against reference labels.

``python -m totalseg_bids.evaluate --pred P --ref R [-o metrics.tsv] [--labels ...] [--tolerance-mm 2]``
pairs two folders by file name (nnU-Net's ``evaluate_folder`` convention);
``--config C --split TESTING --pred NAME`` pairs each case of a data config's
split with its prediction by BIDS entities. Per case and class: Dice, IoU,
HD95 (mm), average symmetric surface distance (mm), normalised surface Dice at
the tolerance, predicted and reference volume (ml), relative volume difference.
Outputs: the TSV (``-o``), one JSON line per case on stdout, a per-class
Markdown summary (``--summary`` and stderr), and with ``--qc DIR`` the figures
beside each prediction in the QC report.

Why it is built this way:

* Dice and IoU are nnU-Net's (``compute_metrics``: the same counts and
  formulas), HD95, ASSD and NSD MONAI's (``compute_hausdorff_distance``,
  ``compute_average_surface_distance``, ``compute_surface_dice``); the tests
  compare both on the same files. Where both masks are empty this stage gives
  Dice 1 (nnU-Net: NaN); see :mod:`.surface` and :mod:`.overlap` for every
  empty case.
* Distances are world distances (the voxel index through the affine), so
  anisotropic and oblique grids are measured in millimetres. A prediction on
  another grid than its reference is refused with one line unless
  ``--resample-to ref`` (nearest neighbour through world coordinates).
* Only the labelled box of each file is read into memory, each class is
  measured on its own box, the surfaces are found once for the three surface
  metrics and searched with a k-d tree: several times faster than the
  libraries on the same values (``benchmarks/bench_evaluate.py``).
* The table is one product: any unusable case (missing partner, unreadable
  file, grid mismatch, values that are not labels) stops the run with one line
  per problem, exit 1, and nothing written.

Library callers use :func:`evaluate_pair` (one case), :func:`evaluate_folders`
and :func:`evaluate_config` (records, one per case), then :func:`write_table`
and :func:`write_summary`.
"""

from .batch import complete_classes, evaluate_config, evaluate_folders, evaluate_pairs, write_summary, write_table
from .case import evaluate_case, evaluate_pair, load_pair, qc_meta
from .cli import get_parser, main
from .labels import class_names, label_name, parse_label_specs, resolve_classes
from .measure import FLAGS, METRICS, case_metrics, class_metrics, empty_class_metrics, joint_box
from .options import DEFAULT_TOLERANCE_MM, RESAMPLE_TO, EvaluateOptions
from .overlap import Counts, dice, iou, overlap_metrics, relative_volume_difference
from .pairing import Pair, pair_config, pair_folders
from .summary import metric_stats, summary_markdown
from .surface import surface_distances, surface_metrics, surface_voxels
from .table import COLUMNS, json_safe, tsv_text

__all__ = ["COLUMNS", "Counts", "DEFAULT_TOLERANCE_MM", "EvaluateOptions", "FLAGS", "METRICS", "Pair", "RESAMPLE_TO",
           "case_metrics", "class_metrics", "class_names", "complete_classes", "dice", "empty_class_metrics",
           "evaluate_case", "evaluate_config", "evaluate_folders", "evaluate_pair", "evaluate_pairs", "get_parser",
           "iou", "joint_box", "json_safe", "label_name", "load_pair", "main", "metric_stats", "overlap_metrics",
           "pair_config", "pair_folders", "parse_label_specs", "qc_meta", "relative_volume_difference",
           "resolve_classes", "summary_markdown", "surface_distances", "surface_metrics", "surface_voxels",
           "tsv_text", "write_summary", "write_table"]
