"""The benchmark harness: ``python -m benchmarks`` or ``python benchmarks/run.py``.

Options: ``--quick`` (small sizes, 1-2 repeats, < 2 minutes on 2 cores; what CI
runs), ``--only NAME ...`` (see ``--list``), ``--out FILE`` (the table with the
date and the machine, for ``benchmarks/RESULTS.md``), ``--keep`` (keep the
generated data), ``--tmp DIR`` (where to generate it).

Every benchmark generates its own data, measures each pair side by side in one
run (interleaved repeats, medians) and adds rows to one Markdown table. A stage
that is not written yet gives a "not available" row, never a crash.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):  # ``python benchmarks/run.py``
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = "benchmarks"  # noqa: A001

os.environ.setdefault("TOTALSEG_BIDS_NO_PROGRESS", "1")
os.environ.setdefault("nnUNet_def_n_proc", "1")

from benchmarks import (  # noqa: E402
    bench_augment,
    bench_bidsify,
    bench_codec,
    bench_cohort,
    bench_convert_mri,
    bench_core,
    bench_evaluate,
    bench_register,
    bench_segment,
    bench_stages,
)
from benchmarks.bench_common import Context, Row, machine_info, markdown_table, warm_memory  # noqa: E402

#: name -> (function, what it measures, runs in --quick)
BENCHMARKS = {
    "index": (bench_core.bench_index, "BIDS indexing: ours vs pybids vs os.scandir", True),
    "codec": (bench_codec.bench_codec, ".nii.gz codecs (zlib, ISA-L, zlib-ng) and NIfTI read + write vs nibabel",
              True),
    "transfer": (bench_core.bench_transfer, "label transfer CT->MRI: ours vs nibabel vs nilearn, I/O floor", True),
    "convert": (bench_stages.bench_convert, "config -> nnU-Net: links vs copy-and-reorient vs cp", True),
    "convert_mri": (bench_convert_mri.bench_convert_mri,
                    "133 MRI cases -> nnU-Net: ours vs the original totalspineseg converter vs cp", True),
    "lcc": (bench_core.bench_lcc, "largest connected component: ours vs scipy vs nnU-Net", True),
    "predict": (bench_stages.bench_predict,
                "prediction on the CPU: ours vs nnUNetv2_predict, with and without mirroring", False),
    "memory": (bench_core.bench_memory, "peak RSS of a large label transfer", True),
    "scaling": (bench_stages.bench_scaling, "index + config + convert at 10/100/1,000 subjects", True),
    "jobs": (bench_stages.bench_jobs, "register -j 1 vs -j 2", True),
    "bidsify": (bench_bidsify.bench_bidsify, "DICOM -> BIDS per series: bidsify vs dcm2niix alone", True),
    "register": (bench_register.bench_register, "register rigid vs ANTs rigid: Dice and s/pair (full only)", False),
    "cohort": (bench_cohort.bench_cohort,
               "phantom cohort through every stage CLI: s/subject, -j 1/-j 2/Dask (full only)", False),
    "augment": (bench_augment.bench_augment, "2D augmentation: ours -j 1/-j 2 vs a plain albumentations loop", True),
    "evaluate": (bench_evaluate.bench_evaluate,
                 "metrics of predictions vs references: ours vs nnU-Net (Dice) and MONAI (HD95, ASSD, NSD)", True),
    "segment": (bench_segment.bench_segment_ct,
                "segment_ct over 6 CTs vs one TotalSegmentator call per CT (real program, tiny weights; full only)",
                False),
}


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(f"  {k:11s} {v[1]}" for k, v in BENCHMARKS.items()))
    p.add_argument("--quick", action="store_true", help="small sizes, 1-2 repeats (CI)")
    p.add_argument("--only", nargs="+", metavar="NAME", choices=list(BENCHMARKS), help="run only these")
    p.add_argument("--out", type=Path, metavar="FILE", help="write the table, date and machine to FILE")
    p.add_argument("--tmp", type=Path, metavar="DIR", help="where to generate data (default: a temp folder)")
    p.add_argument("--keep", action="store_true", help="keep the generated data")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    p.add_argument("--child-memory", nargs=4, metavar=("METHOD", "CT", "MRI", "OUT"), help=argparse.SUPPRESS)
    return p


def report(rows: list[Row], info: dict, quick: bool, started: datetime.datetime, seconds: float,
           selected: list[str]) -> str:
    lines = [f"# totalseg_bids benchmarks ({'quick' if quick else 'full'} run)", "",
             f"Date: {started:%Y-%m-%d %H:%M} (harness ran {seconds / 60:.1f} min; "
             f"benchmarks: {', '.join(selected)})", "",
             "| Machine | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in info.items()]
    lines += ["", "Medians over the repeats (n); `alt/ours` is the alternative's cost divided by ours "
              "(> 1: ours is faster or smaller). Each group is measured side by side in one run.", "",
              markdown_table(rows), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    if args.child_memory:
        return bench_core.memory_child(args.child_memory)
    if args.list:
        for k, v in BENCHMARKS.items():
            print(f"{k:11s} {v[1]}{'' if v[2] else ' (full mode only)'}")
        return 0
    selected = args.only or list(BENCHMARKS)
    started = datetime.datetime.now()
    t_start = time.perf_counter()
    base = args.tmp or Path(tempfile.mkdtemp(prefix="totalseg_bids_bench_"))
    base.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:6.1f}s] {msg}", file=sys.stderr, flush=True)

    rows: list[Row] = []
    log(f"memory warmed up (2 GiB touched) in {warm_memory():.1f} s")
    try:
        for name in selected:
            func, what, in_quick = BENCHMARKS[name]
            ctx = Context(quick=args.quick, tmp=base / name, log=log, rows=rows)
            if args.quick and not in_quick:
                ctx.add(Row(name, "-", what, status="skipped", note="full mode only"))
                continue
            ctx.tmp.mkdir(parents=True, exist_ok=True)
            log(f"{name}: {what}")
            t0 = time.perf_counter()
            try:
                func(ctx)
            except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others
                traceback.print_exc(file=sys.stderr)
                msg = " ".join(str(exc).split())[:200]
                ctx.add(Row(name, "-", what, status="error", note=f"{type(exc).__name__}: {msg}"))
            log(f"{name}: done in {time.perf_counter() - t0:.1f} s")
            if not args.keep:
                shutil.rmtree(ctx.tmp, ignore_errors=True)
    finally:
        if not args.keep and args.tmp is None:
            shutil.rmtree(base, ignore_errors=True)
    text = report(rows, machine_info(), args.quick, started, time.perf_counter() - t_start, selected)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
