"""DICOM -> BIDS per series: ``bidsify --source dicom`` vs calling ``dcm2niix`` alone.

Both sides run the same compiled ``dcm2niix`` with the same options, one call
per series, ``-j 1``. Ours adds the series discovery (every file's header up
to (0020,0011) with pydicom), the naming rules, sidecars and dataset files.
Rows: in process after one warm-up run (what a long conversion costs per
series), a fresh ``python -m`` process (what one small run costs, Python and
pydicom start-up included), and the header scan alone (where the overhead is).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .bench_common import REPO, Context, Row, available, interleave


def clinical_tree(root: Path, series: int) -> Path:
    """``series`` axial CT series of 512 x 512 x 48 slices (0.8 mm), one folder each."""
    import numpy as np

    from totalseg_bids.core.nifti import Grid
    from totalseg_bids.testing.layouts.common import subject
    from totalseg_bids.testing.layouts.dicom import write_series
    from totalseg_bids.testing.anatomy import make_affine

    for i in range(series):
        shape = (512, 512, 48)
        grid = Grid(shape, make_affine(np.eye(3), [0.8, 0.8, 2.5], shape, [0.0, -5.0, 5.0]))
        ct, _, _ = subject(i, 0, "CT", grid)
        pid, uid = f"PAT{i + 1:02d}", f"1.2.826.0.1.3680043.8.498.77.{i + 1}"
        write_series(ct, grid.affine, root / pid / "CT", {
            "0010|0010": pid, "0010|0020": pid, "0020|000d": uid, "0020|000e": f"{uid}.1", "0008|0060": "CT",
            "0008|103e": "pelvis CT", "0020|0011": "1", "0008|0020": "20260101", "0008|0030": "120000"})
    return root


def _rows(ctx: Context, mod, exe: str, src: Path, size: str, repeats: int) -> None:
    series = sorted({p.parent for p in src.rglob("*.dcm")})
    n = len(series)
    from totalseg_bids.bidsify.options import BidsifyOptions

    opts = BidsifyOptions(jobs=1)
    bench = "DICOM -> BIDS per series (-j 1)"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "TOTALSEG_BIDS_NO_PROGRESS": "1"}

    def ours() -> float:
        out = ctx.tmp / "bids"
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        mod.bidsify("dicom", src, out, opts)
        return (time.perf_counter() - t) / n

    def ours_cli() -> float:
        out = ctx.tmp / "bids_cli"
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "totalseg_bids.bidsify", "--source", "dicom", "--in", str(src),
                        "--out", str(out), "-j", "1", "-q"], check=True, capture_output=True, env=env)
        return (time.perf_counter() - t) / n

    def scan() -> float:
        from totalseg_bids.bidsify.dicom import find_series

        t = time.perf_counter()
        find_series(src)
        return (time.perf_counter() - t) / n

    def alone() -> float:
        out = ctx.tmp / "plain"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        t = time.perf_counter()
        for i, folder in enumerate(series):
            subprocess.run([exe, "-z", "y", "-b", "y", "-ba", "y", "-f", f"s{i}", "-d", "0", "-o", str(out),
                            str(folder)], capture_output=True, check=True)
        return (time.perf_counter() - t) / n

    ours()  # warm-up: imports and page cache, for the in-process rows
    res = interleave([("ours", ours), ("cli", ours_cli), ("scan", scan), ("alone", alone)], repeats)
    ctx.add(Row(bench, size, "ours: bidsify --source dicom, in process", res["ours"], ours=True,
                note="discovery, rules, sidecars, dataset files included"))
    ctx.add(Row(bench, size, "dcm2niix alone (compiled binary), one call per series folder", res["alone"]))
    ctx.add(Row(bench, size, "ours: python -m totalseg_bids.bidsify (fresh process)", res["cli"],
                note="Python + pydicom start-up spread over the series"))
    ctx.add(Row(bench, size, "ours, part: series discovery (pydicom headers to (0020,0011))", res["scan"]))


def bench_bidsify(ctx: Context) -> None:
    mod, why = available("totalseg_bids.bidsify.__main__")
    exe = None
    if mod is not None:
        from totalseg_bids.bidsify.dcm2niix_run import dcm2niix_binary

        try:
            exe = dcm2niix_binary()  # the compiled program itself, as fast as a user can call it
        except Exception:  # noqa: BLE001 - not installed
            exe = None
    if mod is None or exe is None:
        ctx.add(Row("DICOM -> BIDS per series (-j 1)", "-", "bidsify --source dicom", status="not available",
                    note=why or "no dcm2niix"))
        return
    from totalseg_bids.testing.layouts import write_layout

    src = write_layout("dicom", ctx.tmp / "dicom", subjects=2 if ctx.quick else 4)
    _rows(ctx, mod, exe, src, f"{2 if ctx.quick else 4} phantoms: CT 90x70x75 + oblique MR 56x64x20",
          2 if ctx.quick else 3)
    if not ctx.quick:
        big = clinical_tree(ctx.tmp / "clinical", 4)
        _rows(ctx, mod, exe, big, "4 CT series 512x512x48", 3)
