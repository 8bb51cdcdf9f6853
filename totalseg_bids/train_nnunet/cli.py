"""``python -m totalseg_bids.train_nnunet``: parse the arguments and call :func:`.batch.train`."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from ..core import cli
from ..core.options import options_from_args
from ..nnunet import paths
from .batch import train
from .options import TrainOptions

MODULE = "train_nnunet"
DESCRIPTION = "Plan, preprocess and train an nnU-Net v2 dataset written by totalseg_bids.convert_config_to_nnunet."


def get_parser() -> argparse.ArgumentParser:
    """The seed's positional command line: DATASET_ID [CONFIGURATION] [FOLDS] [TRAINER] [PLANS]."""
    p = cli.build_parser(
        MODULE, DESCRIPTION,
        epilog="examples:\n  python -m totalseg_bids.train_nnunet 300 3d_fullres 0\n"
               "  python -m totalseg_bids.train_nnunet 300 3d_fullres \"0 1 2 3 4\" nnUNetTrainer\n"
               "  python -m totalseg_bids.train_nnunet 300 3d_fullres 0 nnUNetTrainer_2epochs_10iters  # quick CPU run\n"
               f"environment: nnUNet_raw, nnUNet_preprocessed, nnUNet_results (required); {paths.TRAINER_ENV} "
               "(default trainer); DEVICE=cpu|cuda|mps; NNUNET_NP (preprocessing processes); SKIP_PREPROCESS=1; "
               "TRAIN_ARGS (more nnUNetv2_train flags)")
    p.add_argument("dataset_id", help="nnU-Net dataset number (the converter's -d)")
    p.add_argument("configuration", nargs="?", default="3d_fullres")
    p.add_argument("folds", nargs="?", default="0", help="fold(s), space separated in one argument (default 0)")
    p.add_argument("trainer", nargs="?", default=None,
                   help=f"trainer class (default ${paths.TRAINER_ENV}, else nnUNetTrainer)")
    p.add_argument("plans", nargs="?", default="nnUNetPlans")
    return p


def _run(args: argparse.Namespace) -> int:
    """Train; one record of the model folder on stdout."""
    opts = options_from_args(TrainOptions, args, folds=tuple(args.folds.split()),
                             trainer=args.trainer or paths.default_trainer(),
                             device=os.environ.get("DEVICE") or None,
                             preprocess=os.environ.get("SKIP_PREPROCESS", "0") != "1",
                             extra_args=tuple(os.environ.get("TRAIN_ARGS", "").split()))
    model = train(args.dataset_id, opts)
    cli.emit(MODULE, [{"status": "written", "path": model, "dataset_id": args.dataset_id,
                       "configuration": opts.configuration, "folds": list(opts.folds), "trainer": opts.trainer}])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stage; the exit code of the CLI contract (docs/conventions.md section 8)."""
    return cli.run(get_parser(), argv, _run)
