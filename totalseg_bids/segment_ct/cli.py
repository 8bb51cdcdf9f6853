"""``python -m totalseg_bids.segment_ct``: parse the arguments and call :func:`.batch.segment_dataset`."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from ..core import cli, flags
from ..core.options import options_from_args
from .batch import default_out, segment_dataset
from .options import DEFAULT_CLASSES, SegmentOptions

log = logging.getLogger(__name__)

DESCRIPTION = "CT labels with TotalSegmentator, written as BIDS derivative labels."
EPILOG = """\
examples:
  python -m totalseg_bids.segment_ct --bids-dir ds --classes sacrum vertebrae_L5 --fast --device auto
  python -m totalseg_bids.segment_ct --bids-dir ds --classes sacrum hip_left hip_right --combine pelvis
  python -m totalseg_bids.segment_ct --bids-dir ds --from-existing /data/totalseg_out

--from-existing DIR layout (TotalSegmentator outputs made elsewhere), per CT, either
  DIR/<CT stem>/<class>.nii.gz   one file per class (TotalSegmentator without --ml), or
  DIR/<CT stem>.nii.gz           one multi-label file (TotalSegmentator --ml; ids of --task)
where <CT stem> is the CT file name without .nii.gz, e.g. DIR/sub-01_ses-01_CT/sacrum.nii.gz.

Weights: TotalSegmentator looks for them under TOTALSEG_HOME_DIR (default ~/.totalsegmentator)
or TOTALSEG_WEIGHTS_PATH; fetch them once with `totalseg_download_weights -t total`.
"""


def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser("segment_ct", DESCRIPTION, epilog=EPILOG)
    flags.add_bids_dir(p, required=True, help="raw BIDS dataset with the CT images")
    p.add_argument("--classes", nargs="+", default=list(DEFAULT_CLASSES), metavar="CLASS",
                   help="TotalSegmentator class names to keep (default: sacrum)")
    p.add_argument("--task", default="total",
                   help="TotalSegmentator task (default: total; total_mr labels MRI directly)")
    p.add_argument("--fast", action="store_true", help="TotalSegmentator's 3 mm model (--fast)")
    flags.add_device(p, spelling="totalsegmentator", help="auto (GPU when CUDA is available), cpu, mps, cuda or cuda:N")
    p.add_argument("--ct-suffix", nargs="+", default=None, metavar="SUFFIX", dest="ct_suffixes",
                   help="file suffixes of the images to label (default: CT ct; T1w T2w for *_mr tasks)")
    flags.add_out(p, dest="out", default=None, help="derivative folder (default: <bids-dir>/derivatives/labels)")
    p.add_argument("--combine", metavar="NAME", default=None,
                   help="write one <CT>_label-NAME_dseg.nii.gz (+ .tsv, TotalSegmentator ids) "
                        "instead of one _seg per class")
    p.add_argument("--from-existing", type=Path, metavar="DIR", default=None,
                   help="import TotalSegmentator outputs from DIR instead of running it (layout below)")
    p.add_argument("--qc", type=Path, metavar="DIR", default=None, dest="qc_dir",
                   help="add each label to the QC report in DIR")
    cli.add_batch_args(p)
    cli.add_naming_arg(p)
    cli.add_datalad_args(p)
    return p


def _run(args: argparse.Namespace) -> int:
    options = options_from_args(SegmentOptions, args)
    out = Path(args.out).absolute() if args.out else default_out(args.bids_dir)
    # the CTs that succeeded are saved even when others failed (rerunning retries those)
    with cli.saving(args, [out]):
        results = cli.report("segment_ct", lambda: segment_dataset(args.bids_dir, args.out, options))
    written = sum(r["status"] == "written" for r in results)
    log.info("%d label file(s) written, %d skipped", written, len(results) - written)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)
