"""DICOM -> BIDS per series: ``bidsify --source dicom`` vs calling ``dcm2niix`` alone."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import time

from .bench_common import Context, Row, available, interleave


def bench_bidsify(ctx: Context) -> None:
    mod, why = available("totalseg_bids.bidsify.__main__")
    exe = shutil.which("dcm2niix")
    bench = "DICOM -> BIDS per series (in process, -j 1)"
    if mod is None or exe is None:
        ctx.add(Row(bench, "-", "bidsify --source dicom", status="not available", note=why or "no dcm2niix"))
        return
    from totalseg_bids.phantom_layouts import write_layout

    n = 2 if ctx.quick else 8
    src = write_layout("dicom", ctx.tmp / "dicom", subjects=n)
    series = sorted(p for p in src.glob("*/*") if p.is_dir())
    size = f"{len(series)} series (CT + oblique MR)"
    opts = argparse.Namespace(mr_suffix=None, classes=None, naming="neuropoly", config=None, subject_regex=None)

    def ours() -> float:
        out = ctx.tmp / "bids"
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        mod.bidsify("dicom", src, out, opts, jobs=1)
        return (time.perf_counter() - t) / len(series)

    def alone() -> float:
        out = ctx.tmp / "plain"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        t = time.perf_counter()
        for i, folder in enumerate(series):
            subprocess.run([exe, "-z", "y", "-b", "y", "-ba", "y", "-f", f"s{i}", "-o", str(out), str(folder)],
                           capture_output=True, check=True)
        return (time.perf_counter() - t) / len(series)

    res = interleave([("ours", ours), ("alone", alone)], 2 if ctx.quick else 3)
    ctx.add(Row(bench, size, "ours: bidsify --source dicom", res["ours"], ours=True,
                note="series discovery, rules, sidecars, dataset files included"))
    ctx.add(Row(bench, size, "dcm2niix alone, one call per series folder", res["alone"]))
