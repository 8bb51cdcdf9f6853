"""Command line of ``totalseg_bids.register``."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from ..core import cli, flags
from ..core.bids import label_value
from ..core.errors import UsageError
from ..core.folders import REG_LABELS, derivative_dir
from ..core.options import options_from_args
from .batch import register_dataset
from .constants import DEFAULT_CONTRASTS, DEFAULT_CT_SUFFIXES, DEFAULT_LABEL, METHODS
from .options import INITS, ON_FAILURE, LabelSpec, RegisterOptions, RegOptions
from .origin import ANY_ORIGIN, ORIGINS

log = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser("register", "Bring CT-derived labels into MRI space.", epilog=(
        "examples:\n"
        "  python -m totalseg_bids.register --path-img ds --label sacrum\n"
        "  python -m totalseg_bids.register --path-img ds --labels-dseg total --label sacrum --method rigid -j 2\n"
        "  python -m totalseg_bids.register --path-img ds --label-value 25 --label-name sacrum --interp label"))
    flags.add_bids_dir(p, required=True, help="raw BIDS dataset (MRI and CT images)")
    p.add_argument("--path-label", type=Path, default=None, dest="ct_labels", metavar="DIR",
                   help="the CT labels' derivative folder (default <bids-dir>/derivatives/labels)")
    flags.add_out(p, dest="out", default=None,
                  help="output derivative folder (default <bids-dir>/derivatives/reg-labels)")
    p.add_argument("--label", default=None,
                   help=f"structure to transfer (default {DEFAULT_LABEL}): its binary CT label, "
                        "else the class of that name in a _dseg map")
    p.add_argument("--label-value", type=int, default=None, help="class value to extract from a _dseg map")
    p.add_argument("--label-name", default=None, help="output structure name for --label-value")
    p.add_argument("--labels-dseg", default=None, metavar="NAME",
                   help="multi-class CT map label-NAME_dseg: alone, transfer all its classes as a _dseg; "
                        "with --label/--label-value, extract one class from it")
    p.add_argument("--method", choices=METHODS, default="header",
                   help="header: through the NIfTI headers (default); rigid/affine: SimpleITK mutual information; "
                        "ants-rigid/ants-affine/ants-syn: ANTs (antspyx extra; syn is deformable, label-preserving); "
                        "sct: sct_register_multimodal -identity 1")
    g = p.add_argument_group("registration (rigid, affine, ants-*)")
    g.add_argument("--init", choices=INITS, default="header",
                   help="header: start from the NIfTI headers (default); geometry/moments: first align the image "
                        "centres / intensity moments (scanners with no common origin)")
    g.add_argument("--focus-mm", type=float, default=None, metavar="D",
                   help="restrict the metric to the CT label dilated by D mm (partial MRI field of view, "
                        "bones that move independently); default: whole image")
    g.add_argument("--max-shift-mm", type=float, default=30.0, help="flag a correction beyond this (default 30)")
    g.add_argument("--max-rotation-deg", type=float, default=20.0, help="flag a rotation beyond this (default 20)")
    g.add_argument("--min-edge-contrast", type=float, default=2.5, metavar="R",
                   help="flag a label whose boundary is less than R times sharper on the MRI than the tissue "
                        "around it (a misplaced label gives ~1; default 2.5; 0: no check)")
    g.add_argument("--on-failure", choices=ON_FAILURE, default="keep",
                   help="a flagged pair: keep (write it, flagged; default), header (write the header transfer, "
                        "flagged) or error (write nothing, fail the pair)")
    flags.add_label_interp(p, dest="interp", help="nearest, or label: per-label linear then argmax/threshold 0.5")
    p.add_argument("--contrasts", nargs="+", default=list(DEFAULT_CONTRASTS), metavar="SUFFIX",
                   help="MRI suffixes to process (default T1w T2w)")
    p.add_argument("--ct-suffix", nargs="+", default=list(DEFAULT_CT_SUFFIXES), metavar="SUFFIX", dest="ct_suffixes",
                   help="CT suffixes (default CT ct)")
    p.add_argument("--mri", type=Path, default=None, help="one MRI file (with --ct-label): an explicit pair")
    p.add_argument("--ct-label", type=Path, default=None, help="the CT label for --mri")
    p.add_argument("--mri-label-origin", nargs="+", default=[], metavar="ORIGIN", dest="mri_label_origins",
                   choices=[*ORIGINS, ANY_ORIGIN],
                   help="use a label already on the MRI (same name, in --path-label) instead of the CT label "
                        "when its sidecar's GeneratedBy is one of these: Manual, nnU-Net, TotalSegmentator, any "
                        "(default: always transfer the CT label)")
    p.add_argument("--qc", type=Path, metavar="DIR", dest="qc_dir", help="add each output to the QC report in DIR")
    p.add_argument("--num-parts", type=int, default=1, metavar="N",
                   help="split the planned MRIs into N parts "
                        "(array tasks, machines; scripts/slurm/register_array.sbatch)")
    p.add_argument("--part-id", type=int, default=0, metavar="I",
                   help="the part this run does: every N-th MRI from the I-th, in the pairing's stable order")
    cli.add_batch_args(p)
    cli.add_naming_arg(p)
    cli.add_datalad_args(p)
    return p


def spec_from_args(args: argparse.Namespace) -> LabelSpec:
    """Turn the label options into a :class:`LabelSpec` (usage errors exit 2)."""
    if args.label_value is not None:
        if args.label and args.label_name and args.label != args.label_name:
            raise UsageError("--label and --label-name disagree", None, "give one structure name")
        if args.label_value <= 0:
            raise UsageError("--label-value must be > 0", None, "e.g. --label-value 25")
        name = args.label_name or args.label
        if not name:
            raise UsageError("--label-value needs --label-name", None, "e.g. --label-value 25 --label-name sacrum")
        return LabelSpec(name=name, value=args.label_value, dseg=args.labels_dseg)
    if args.label_name and not args.label:
        raise UsageError("--label-name goes with --label-value", None, "or use --label NAME")
    if args.labels_dseg and not args.label:
        return LabelSpec(name=args.labels_dseg, dseg=args.labels_dseg, keep_dseg=True)
    name = args.label or DEFAULT_LABEL
    label_value(name)  # validates the name
    return LabelSpec(name=name, dseg=args.labels_dseg)


def options_from_cli(args: argparse.Namespace) -> RegisterOptions:
    """The :class:`RegisterOptions` of parsed arguments; the CLI saves with :func:`cli.saving`
    (the whole output folder, skipped outputs of a resumed run included), not the library."""
    return options_from_args(RegisterOptions, args, spec=spec_from_args(args),
                             reg=options_from_args(RegOptions, args), datalad_save=False)


def _run(args: argparse.Namespace) -> int:
    options = options_from_cli(args)
    with cli.saving(args, [args.out or derivative_dir(args.bids_dir, REG_LABELS)]):
        results = cli.report("register", lambda: register_dataset(
            args.bids_dir, args.ct_labels, args.out, options, mri=args.mri, ct_label=args.ct_label))
    written = sum(r["status"] == "written" for r in results)
    flagged = sum(bool(r.get("flags", {}).get("RegistrationSuspicious")) for r in results)
    log.info("%d written, %d skipped, %d flagged suspicious", written, len(results) - written, flagged)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)

