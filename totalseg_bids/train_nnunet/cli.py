"""``python -m totalseg_bids.train_nnunet``: parse the arguments and call :func:`.batch.train`.

The seed's positional form (``DATASET_ID [CONFIGURATION] [FOLDS] [TRAINER] [PLANS]``,
folds space-separated in one argument) and its environment variables (``DEVICE``,
``SKIP_PREPROCESS``, ``TRAIN_ARGS``, ``NNUNET_NP``, ``TOTALSEG_BIDS_NNUNET_TRAINER``)
keep working; the flags say the same and win over them.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from ..core import cli, flags
from ..core.errors import UsageError
from ..nnunet import paths
from ..nnunet.naming import DEFAULT_CONFIGURATION, DEFAULT_PLANS
from .batch import train
from .options import TrainOptions

MODULE = "train_nnunet"
DESCRIPTION = "Plan, preprocess and train an nnU-Net v2 dataset written by totalseg_bids.convert_config_to_nnunet."
EPILOG = f"""examples:
  python -m totalseg_bids.train_nnunet -d 300 -c 3d_fullres -f all         # every fold of the split file
  python -m totalseg_bids.train_nnunet -d 300 -c 3d_fullres 2d -f all      # two configurations, --npz implied
  python -m totalseg_bids.train_nnunet 300 3d_fullres 0 nnUNetTrainer_2epochs_10iters   # the seed's form
once every fold of the configurations is trained, nnUNetv2_find_best_configuration picks the configuration
or ensemble and its post-processing (predict --postprocess nnunet applies it).
environment: nnUNet_raw, nnUNet_preprocessed, nnUNet_results (required); {paths.TRAINER_ENV} (default
trainer); DEVICE (default --device); NNUNET_NP (preprocessing processes); SKIP_PREPROCESS=1 (--no-preprocess);
TRAIN_ARGS (more nnUNetv2_train flags)"""


def get_parser() -> argparse.ArgumentParser:
    """The command line: flags, or the seed's positional form."""
    p = cli.build_parser(MODULE, DESCRIPTION, epilog=EPILOG)
    p.add_argument("positional", nargs="*", metavar="DATASET_ID [CONFIGURATION [FOLDS [TRAINER [PLANS]]]]",
                   help="the seed's form (FOLDS: space separated in one argument)")
    flags.add_dataset_id(p, dest="dataset_id", type=str, default=None, help="nnU-Net dataset id (the converter's -d)")
    p.add_argument("-c", "--configurations", nargs="+", metavar="CONFIGURATION",
                   help=f"nnU-Net configuration(s) (default {DEFAULT_CONFIGURATION})")
    p.add_argument("-f", "--folds", nargs="+", metavar="FOLD",
                   help="fold numbers of splits_final.json, or all (every fold in it); default 0")
    p.add_argument("-tr", "--trainer", help=f"trainer class (default ${paths.TRAINER_ENV}, else nnUNetTrainer)")
    p.add_argument("-p", "--plans", help=f"plans identifier (default {DEFAULT_PLANS})")
    flags.add_device(p, default=os.environ.get("DEVICE") or "auto",
                     help="auto (cuda when available, else cpu), cpu, mps, cuda or cuda:N ($DEVICE)")
    p.add_argument("--npz", action=argparse.BooleanOptionalAction, default=None,
                   help="save the validation probabilities that ensembling needs (default: on with several -c)")
    p.add_argument("--preprocess", action=argparse.BooleanOptionalAction, default=None,
                   help="run nnUNetv2_plan_and_preprocess first (default on, off with SKIP_PREPROCESS=1)")
    p.add_argument("--find-best", action=argparse.BooleanOptionalAction, default=True,
                   help="run nnUNetv2_find_best_configuration once every fold is trained (default on)")
    p.add_argument("--overwrite", action="store_true", help="train complete folds again (default: skip them)")
    return p


def _merge(flag, position: list[str], index: int, name: str):
    """A flag's value, or the seed's positional one; both given is a usage error."""
    given = position[index] if len(position) > index else None
    if flag is not None and given is not None:
        raise UsageError(f"{name} given twice (positional and flag)", None, f"give {name} once")
    return flag if flag is not None else given


def options_from_cli(args: argparse.Namespace) -> tuple[str, TrainOptions]:
    """The dataset id and the options, flags over positionals over the environment."""
    pos = list(args.positional)
    if len(pos) > 5:
        raise UsageError(f"too many positional arguments ({len(pos)})", None,
                         "DATASET_ID [CONFIGURATION [FOLDS [TRAINER [PLANS]]]]")
    dataset_id = _merge(args.dataset_id, pos, 0, "the dataset id")
    if dataset_id is None:
        raise UsageError("no dataset id", None, "e.g. python -m totalseg_bids.train_nnunet -d 300 -f all")
    configuration = _merge(args.configurations, pos, 1, "the configuration")
    folds = _merge(args.folds, pos, 2, "the folds")
    preprocess = args.preprocess if args.preprocess is not None else os.environ.get("SKIP_PREPROCESS", "0") != "1"
    opts = TrainOptions(
        configurations=([configuration] if isinstance(configuration, str) else configuration) or
        [DEFAULT_CONFIGURATION],
        folds=(folds.split() if isinstance(folds, str) else folds) or ["0"],
        trainer=_merge(args.trainer, pos, 3, "the trainer") or paths.default_trainer(),
        plans=_merge(args.plans, pos, 4, "the plans") or DEFAULT_PLANS,
        device=args.device if args.device != "auto" else None, preprocess=preprocess, npz=args.npz,
        find_best=args.find_best, overwrite=args.overwrite,
        extra_args=tuple(os.environ.get("TRAIN_ARGS", "").split()))
    return dataset_id, opts


def _run(args: argparse.Namespace) -> int:
    """Train; one record per model folder, then nnU-Net's choice, on stdout."""
    dataset_id, opts = options_from_cli(args)
    cli.emit(MODULE, train(dataset_id, opts).records())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stage; the exit code of the CLI contract (docs/conventions.md section 8)."""
    return cli.run(get_parser(), argv, _run)
