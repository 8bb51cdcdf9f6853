"""Command line of ``python -m totalseg_bids.provenance``: ``mark-manual`` and ``show``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ..core import cli
from ..core.options import options_from_args
from .batch import mark_manual_labels, show
from .options import ManualOptions

STAGE = "provenance"


def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser(STAGE, "Record manual corrections of labels in their sidecars (GeneratedBy).", epilog=(
        "examples:\n"
        "  python -m totalseg_bids.provenance mark-manual "
        "derivatives/labels/sub-01/anat/sub-01_T2w_label-sacrum_seg.nii.gz --author 'Jane Doe'\n"
        "  python -m totalseg_bids.provenance show derivatives/labels/sub-01/anat/sub-01_T2w_label-sacrum_seg.nii.gz"))
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    mark = sub.add_parser("mark-manual", help="record that labels were corrected by hand (one JSON line per sidecar)")
    mark.add_argument("labels", nargs="+", type=Path, metavar="LABEL")
    mark.add_argument("--author", required=True, help="who corrected the labels")
    mark.add_argument("--date", default=None, help="when (ISO 8601; default now)")
    mark.add_argument("--description", default=None, help="what was corrected")
    show_ = sub.add_parser("show", help="print the GeneratedBy of labels (JSON lines)")
    show_.add_argument("labels", nargs="+", type=Path, metavar="LABEL")
    return p


def _run(args: argparse.Namespace) -> int:
    if args.command == "mark-manual":
        opts = options_from_args(ManualOptions, args)
        cli.report(STAGE, lambda: mark_manual_labels(args.labels, opts))
    else:
        cli.emit(STAGE, show(args.labels))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)
