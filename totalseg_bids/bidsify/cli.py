"""Command line of ``totalseg_bids.bidsify``: a public dataset's download -> BIDS."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ..core import cli, flags
from ..core.options import options_from_args
from .batch import bidsify
from .options import MR_SUFFIXES, BidsifyOptions
from .sources import SOURCES


def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser("bidsify", "a public dataset's download -> BIDS",
                         epilog="example: python -m totalseg_bids.bidsify --source mrspineseg "
                                "--in MRSpineSeg/train --out mrspineseg_bids")
    p.add_argument("--source", required=True, help=f"dataset layout: {', '.join(SOURCES)}")
    p.add_argument("--in", dest="inp", required=True, type=Path, help="the dataset as downloaded")
    flags.add_out(p, dest="out", required=True, help="BIDS dataset folder to write")
    p.add_argument("--dry-run", action="store_true",
                   help="print the planned files (status planned, source and path), write nothing")
    p.add_argument("--mr-suffix", choices=MR_SUFFIXES, default=None,
                   help="synthrad2023: MR contrast where the overview does not say")
    p.add_argument("--classes", nargs="+", default=None,
                   help="totalsegmentator: binary masks of these classes; mrspineseg: also 'sacrum' as a mask; "
                        "goldatlas, dicom: only these RTSTRUCT ROIs (label names, e.g. sacrum)")
    p.add_argument("--config", type=Path, default=None,
                   help="dicom: a dcm2bids 3 configuration, used as dcm2bids uses it (descriptions with datatype, "
                        "suffix, custom_entities, criteria on the dcm2niix sidecar, sidecar_changes, id; extractors); "
                        "goldatlas: descriptions tried before the built-in rules")
    p.add_argument("--subject-regex", default=None,
                   help="dicom: regex on each file's path below --in; its group 'sub' (else its first group) is the "
                        "subject (default: PatientID)")
    p.add_argument("--session-regex", default=None,
                   help="dicom: regex on the path whose group 'ses' (else first group) is the session (default: one "
                        "session per study when a subject has several)")
    p.add_argument("--keep-derived", action="store_true",
                   help="dicom: also convert derived images and localizers (ImageType DERIVED/SECONDARY/LOCALIZER)")
    p.add_argument("--strict", action="store_true",
                   help="dicom: exit 1 when a series is not converted (after the others are written)")
    p.add_argument("--combine", default=None, metavar="NAME",
                   help="dicom, goldatlas: the RTSTRUCT ROIs (those of --classes, in that order) as one "
                        "label-NAME _dseg with its .tsv instead of one _seg per ROI")
    p.add_argument("--mask-threshold", type=float, default=None, metavar="T",
                   help="pattern, ctich, finding-lungs, clotseg: a mask voxel above T is foreground "
                        "(default half the range of the mask's type, 127.5 for 8-bit JPEG/PNG/TIFF; 0/1 masks "
                        "are kept as they are); values between the two extremes are reported")
    p.add_argument("--pattern", default=None, help="pattern: regex on image paths, groups sub[, ses, acq, run, slice]")
    p.add_argument("--label-pattern", default=None, help="pattern: regex on mask paths (same groups)")
    p.add_argument("--label-name", default="mask", help="pattern: label- name of the masks")
    p.add_argument("--suffix", default=None, help="pattern: BIDS suffix of the images (T2w, CT, ...)")
    p.add_argument("--spacing", type=float, nargs=3, default=None, metavar=("X", "Y", "Z"),
                   help="pattern, ctich (jpg), clotseg, finding-lungs (2D slices): voxel size in mm of .npy volumes "
                        "and 2D slice stacks")
    p.add_argument("--orientation", default=None,
                   help="where voxel axes i, j, k (columns, rows, slices of 2D stacks) point: RAS, LPS, ... "
                        "(default: pattern and clotseg RAS; ctich and finding-lungs LPS, as radiological slices show)")
    cli.add_naming_arg(p)
    cli.add_batch_args(p, dask=False)
    cli.add_datalad_args(p)
    return p


def _run(args: argparse.Namespace) -> int:
    options = options_from_args(BidsifyOptions, args, command=args.command_line, datalad_save=False)
    if options.dry_run:
        cli.report("bidsify", lambda: bidsify(args.source, args.inp, args.out, options))
        return 0
    with cli.saving(args, [args.out], f"bidsify --source {args.source}"):
        cli.report("bidsify", lambda: bidsify(args.source, args.inp, args.out, options))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)
