"""Write a train/validation/test data config (docs/conventions.md section 4) from label or image lists.

Replaces totalspineseg's ``init_data_config.py`` and keeps its command line and
JSON working (``--txt train_sacrum.txt --type LABEL --split-validation 0.1
--split-test 0.1`` writes ``train_sacrum.json``), fixing what was wrong with it:

* files were split one by one, so sessions of one subject leaked between
  TRAINING and TESTING: the split unit is now ``(dataset, subject)``;
* the cut points ``int(n * cumulative ratio)`` silently dropped a file for some
  ratios (``0.7/0.2/0.1`` over 9 files): counts now come from exact fractions
  by largest remainder, and every file lands in exactly one split;
* ``random.shuffle`` was unseeded: the split is now a function of ``--seed``;
* a missing file, a label without image, or an annexed file stopped the run
  one at a time (or with a bad-gzip error later): all are reported in one line.

Decisions (how relative paths are found, how DATASETS_PATH and the counts per
split are chosen, what is checked) are listed in ``--help``
(:data:`.cli.DECISIONS`).

Library callers pass :class:`InitConfigOptions` (or its fields as keywords) to
:func:`config_from_list` or :func:`config_from_bids`, or build a config from
paths with :func:`build_config` and :func:`write_config`. Modules:
:mod:`.options`, :mod:`.split` (the split), :mod:`.listing` (path lists),
:mod:`.query` (BIDS datasets), :mod:`.checks` (the files), :mod:`.labels`
(one label per image), :mod:`.build` (the config), :mod:`.case` (writing it),
:mod:`.batch` (gathering the files), :mod:`.cli`.
"""


from .batch import apply_qc_marks, config_from_bids, config_from_list
from .build import build_config, common_datasets_path, config_dict, datasets_base
from .case import make_config, write_config
from .checks import Item, check_files, check_geometry, check_pairs, parse_items, readable_nifti
from .cli import DECISIONS, get_parser, main
from .labels import choose_labels, label_folder
from .listing import SHOWN, absolute, default_output, listing, parse_path_lines, read_path_list
from .options import GEOMETRY_MODES, TOOL_NAME, GeometryMode, InitConfigOptions
from .query import normalize_label_suffix, query_bids
from .split import (
                    SPLIT_BY,
                    STRATIFY,
                    Entry,
                    SplitBy,
                    Stratify,
                    assign_splits,
                    split_counts,
                    split_unit,
                    validate_ratios,
)

__all__ = [
    "DECISIONS", "Entry", "GEOMETRY_MODES", "GeometryMode", "InitConfigOptions", "Item", "SHOWN", "SPLIT_BY",
    "STRATIFY", "SplitBy", "Stratify", "TOOL_NAME", "absolute", "apply_qc_marks", "assign_splits", "build_config",
    "check_files", "check_geometry", "check_pairs", "choose_labels", "common_datasets_path", "config_dict",
    "config_from_bids", "config_from_list", "datasets_base", "default_output", "get_parser", "label_folder",
    "listing", "main", "make_config", "normalize_label_suffix", "parse_items", "parse_path_lines", "query_bids",
    "read_path_list", "readable_nifti", "split_counts", "split_unit", "validate_ratios", "write_config",
]
