"""Command line of ``python -m totalseg_bids.crop``: parse, find the cases, crop them."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from ..core import cli, flags
from ..core.folders import LABELS
from ..core.options import options_from_args
from .batch import crop_batch
from .discovery import cases_from_bids, cases_from_config
from .options import DEFAULT_CONTRASTS, IMAGE_ORDERS, CropOptions

log = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser(
        "crop", "Crop images and their labels to an ROI mask plus a margin, then optionally resample.",
        epilog="stdout: one JSON line per image (status, path, labels, box)\n"
               "examples:\n"
               "  python -m totalseg_bids.crop --bids-dir ds --contrasts CT T2w --roi-dir labels "
               "--roi-label sacrum --margin-mm 20 --factor 3\n"
               "  python -m totalseg_bids.crop --config train.json --roi-dir labels --roi-label skull "
               "--spacing 1 1 1 --image-interp bspline --label-interp label")
    src = p.add_mutually_exclusive_group(required=True)
    flags.add_bids_dir(src, help="raw BIDS dataset")
    src.add_argument("--config", type=Path, metavar="CONFIG.json", help="data config (docs/conventions.md section 4)")
    p.add_argument("--contrasts", nargs="+", default=list(DEFAULT_CONTRASTS), metavar="SUFFIX",
                   help="image suffixes with --bids-dir (default: CT T1w T2w)")
    p.add_argument("--datasets-path", default=None, help="override the config's DATASETS_PATH")
    p.add_argument("--roi-dir", required=True,
                   help="derivative folder with the ROI masks: a name inside <bids>/derivatives/ or a path")
    p.add_argument("--roi-label", required=True, help="ROI structure, e.g. sacrum (matches label-<name>)")
    p.add_argument("--margin-mm", type=float, default=20.0, help="margin around the ROI box (default 20)")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--spacing", type=float, nargs=3, metavar=("SX", "SY", "SZ"),
                        help="resample the crop to this voxel size (mm, image axis order)")
    target.add_argument("--factor", type=float, help="multiply the spacing by this (3: the seed's reduction)")
    target.add_argument("--shape", type=int, nargs=3, metavar=("X", "Y", "Z"),
                        help="fixed voxel shape centred on the ROI (pad/cut, no resampling)")
    p.add_argument("--image-interp", choices=tuple(IMAGE_ORDERS), default="linear")
    flags.add_label_interp(p, dest="label_interp")
    flags.add_out(p, dest="out", default=None, help="output derivative dataset (default <bids>/derivatives/cropped)")
    p.add_argument("--label-dir", default=LABELS,
                   help=f"with --bids-dir: derivative folder whose labels are cropped along (default {LABELS})")
    p.add_argument("--label-suffix", default=None,
                   help="with --bids-dir: only labels whose name ends with this, e.g. _label-sacrum_seg")
    cli.add_naming_arg(p)
    cli.add_batch_args(p)
    cli.add_datalad_args(p)
    return p


def _run(args: argparse.Namespace) -> int:
    # the command saves the output folders itself, with the command line as the datalad message
    opts = options_from_args(CropOptions, args, datalad_save=False)
    if args.config is not None:
        cases = cases_from_config(args.config, args.out, opts)
    else:
        cases = cases_from_bids(args.bids_dir, args.out, opts)
    with cli.saving(args, sorted({c.out_root for c in cases if c.out_root is not None})):
        results = cli.report("crop", lambda: crop_batch(cases, opts))
    done = sum(r.status == "written" for r in results)
    log.info("cropped %d image(s), %d already done", done, len(results) - done)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)
