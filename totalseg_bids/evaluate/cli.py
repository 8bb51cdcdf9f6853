"""Command line of ``totalseg_bids.evaluate``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from ..core import cli, flags
from ..core.atomic import ensure_writable_dir
from ..core.config import SPLITS
from ..core.errors import UsageError
from ..core.options import EXECUTORS, options_from_args
from .batch import evaluate_config, evaluate_folders, write_summary, write_table
from .options import DEFAULT_TOLERANCE_MM, RESAMPLE_TO, EvaluateOptions
from .table import json_safe

log = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser("evaluate", "Measure predictions against reference labels: Dice, IoU, HD95, ASSD, "
                                     "normalised surface Dice, volumes.", epilog=(
        "examples:\n"
        "  python -m totalseg_bids.evaluate --pred nnunet_out --ref labelsTs -o metrics.tsv\n"
        "  python -m totalseg_bids.evaluate --config train_sacrum.json --split TESTING --pred labels "
        "-o metrics.tsv --summary summary.md\n\n"
        "stdout: one JSON line per case (status evaluated; NaN and inf as null, the class's flags say why).\n"
        "Both masks empty: Dice 1, IoU 1, HD95/ASSD/NSD nan (flag both_empty); one empty: Dice 0, HD95 and ASSD\n"
        "inf, NSD 0 (flag empty_pred or empty_ref)."))
    p.add_argument("--pred", type=Path, required=True, metavar="DIR",
                   help="predictions: a folder (files named as the references), or with --config a derivative "
                        "folder or a bare NAME for <dataset>/derivatives/NAME")
    p.add_argument("--ref", type=Path, default=None, metavar="DIR",
                   help="references: a folder; with --config optional (default: the config's labels)")
    p.add_argument("--config", type=Path, default=None, help="data config whose --split cases are evaluated")
    p.add_argument("--split", default="TESTING", type=str.upper, choices=SPLITS, help="config split (default TESTING)")
    p.add_argument("--datasets-path", type=Path, default=None, help="override the config's DATASETS_PATH")
    flags.add_out(p, dest="out", default=None, metavar="TSV", help="metrics table, one row per case and class")
    p.add_argument("--summary", type=Path, default=None, metavar="MD",
                   help="per-class summary as Markdown (also printed on stderr unless -q)")
    p.add_argument("--labels", nargs="+", default=[], metavar="LABEL",
                   help="classes to measure: VALUE, NAME or VALUE=NAME (default: every class a file names or holds)")
    p.add_argument("--tolerance-mm", type=float, default=DEFAULT_TOLERANCE_MM, metavar="MM",
                   help=f"normalised surface Dice tolerance (default {DEFAULT_TOLERANCE_MM:g})")
    p.add_argument("--resample-to", choices=RESAMPLE_TO, default=None,
                   help="ref: bring a prediction on another grid onto the reference grid (nearest neighbour "
                        "through world coordinates); default: refuse such a pair")
    p.add_argument("--chill", action="store_true",
                   help="leave out references without a prediction (nnU-Net's -chill; a fold's validation "
                        "predictions against labelsTr) instead of refusing them")
    p.add_argument("--qc", type=Path, default=None, metavar="DIR", dest="qc_dir",
                   help="add the figures to each prediction's entry of the QC report in DIR")
    p.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                   help="parallel workers (default: number of CPU cores)")
    p.add_argument("--executor", choices=EXECUTORS, default="local", help="run the cases locally or on Dask")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS", help="Dask scheduler address for --executor dask")
    p.add_argument("--datalad-get", action="store_true",
                   help="fetch annexed inputs with datalad before reading them (or TOTALSEG_BIDS_DATALAD_GET=1)")
    return p


def _run(args: argparse.Namespace) -> int:
    options = options_from_args(EvaluateOptions, args).check()
    if args.config is None and args.ref is None:
        raise UsageError("--ref is required without --config", None, "give --ref DIR, or --config C --split TESTING")
    for target in (args.out, args.summary):
        if target is not None:  # one clear error now, not after every case is measured
            ensure_writable_dir(target.parent)
    if args.config is not None:
        records = evaluate_config(args.config, args.pred, args.ref, args.split, args.datasets_path, options)
    else:
        records = evaluate_folders(args.pred, args.ref, options)
    if args.out is not None:
        write_table(records, args.out, options.tolerance_mm)
    ref = args.ref or f"{args.config} ({args.split})"
    text = write_summary(records, args.summary, options.tolerance_mm, str(args.pred), str(ref))
    cli.emit("evaluate", [json_safe(r) for r in records])
    if not args.quiet:
        print(text, file=sys.stderr, flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)
