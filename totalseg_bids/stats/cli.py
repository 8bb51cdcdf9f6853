"""Command line of ``python -m totalseg_bids.stats``: parse, compute, write the reports."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..core import cli, flags
from ..core.options import options_from_args
from .batch import config_stats, export_stats
from .options import StatsOptions
from .reports import markdown, report_format, write_report


def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser("stats", "Dataset statistics of a data config: cases, subjects, classes, volumes, spacings, "
                         "shapes.",
                         epilog="stdout: one JSON line (status computed, path = the config, cases, datasets, "
                                "outputs).\nWithout -o/--json the Markdown tables go to stderr.\n"
                                "examples:\n  python -m totalseg_bids.stats --config train.json -o stats.tsv "
                                "--json stats.json\n  python -m totalseg_bids.stats --config train.json -o stats.md\n"
                                "  python -m totalseg_bids.stats --slices cranium_mmseg -o classes.md")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", type=Path, help="data config (docs/conventions.md section 4)")
    src.add_argument("--slices", type=Path, metavar="DIR",
                     help="instead: a 2D export of totalseg_bids.slices, each slice an image (the class table of "
                          "MMSegmentation's dataset pages: class, pixel percentage, images with the class)")
    p.add_argument("--datasets-path", default=None, help="override the config's DATASETS_PATH")
    p.add_argument("--labels-tsv", type=Path, default=None, help="index/name table (a _dseg.tsv) for class names")
    flags.add_out(p, dest="out", default=None, metavar="OUT.tsv|OUT.md|OUT.json",
                  help="write the report here, in the format of its extension")
    p.add_argument("--json", type=Path, default=None, metavar="OUT.json", help="also write the JSON here")
    p.add_argument("-j", "--jobs", type=int, default=None, metavar="N", help="parallel workers")
    cli.add_datalad_args(p)
    return p


def _run(args: argparse.Namespace) -> int:
    reports = [(path, fmt) for path, fmt in ((args.out, args.out and report_format(args.out)),
                                             (args.json, ".json")) if path is not None]
    if args.slices is not None:
        stats = export_stats(args.slices, options_from_args(StatsOptions, args))
    else:
        cli.fetch_inputs(args, cli.config_inputs(args.config, args.datasets_path))
        stats = config_stats(args.config, options_from_args(StatsOptions, args))
    for path, fmt in reports:
        write_report(stats, path, fmt)
    cli.save_outputs(args, [path for path, _ in reports])
    if not reports and not args.quiet:
        sys.stderr.write(markdown(stats))
    cases = sum(splits["all"]["cases"] for splits in stats.values())
    cli.emit("stats", [{"status": "computed", "path": args.slices or args.config, "cases": cases, "datasets": stats,
                        "outputs": [path for path, _ in reports]}])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)
