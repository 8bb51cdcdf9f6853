"""Command line of ``python -m totalseg_bids.export``: parse, export a config or import a folder."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ..core import cli, flags
from ..core.errors import UsageError
from ..core.options import options_from_args
from .batch import export_config, import_folder
from .options import EXPORT_FORMATS, NPY_NAMES, ExportOptions


def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser("export", "Export a config's volumes and masks as 3D .npy with a geometry sidecar "
                                   "(and import them back).",
                         epilog="stdout: one JSON line per volume (status, path, source)\n"
                                "example:\n  python -m totalseg_bids.export --config train.json --format npy --out npy")
    p.add_argument("--config", type=Path, help="data config (docs/conventions.md)")
    p.add_argument("--import", dest="import_dir", type=Path, default=None,
                   help="instead: turn the .npy volumes of this folder back into NIfTI under --out")
    p.add_argument("--format", choices=EXPORT_FORMATS, default="npy")
    p.add_argument("--npy-names", choices=NPY_NAMES, default="bids",
                   help="bids: <BIDS stem>.npy; clot: <case>_CTA_Binary.npy, <case>_NCCT_Reg_Binary.npy, "
                        "<case>_seg_corrected_binary.npy (the clot workflow's names)")
    flags.add_out(p, dest="out", required=True, help="output folder")
    p.add_argument("--datasets-path", default=None, help="override the config's DATASETS_PATH")
    cli.add_batch_args(p, dask=False)
    return p


def _run(args: argparse.Namespace) -> int:
    opts = options_from_args(ExportOptions, args)
    if args.import_dir is not None:
        cli.report("export", lambda: import_folder(args.import_dir, args.out, opts))
        return 0
    if args.config is None:
        raise UsageError("--config is required without --import", None, "add --config train.json")
    cli.report("export", lambda: export_config(args.config, args.out, opts))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)
