"""Visual quality control: a static, keyboard-driven HTML report of label overlays.

``python -m totalseg_bids.qc`` adds entries for labels (or a config) and rebuilds the report.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from ..core import flags
from ..core import cli
from ..core.errors import UsageError
from ..core.options import options_from_args
from .batch import _pairs_from_labels, add_entries, check_pairs
from .options import QcOptions


def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser("qc", __doc__.splitlines()[0], epilog=(
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
    flags.add_out(p, dest="qc", aliases=("--qc",), required=True, metavar="DIR", help="QC report folder (created)")
    p.add_argument("--stage", default="label", help="stage name shown in the report (default: label)")
    p.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                   help="parallel workers (default: number of CPU cores)")
    cli.add_datalad_args(p)
    return p


def _run(args: argparse.Namespace) -> int:
    if args.config and (args.images or args.labels):
        raise UsageError("--config cannot be combined with --images/--labels", None, "use one or the other")
    if args.config:
        from ..core.config import load_config

        cfg = load_config(args.config, args.datasets_path)
        cases = cfg.cases(args.splits, check_exists=False)
        pairs = [(c.image, c.label) for c in cases]
        if not pairs:
            raise UsageError("the config lists no entries", args.config, "check its splits")
    elif args.labels and args.images:
        if len(args.images) != len(args.labels):
            raise UsageError(f"{len(args.images)} --images but {len(args.labels)} --labels", None,
                             "give one image per label, in the same order (or --labels alone)")
        pairs = list(zip(args.images, args.labels))
    elif args.labels:
        pairs = _pairs_from_labels(args.labels)
    elif args.images:
        pairs = [(img, None) for img in args.images]
    else:
        raise UsageError("nothing to show", None, "give --labels (and --images) or --config")
    if args.compare_labels and len(args.compare_labels) != len(pairs):
        raise UsageError(f"{len(args.compare_labels)} --compare-labels for {len(pairs)} entries", None,
                         "give one comparison label per entry")
    check_pairs(pairs)
    cli.fetch_inputs(args, [p for pair in pairs for p in pair] + list(args.compare_labels or []))
    options = options_from_args(QcOptions, args)
    with cli.saving(args, [args.qc]):
        cli.report("qc", lambda: add_entries(args.qc, pairs, options, compares=args.compare_labels))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)


if __name__ == "__main__":
    raise SystemExit(main())
