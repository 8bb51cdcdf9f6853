"""Command line of ``python -m totalseg_bids.init_data_config``; the legacy ``--txt ... --type ...
--split-*`` of totalspineseg's script still parses."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ..core import cli, flags
from ..core.config import TYPES
from ..core.options import options_from_args
from .batch import config_from_bids, config_from_list
from .options import GEOMETRY_MODES, InitConfigOptions
from .split import SPLIT_BY, STRATIFY

DESCRIPTION = ("Write a train/validation/test data config (docs/conventions.md section 4) from label or "
               "image lists.")
#: The decisions a user of the legacy script should know, shown in ``--help``.
DECISIONS = """\
* Relative paths in the list are looked up from the current folder first (the
  legacy behaviour), then from the list file's folder, then '--datasets-path'.
  Blank lines and lines starting with '#' are ignored; duplicates are
  dropped with a warning.
* 'DATASETS_PATH' is the common parent folder of the raw datasets holding the
  files (the legacy value when all datasets share a parent), or
  '--datasets-path'. Entries are paths relative to it.
* Counts per split: 'n * ratio' computed exactly, floors first, the leftover
  units to the largest remainders; ties go to TRAINING, then VALIDATION, then
  TESTING. TRAINING is never empty when there is a unit: if rounding left it
  empty, the split that won the smallest remainder (TESTING on a tie) gives
  one unit back. Every count stays within one unit of 'n * ratio'.
* Units (sorted) are shuffled with 'random.Random(seed)'; with
  '--stratify dataset' each dataset is split on its own (largest remainder
  per dataset, 'random.Random("<seed>:<dataset>")'), so adding a dataset
  does not reshuffle the others. Overall counts are then the per-dataset sums.
* '--bids-dir' has no list file to put the JSON beside: '-o' is required.
* One label per image: several labels of one image (two structures, two
  derivative folders, a prediction beside a transferred label) are refused,
  naming the image and its labels; '--label-dir NAME' and '--label NAME'
  keep one, '--allow-several-labels' keeps each as its own case.
* Every listed file must have a readable NIfTI header (a sidecar or a text
  file named '_seg.nii.gz' is refused).
* '--check-geometry' (= 'error') refuses labels off their image's grid,
  non-binary '_seg'/'_mask' labels and empty labels (exit 1, no JSON);
  '--check-geometry warn' logs them and writes the config anyway.
* Stdout is one JSON line: '{"stage": "init_data_config", "status":
  "written", "path": <config>, "type": ..., "counts": {split: {files, subjects}}}'.
"""


def get_parser() -> argparse.ArgumentParser:
    """The command line; the legacy ``--txt ... --type ... --split-*`` still parses."""
    p = cli.build_parser("init_data_config", DESCRIPTION, epilog=(
        "examples:\n"
        "  find ~+ -type f -name '*_seg.nii.gz' | grep -v CT | sort > train_sacrum.txt\n"
        "  python -m totalseg_bids.init_data_config --txt train_sacrum.txt --type LABEL "
        "--split-validation 0.1 --split-test 0.1\n"
        "  python -m totalseg_bids.init_data_config --bids-dir data/ds1 data/ds2 --label-dir reg-labels "
        "--label-suffix _label-sacrum_seg --contrasts T1w T2w --type LABEL --stratify dataset -o sacrum.json\n"
        "  (datalad/git-annex files are symlinks, which 'find -type f' skips: use\n"
        "   find ~+ -name '*_seg.nii.gz' \\( -type f -o -type l \\) ..., or --bids-dir)\n\n"
        + DECISIONS))
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--txt", type=Path, help="text file listing one label (or image) path per line")
    flags.add_bids_dir(src, nargs="+", help="BIDS dataset folder(s) to query")
    p.add_argument("--label-dir", metavar="NAME",
                   help="derivatives folder holding the labels (with --txt: keep only the listed labels there)")
    p.add_argument("--label", metavar="NAME", help="keep only labels named label-NAME (e.g. sacrum)")
    p.add_argument("--allow-several-labels", action="store_true",
                   help="keep several labels of one image as separate cases (default: an error naming them)")
    p.add_argument("--label-suffix", metavar="SUFFIX",
                   help="end of the label file names, e.g. _label-sacrum_seg or _label-sacrum_mask")
    p.add_argument("--contrasts", nargs="+", metavar="SUFFIX",
                   help="image suffixes to keep with --bids-dir, e.g. T1w T2w (default: all)")
    p.add_argument("--channels", nargs="+", metavar="SPEC", default=None,
                   help="several images per case, in this order, each named like the listed file's image with "
                        "these entities and suffix: e.g. --channels ce-contrast_CT CT (a CT angiography and the "
                        "plain CT on its grid); entries become {\"IMAGE\": [...], \"LABEL\": ...}")
    p.add_argument("--type", required=True, choices=TYPES, type=str.upper, help="the listed files are LABEL or IMAGE")
    p.add_argument("--split-validation", type=float, default=0.1, help="validation ratio (default 0.1)")
    p.add_argument("--split-test", type=float, default=0.1, help="testing ratio (default 0.1)")
    p.add_argument("--seed", type=int, default=42, help="random seed of the split (default 42)")
    p.add_argument("--split-by", choices=SPLIT_BY, default="subject",
                   help="keep each subject's files together (default) or split files one by one")
    p.add_argument("--stratify", choices=STRATIFY, default=None,
                   help="split each dataset in the ratios on its own")
    flags.add_out(p, dest="out", metavar="OUT.json",
                  help="config to write (default with --txt: the list path with .json)")
    p.add_argument("--check-geometry", nargs="?", const="error", choices=GEOMETRY_MODES, default=None,
                   help="check each label is on its image's grid, binary (_seg/_mask) and not empty; "
                        "error (default when given) or warn")
    p.add_argument("--datasets-path", type=Path, metavar="DIR",
                   help="DATASETS_PATH to write (default: the common parent folder of the datasets)")
    p.add_argument("--qc-marks", type=Path, metavar="MARKS.tsv",
                   help="marks exported from the QC report: drop the labels marked --exclude")
    p.add_argument("--exclude", default="fail", metavar="MARKS", type=lambda text: tuple(text.split(",")),
                   help="comma-separated marks to drop with --qc-marks (default fail; e.g. fail,artifact)")
    p.add_argument("--require-pass", action="store_true", help="with --qc-marks keep only labels marked pass")
    p.add_argument("--datalad-get", action="store_true",
                   help="fetch annexed files without content instead of failing (or TOTALSEG_BIDS_DATALAD_GET=1)")
    return p


def _run(args: argparse.Namespace) -> int:
    opts = options_from_args(InitConfigOptions, args)  # usage errors before touching files
    if args.txt is not None:
        record = config_from_list(args.txt, args.out, opts)
    else:
        record = config_from_bids(args.bids_dir, args.out, opts)
    cli.emit("init_data_config", [record])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0, 1 bad input, 2 usage)."""
    return cli.run(get_parser(), argv, _run)
