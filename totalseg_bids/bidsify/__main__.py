"""``python -m totalseg_bids.bidsify``: a public dataset's download -> BIDS."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from ..core import flags
from ..core import cli
from ..core.atomic import ensure_writable_dir
from ..core.errors import MissingFileError, UsageError
from ..core.parallel import raise_for_failures, run_tasks
from . import SOURCES
from .convert import convert_item
from .dataset import write_dataset_files
from .plan import Plan, check_conflicts, table

log = logging.getLogger(__name__)


def make_plan(source: str, root: Path, opts: argparse.Namespace) -> Plan:
    """The checked plan of ``source`` on ``root`` (nothing is written)."""
    if source not in SOURCES:
        raise UsageError(f"unknown --source {source!r}", None, f"use one of {', '.join(SOURCES)}")
    if not root.is_dir():
        raise MissingFileError("input folder does not exist", root, "pass the downloaded dataset's folder")
    plan = importlib.import_module(f"totalseg_bids.bidsify.{source}").plan(root, opts)
    check_conflicts(plan.items)
    return plan


def _date() -> str:
    """Sidecar date; honours SOURCE_DATE_EPOCH so reruns write the same bytes."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = datetime.fromtimestamp(int(epoch), timezone.utc) if epoch else datetime.now()
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def bidsify(source: str, root: Path, out: Path, opts: argparse.Namespace, jobs: int | None = None,
            command: str = "", overwrite: bool = False) -> dict[str, int]:
    """Convert ``root`` into ``out``; return counts of converted and skipped files."""
    root, out = Path(root).resolve(), Path(out).resolve()
    if out == root or root in out.parents:
        raise UsageError("--out lies inside --in", out, "write the BIDS dataset outside the source tree")
    plan = make_plan(source, root, opts)
    ensure_writable_dir(out)
    date = _date()
    outcomes = []
    # contours are filled on their converted reference image: images first
    for phase in ([i for i in plan.items if i.kind != "rtstruct"], [i for i in plan.items if i.kind == "rtstruct"]):
        if phase:
            outcomes += run_tasks(convert_item, [(i, str(out), date, overwrite) for i in phase],
                                  keys=[i.target for i in phase], jobs=jobs, desc="bidsify")
            raise_for_failures(outcomes, "files")
    write_dataset_files(out, plan, source, command)
    counts = {"converted": 0, "skipped": 0}
    for o in outcomes:
        counts[o.value] += 1
    return counts


def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser("bidsify", __doc__.splitlines()[0],
                         epilog="example: python -m totalseg_bids.bidsify --source mrspineseg "
                                "--in MRSpineSeg/train --out mrspineseg_bids")
    p.add_argument("--source", required=True, help=f"dataset layout: {', '.join(SOURCES)}")
    p.add_argument("--in", dest="inp", required=True, type=Path, help="the dataset as downloaded")
    flags.add_out(p, dest="out", required=True, help="BIDS dataset folder to write")
    p.add_argument("--dry-run", action="store_true", help="print the source -> target table, write nothing")
    p.add_argument("--mr-suffix", choices=("T1w", "T2w"), default=None,
                   help="synthrad2023: MR contrast where the overview does not say")
    p.add_argument("--classes", nargs="+", default=None,
                   help="totalsegmentator: binary masks of these classes; mrspineseg: also 'sacrum' as a mask; "
                        "goldatlas: only these ROIs (label names, e.g. sacrum)")
    p.add_argument("--config", type=Path, default=None,
                   help="dicom, goldatlas: dcm2bids-style rules JSON (descriptions: suffix, custom_entities, criteria)")
    p.add_argument("--subject-regex", default=None,
                   help="dicom: regex on the file path whose first group is the subject (default PatientID)")
    p.add_argument("--pattern", default=None, help="pattern: regex on image paths, groups sub[, ses, acq, run, slice]")
    p.add_argument("--label-pattern", default=None, help="pattern: regex on mask paths (same groups)")
    p.add_argument("--label-name", default="mask", help="pattern: label- name of the masks")
    p.add_argument("--suffix", default=None, help="pattern: BIDS suffix of the images (T2w, CT, ...)")
    p.add_argument("--spacing", type=float, nargs=3, default=None, metavar=("X", "Y", "Z"),
                   help="pattern: voxel size in mm of .npy volumes and 2D slice stacks")
    p.add_argument("--orientation", default="RAS", help="pattern: where voxel axes i, j, k point (RAS, LPS, ...)")
    cli.add_naming_arg(p)
    cli.add_batch_args(p, dask=False)
    cli.add_datalad_args(p)
    return p


def _run(args: argparse.Namespace) -> int:
    if args.dry_run:
        plan = make_plan(args.source, args.inp.resolve(), args)
        print(table(plan.items))
        return 0
    counts = bidsify(args.source, args.inp, args.out, args, jobs=args.jobs, command=args.command_line,
                     overwrite=args.overwrite)
    log.info("converted %d files, %d already done", counts["converted"], counts["skipped"])
    if args.datalad_save:
        from ..core.datalad import dataset_of, save_outputs

        save_outputs(dataset_of(args.out), [args.out], f"bidsify --source {args.source}")
    print(args.out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)


if __name__ == "__main__":
    raise SystemExit(main())
