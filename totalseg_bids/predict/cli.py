"""``python -m totalseg_bids.predict``: parse the arguments, resolve the model, call :func:`.batch.predict`."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..core import cli, flags
from ..core.config import SPLITS
from ..core.errors import UsageError
from ..core.options import options_from_args
from ..nnunet import paths
from ..nnunet.engine import resolve_model
from ..nnunet.model_zip import installed_model, unpack_zip
from ..nnunet.postprocess import KEEP_LARGEST, POSTPROCESS, REMOVAL_FLAG_FRACTION
from .batch import predict
from .inputs import collect_inputs, derivative_roots
from .options import PredictOptions

DESCRIPTION = "Run a trained nnU-Net on BIDS images and write the masks as BIDS derivatives."


def get_parser() -> argparse.ArgumentParser:
    """The command line of the stage."""
    p = cli.build_parser(
        "predict", DESCRIPTION,
        epilog="examples:\n"
               "  python -m totalseg_bids.predict --config test_sacrum --datasets-path /data -d 300 -c 3d_fullres "
               "-f 0 1 2 3 4     # folds ensembled, nnU-Net's post-processing when it decided one\n"
               "  python -m totalseg_bids.predict --config test_sacrum --datasets-path /data -d 300 -f 0 "
               "--largest-component sacrum\n"
               "  python -m totalseg_bids.predict --bids-dir /data/ds --contrasts T1w T2w --model-dir "
               "$nnUNet_results/Dataset300_SacrumDataset/nnUNetTrainer__nnUNetPlans__3d_fullres "
               "--num-parts 4 --part-id 0")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", type=Path, help="data config (IMAGE or LABEL); predicts one --split")
    flags.add_bids_dir(src, dest="bids_dir", help="BIDS dataset; predicts every image of --contrasts")
    p.add_argument("--split", default="TESTING", choices=(*SPLITS, "ALL"), help="config split (default TESTING)")
    p.add_argument("--contrasts", nargs="+", metavar="SUFFIX", help="image suffixes for --bids-dir (e.g. T1w T2w)")
    p.add_argument("--datasets-path", type=Path, default=None,
                   help="override the config's DATASETS_PATH (or set TOTALSEG_BIDS_DATASETS_PATH)")
    m = p.add_mutually_exclusive_group(required=True)
    m.add_argument("--model-dir", type=Path, help="nnU-Net model folder <trainer>__<plans>__<configuration>")
    flags.add_dataset_id(m, dest="dataset_id", type=str,
                         help="dataset id or name in $nnUNet_results (with -c, -tr, -p)")
    m.add_argument("--model", metavar="NAME", help="a model installed with python -m totalseg_bids.model install")
    m.add_argument("--model-zip", type=Path, metavar="FILE",
                   help="a zip written by python -m totalseg_bids.model export")
    p.add_argument("-c", "--configuration", default="3d_fullres")
    p.add_argument("-tr", "--trainer", default=paths.default_trainer(),
                   help="trainer of the model (default $TOTALSEG_BIDS_NNUNET_TRAINER, else nnUNetTrainer)")
    p.add_argument("-p", "--plans", default="nnUNetPlans")
    p.add_argument("-f", "--folds", nargs="+", default=None, metavar="FOLD",
                   help="folds to ensemble, with nnU-Net's predictor (default: every trained fold; all: nnU-Net's "
                        "model trained on every case, fold_all)")
    p.add_argument("--checkpoint", default="checkpoint_final.pth")
    flags.add_device(p)
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=True,
                   help="mirroring test-time augmentation, on by default on every device (nnU-Net's default); "
                        "on the CPU it costs up to ~8x in 3D and a warning says so: --no-tta turns it off")
    p.add_argument("--label-name", default=None,
                   help="label- entity of the outputs (default: the model's label name)")
    _add_postprocess_args(p)
    p.add_argument("--derivatives", default="labels", help="derivative folder name (default labels)")
    cli.add_naming_arg(p)
    cli.add_batch_args(p, jobs=True, dask=False)
    p.add_argument("--num-parts", type=int, default=1, help="split the images into N parts (GPUs, cluster jobs)")
    p.add_argument("--part-id", type=int, default=0, help="which part this run does (0-based)")
    p.add_argument("--batch-size", type=int, default=8, metavar="M",
                   help="images per predictor call (and per scratch folder); default 8")
    p.add_argument("--qc", dest="qc_dir", type=Path, default=None, metavar="DIR",
                   help="add every output to the QC report in DIR")
    cli.add_datalad_args(p)
    return p


def _add_postprocess_args(p: argparse.ArgumentParser) -> None:
    """``--postprocess``, ``--largest-component``, ``--keep-largest`` (legacy), the pickle and the flag threshold."""
    p.add_argument("--postprocess", choices=POSTPROCESS, default=None,
                   help="auto (default): nnU-Net's post-processing when nnUNetv2_find_best_configuration decided one "
                        "for the model (train_nnunet runs it once every fold is trained), else none; nnunet: that "
                        "one, required; largest: see --largest-component; none")
    p.add_argument("--largest-component", nargs="*", metavar="LABEL", default=None,
                   help="keep the largest connected component of each LABEL (names or values; none given: every "
                        "label), as the seed workflow does; other labels keep every component")
    p.add_argument("--keep-largest", choices=KEEP_LARGEST, default=None,
                   help="legacy: per-label (= --largest-component), union (largest component of the union of "
                        "labels) or off (= --postprocess none)")
    p.add_argument("--postprocessing-file", type=Path, default=None, metavar="PKL",
                   help="a postprocessing.pkl to apply with --postprocess nnunet|auto instead of the model's")
    p.add_argument("--removal-threshold", type=float, default=REMOVAL_FLAG_FRACTION, metavar="F",
                   help="flag (log, sidecar, QC) a label that post-processing shrinks by more than this share "
                        "(default %(default)s)")


def postprocess_from_cli(args: argparse.Namespace) -> dict:
    """``postprocess``, ``largest_labels`` and ``largest_mode`` from the three ways of saying them."""
    asked = [name for name, value in (("--postprocess", args.postprocess), ("--keep-largest", args.keep_largest),
                                      ("--largest-component", args.largest_component)) if value is not None]
    if len(asked) > 1 and not (args.postprocess == "largest" and args.largest_component is not None):
        raise UsageError(f"{' and '.join(asked)} exclude each other", None, "say the post-processing once")
    if args.largest_component is not None:
        return {"postprocess": "largest", "largest_labels": tuple(args.largest_component) or None}
    if args.keep_largest is not None:
        if args.keep_largest == "off":
            return {"postprocess": "none"}
        return {"postprocess": "largest", "largest_mode": args.keep_largest}
    return {"postprocess": args.postprocess or "auto"}


def _run(args: argparse.Namespace) -> int:
    """Resolve the model (installed, zipped or a folder), then predict."""
    if args.bids_dir is not None and not args.contrasts:
        raise UsageError("--bids-dir needs --contrasts", None, "e.g. --contrasts T1w T2w")
    opts = options_from_args(PredictOptions, args, **postprocess_from_cli(args)).check()
    with tempfile.TemporaryDirectory(prefix="totalseg_bids-model-") as unpacked:
        identity = {}
        if args.model or args.model_zip:
            args.model_dir, identity = (installed_model(args.model, args.configuration) if args.model
                                        else unpack_zip(args.model_zip, unpacked, args.configuration))
        return _predict_cli(args, identity, opts)


def _predict_cli(args: argparse.Namespace, identity: dict, opts: PredictOptions) -> int:
    """Predict the inputs the arguments name with the model they name; records on stdout."""
    model = resolve_model(args.model_dir, args.dataset_id, args.configuration, args.trainer, args.plans,
                          args.folds, args.checkpoint)
    model.identity = identity
    inputs = collect_inputs(args.config, args.split, args.bids_dir, args.contrasts, args.datasets_path)
    # skipped outputs of a resumed run are saved too; also when some images failed
    with cli.saving(args, derivative_roots(inputs, opts)):
        cli.report("predict", lambda: predict(inputs, model, opts).records())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stage; the exit code of the CLI contract (docs/conventions.md section 8)."""
    return cli.run(get_parser(), argv, _run)
