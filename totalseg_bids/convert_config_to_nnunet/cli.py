"""``python -m totalseg_bids.convert_config_to_nnunet``: parse the arguments and call :func:`.batch.convert`."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from ..core import cli, flags
from ..core.nifti import QFORM_SFORM_TOLERANCE_MM
from ..core.options import options_from_args
from ..nnunet.splits import DEFAULT_FOLDS, DEFAULT_SEED
from .batch import convert
from .options import DEFAULT_NAME, LINK_MODES, READERS, ConvertOptions

log = logging.getLogger(__name__)
DESCRIPTION = "Convert a data config into an nnU-Net v2 raw dataset (docs/conventions.md section 5)."


def get_parser() -> argparse.ArgumentParser:
    """The command line of the stage (legacy spellings ``--path-out``, ``-dnum`` kept as aliases)."""
    p = cli.build_parser(
        "convert_config_to_nnunet", DESCRIPTION,
        epilog="example: python -m totalseg_bids.convert_config_to_nnunet --config train_sacrum.json "
               "-o \"$nnUNet_raw\" -d 300 --verify\n"
               "then: python -m totalseg_bids.train_nnunet 300 3d_fullres 0")
    p.add_argument("--config", required=True, type=Path, help="data config JSON (docs/conventions.md section 4)")
    flags.add_out(p, dest="out", default=None, help="nnU-Net raw folder (default: $nnUNet_raw)")
    flags.add_dataset_id(p, dest="dataset_id", required=True)
    p.add_argument("-dname", "--dataset-name", default=DEFAULT_NAME, help=f"dataset name (default {DEFAULT_NAME})")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--labels", nargs="+", metavar="NAME",
                   help="foreground names for values 1, 2, ... (default: the label- entity of the files)")
    g.add_argument("--labels-json", type=Path, metavar="MAP.json",
                   help='{"background": 0, "sacrum": 1} or {"labels": {...}, "remap": {"25": 1}}')
    p.add_argument("--channels", nargs="+", metavar="NAME",
                   help="channel names (default: the image suffix; CT images 'CT'; mixed MRI the contrasts code)")
    p.add_argument("--reader", choices=READERS, default="SimpleITKIO",
                   help="nnU-Net image reader (default SimpleITKIO)")
    p.add_argument("--link", choices=LINK_MODES, default="symlink",
                   help="how unchanged files are placed (default symlink; falls back to copy)")
    p.add_argument("--datasets-path", type=Path, default=None,
                   help="override the config's DATASETS_PATH (or set TOTALSEG_BIDS_DATASETS_PATH)")
    p.add_argument("--form-tolerance", type=float, default=QFORM_SFORM_TOLERANCE_MM, metavar="MM",
                   help="qform/sform disagreement above which a file is rewritten (default %(default)s mm)")
    p.add_argument("--folds", type=int, default=None, metavar="K",
                   help=f"cross-validation folds in splits_final.json, drawn by subject and stratified by dataset "
                        f"(default {DEFAULT_FOLDS}, or one per subject when there are fewer; 1: the config's own "
                        "TRAINING/VALIDATION split as fold 0)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED,
                   help="seed of the folds (default %(default)s, nnU-Net's own)")
    p.add_argument("--verify", action="store_true", help="run nnU-Net's verify_dataset_integrity before finishing")
    cli.add_batch_args(p, jobs=True, dask=False)
    cli.add_datalad_args(p)
    return p


def _run(args: argparse.Namespace) -> int:
    """Convert, save with ``--datalad-save``, print the dataset's record."""
    res = convert(args.config, args.out, args.dataset_id, args.dataset_name,
                  options_from_args(ConvertOptions, args))
    # an nnU-Net raw folder kept in a datalad dataset (e.g. a project superdataset) is saved there;
    # a failed conversion writes nothing, so there is nothing to save then
    cli.save_outputs(args, [res.folder])
    log.info("%d training and %d testing case(s), %d corrected copy(ies), in %.1f s; split file: %s",
             res.num_training, res.num_testing, res.corrected, res.seconds, ", ".join(map(str, res.splits_written)))
    cli.emit("convert_config_to_nnunet", [res.record(args.dataset_id)])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stage; the exit code of the CLI contract (docs/conventions.md section 8)."""
    return cli.run(get_parser(), argv, _run)
