"""Command line of ``python -m totalseg_bids.slices``: parse, export the config's slices."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ..core import cli, flags
from ..core.options import options_from_args
from .batch import export_base, export_slices
from .options import AXES, FORMATS, LAYOUTS, SlicesOptions


def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser(
        "slices", "Export 2D slices of config images and masks (MMSegmentation or nnU-Net 2D layout).",
        epilog="stdout: one JSON line (status, path = the slices.tsv manifest, cases, slices)\n"
               "examples:\n"
               "  python -m totalseg_bids.slices --config train.json --out slices --axis axial "
               "--only-labelled --window bone\n"
               "  python -m totalseg_bids.slices --config ct_mr.json --out $nnUNet_raw --layout nnunet2d "
               "--dataset-id 501 -dname SacrumSlices --window bone --percentile 1 99")
    p.add_argument("--config", required=True, type=Path, help="data config (docs/conventions.md section 4)")
    flags.add_out(p, dest="out", required=True, help="output folder (nnunet2d: the nnUNet_raw folder)")
    p.add_argument("--datasets-path", default=None, help="override the config's DATASETS_PATH")
    p.add_argument("--axis", choices=tuple(AXES), default="axial", help="slice axis in RAS+ world orientation")
    p.add_argument("--only-labelled", action="store_true", help="only slices with label, plus --empty-fraction")
    p.add_argument("--empty-fraction", type=float, default=0.1,
                   help="share of the label-free slices kept with --only-labelled (default 0.1)")
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--window", nargs="+", metavar="W", default=None,
                       help="CT window(s): brain (W80/L40), bone (W2000/L500), soft (W400/L40) or W,L; "
                            "one for all channels or one per channel")
    scale.add_argument("--percentile", type=float, nargs=2, default=(1.0, 99.0), metavar=("LOW", "HIGH"),
                       help="per-volume percentile scaling (MRI; default 1 99)")
    p.add_argument("--format", choices=FORMATS, default="png", help="png/tif: uint8 (windowed); npy: raw float32")
    p.add_argument("--layout", choices=LAYOUTS, default="mmseg")
    flags.add_dataset_id(p, dest="dataset_id", default=501, help="nnunet2d dataset id (default 501)")
    p.add_argument("-dname", "--dataset-name", default="Slices", help="nnunet2d dataset name (default Slices)")
    p.add_argument("--channels", nargs="+", default=None, metavar="NAME",
                   help="channel names for dataset.json (default: the image suffixes)")
    p.add_argument("--labels-tsv", type=Path, default=None, help="index/name table for the class names")
    p.add_argument("--pad-to", type=int, nargs=2, default=None, metavar=("ROWS", "COLUMNS"),
                   help="centre every slice in a canvas of this size (image 0 / the window's black, mask "
                        "background), as the clot workflow's 256 256; a larger slice is refused")
    p.add_argument("--seed", type=int, default=0, help="seed of the empty-slice sampling and of the nnunet2d folds")
    p.add_argument("--folds", type=int, default=None, metavar="K",
                   help="nnunet2d: cross-validation folds in splits_final.json, drawn by subject and stratified by "
                        "dataset (default 5, or one per subject when there are fewer; 1: the config's split)")
    cli.add_batch_args(p)
    cli.add_datalad_args(p)
    return p


def _run(args: argparse.Namespace) -> int:
    # the command saves the export itself, with the command line as the datalad message
    opts = options_from_args(SlicesOptions, args, datalad_save=False)
    with cli.saving(args, [export_base(args.out, opts)]):
        result = export_slices(args.config, args.out, opts)
    cli.emit("slices", [result])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)
