"""``python -m totalseg_bids.model export|install|list``: parse the arguments and dispatch."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ..core import cli, flags
from ..core.options import options_from_args
from ..nnunet import paths
from ..nnunet.naming import DEFAULT_CONFIGURATION, DEFAULT_PLANS
from .batch import installed
from .case import export, install, installed_record
from .options import ExportOptions

DESCRIPTION = "Ship a trained nnU-Net as one zip file and install it on another machine."


def get_parser() -> argparse.ArgumentParser:
    """The command line of the stage: one sub-command per action."""
    p = cli.build_parser(
        "model", DESCRIPTION,
        epilog="examples:\n"
               "  python -m totalseg_bids.model export -d 300 -c 3d_fullres -f 0 -o sacrum_model.zip\n"
               "  python -m totalseg_bids.model install sacrum_model.zip --name sacrum\n"
               "  python -m totalseg_bids.model list")
    sub = p.add_subparsers(dest="action", required=True)
    ex = sub.add_parser("export", help="write a trained model (nnU-Net's zip format) with its model card")
    flags.add_dataset_id(ex, dest="dataset_id", type=str, required=True, help="dataset id or name in $nnUNet_results")
    ex.add_argument("-c", "--configuration", default=DEFAULT_CONFIGURATION)
    ex.add_argument("-f", "--folds", nargs="+", default=["0"], help="folds to export (default 0)")
    ex.add_argument("-tr", "--trainer", default=paths.DEFAULT_TRAINER)
    ex.add_argument("-p", "--plans", default=DEFAULT_PLANS)
    flags.add_out(ex, dest="out", required=True, help="zip file to write")
    ins = sub.add_parser("install", help="install an exported zip into $TOTALSEG_BIDS_MODELS or $nnUNet_results")
    ins.add_argument("zip", type=Path)
    ins.add_argument("--name", default=None, help="name for predict --model (default: the dataset name)")
    sub.add_parser("list", help="installed models with their cards, one JSON object per line")
    return p


def _run(args: argparse.Namespace) -> int:
    """Export, install or list; one record per model on stdout."""
    if args.action == "export":
        zip_path = export(args.dataset_id, args.out, options_from_args(ExportOptions, args))
        cli.emit("model", [{"status": "written", "path": zip_path, "dataset": args.dataset_id,
                            "configuration": args.configuration}])
    elif args.action == "install":
        cli.emit("model", [installed_record(install(args.zip, args.name), paths.models_root())])
    else:
        cli.emit("model", [installed_record(entry, paths.models_root()) for entry in installed()])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stage; the exit code of the CLI contract (docs/conventions.md section 8)."""
    return cli.run(get_parser(), argv, _run)
