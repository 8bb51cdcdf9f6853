"""Command line of ``python -m totalseg_bids.augment``: parse, augment the slices."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ..core import cli, flags
from ..core.options import options_from_args
from .batch import augment
from .layout import LAYOUTS
from .options import AugmentOptions


def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser(
        "augment", "Augment 2D slices to exact per-split sample counts (albumentations).",
        epilog="example:\n  python -m totalseg_bids.augment --slices slices --out aug "
               "--target-train 2000 --target-val 400 --seed 1 -j 2")
    p.add_argument("--slices", required=True, type=Path,
                   help="output of totalseg_bids.slices (mmseg folder, or the nnunet2d Dataset<NNN>_<Name> folder)")
    flags.add_out(p, dest="out", required=True,
                  help="output folder (nnunet2d: the nnUNet_raw folder that gets Dataset<NNN>_<Name>)")
    p.add_argument("--target-train", type=int, default=None, metavar="N", help="training samples to write")
    p.add_argument("--target-val", type=int, default=None, metavar="M", help="validation samples to write")
    p.add_argument("--recipe", type=Path, default=None,
                   help="albumentations Compose saved with A.save (default: the six-transform clot recipe)")
    p.add_argument("--keep-originals", action="store_true", help="count the source slices into the targets")
    p.add_argument("--layout", choices=LAYOUTS, default=None,
                   help="default: the layout of --slices; clotseg: "
                        "Processed/{Original,Sliced,Augmented}/{Training,Validation,Testing}/{images,masks}")
    flags.add_dataset_id(p, dest="dataset_id", default=502, help="nnunet2d output dataset id (default 502)")
    p.add_argument("-dname", "--dataset-name", default="SlicesAugmented",
                   help="nnunet2d output dataset name (default SlicesAugmented)")
    p.add_argument("--seed", type=int, default=0, help="seed of sampling and transforms")
    cli.add_batch_args(p, dask=False)
    return p


def _run(args: argparse.Namespace) -> int:
    options = options_from_args(AugmentOptions, args)
    cli.report("augment", lambda: augment(args.slices, args.out, options))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)
