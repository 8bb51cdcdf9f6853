"""Command line of ``python -m totalseg_bids.qc``: parse, find the pairs, add the entries."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ..core import cli, flags
from ..core.errors import UsageError
from ..core.options import options_from_args
from .batch import add_entries
from .options import QcOptions
from .pairs import entry_pairs


def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser("qc", "Visual quality control: a static, keyboard-driven HTML report of label overlays.",
                         epilog=(
        "examples:\n"
        "  python -m totalseg_bids.qc --labels ds/derivatives/labels/sub-*/anat/*_seg.nii.gz --qc qc\n"
        "  python -m totalseg_bids.qc --images a_T2w.nii.gz --labels a_T2w_label-sacrum_seg.nii.gz --qc qc\n"
        "  python -m totalseg_bids.qc --config config.json --datasets-path /data --qc qc\n"
        "then open qc/index.html in a browser (keys: j/k, space, p/f/a, e)."))
    p.add_argument("--images", nargs="+", type=Path, metavar="IMG",
                   help="background images, paired with --labels by position")
    p.add_argument("--labels", nargs="+", type=Path, metavar="LAB",
                   help="label maps; without --images each label's image is found from its BIDS name")
    p.add_argument("--compare-labels", nargs="+", type=Path, metavar="LAB",
                   help="labels drawn as a cyan contour over each entry (e.g. the CT label for register)")
    p.add_argument("--config", type=Path, help="data config JSON (docs/conventions.md section 4)")
    p.add_argument("--datasets-path", type=Path, help="override the config's DATASETS_PATH")
    p.add_argument("--splits", nargs="+", metavar="SPLIT", help="config splits to show (default all)")
    flags.add_out(p, dest="out", aliases=("--qc",), required=True, metavar="DIR", help="QC report folder (created)")
    p.add_argument("--stage", default="label", help="stage name shown in the report (default: label)")
    p.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                   help="parallel workers (default: number of CPU cores)")
    cli.add_datalad_args(p)
    return p


def _run(args: argparse.Namespace) -> int:
    pairs = entry_pairs(args.images, args.labels, args.config, args.datasets_path, args.splits)
    if args.compare_labels and len(args.compare_labels) != len(pairs):
        raise UsageError(f"{len(args.compare_labels)} --compare-labels for {len(pairs)} entries", None,
                         "give one comparison label per entry")
    cli.fetch_inputs(args, [p for pair in pairs for p in pair] + list(args.compare_labels or []))
    options = options_from_args(QcOptions, args)
    with cli.saving(args, [args.out]):
        cli.report("qc", lambda: add_entries(args.out, pairs, options, compares=args.compare_labels))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)
