"""DICOM -> BIDS: ``bidsify --source dicom`` vs calling ``dcm2niix`` alone.

Both sides run the same compiled ``dcm2niix``, ``-j 1``. Ours adds the series
discovery (every file's header up to (0028,0011) with pydicom, non-image
objects and strays sorted out), the naming rules (dcm2bids 3 semantics) on the
sidecars of the conversion of exactly each series' files (into a scratch
folder, then moved), sidecars and dataset files. Rows: in process after one
warm-up run (what a long conversion costs), a fresh ``python -m`` process
(Python and pydicom start-up included), and the parts: the header scan, and
the header scan with the ``dcm2niix -b o`` sidecar pass that plans a resumed
conversion (an output that already holds files).
Sizes: the phantom layout (quick), 4 clinical-size CT series 512 x 512 x 48,
and a de-identified 2,000-file export of 20 series (files without extension,
UIDs emptied, nested folders, strays beside them) against ``dcm2niix`` on the
whole tree, the command a user would otherwise run.
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
    from totalseg_bids.testing.anatomy import make_affine
    from totalseg_bids.testing.layouts.common import subject
    from totalseg_bids.testing.layouts.dicom import write_series

    for i in range(series):
        shape = (512, 512, 48)
        grid = Grid(shape, make_affine(np.eye(3), [0.8, 0.8, 2.5], shape, [0.0, -5.0, 5.0]))
        ct, _, _ = subject(i, 0, "CT", grid)
        pid, uid = f"PAT{i + 1:02d}", f"1.2.826.0.1.3680043.8.498.77.{i + 1}"
        write_series(ct, grid.affine, root / pid / "CT", {
            "0010|0010": pid, "0010|0020": pid, "0020|000d": uid, "0020|000e": f"{uid}.1", "0008|0060": "CT",
            "0008|103e": "pelvis CT", "0020|0011": "1", "0008|0020": "20260101", "0008|0030": "120000"})
    return root


def export_tree(root: Path, series: int = 20, slices: int = 100, size: int = 256) -> Path:
    """A de-identified export of ``series`` MR series of ``slices`` files (``size`` x ``size``), files
    without extension in ``PA<n>/ST<n>/SE<n>/``, UIDs and patient fields emptied, plus a README and an SR."""
    import numpy as np
    from pydicom.data import get_testdata_file

    from totalseg_bids.testing.layouts.dicom_export import MR_SOP, write_series

    y, x = np.mgrid[:size, :size]
    for s in range(series):
        rng = np.random.default_rng(s)
        base = (800 * np.exp(-((x - size / 2) ** 2 + (y - size / 2) ** 2) / (size * size / 8))).T
        data = np.stack([base * (1 + 0.3 * np.sin(k / 7 + s)) + rng.normal(0, 20, base.shape)
                         for k in range(slices)], axis=-1).astype(np.int16)
        patient = s // 4
        folder = root / f"PA{patient:06d}" / "ST000001" / f"SE{s:06d}"
        write_series(data, np.diag([-0.9, -0.9, 3.0, 1.0]), folder, {
            "SOPClassUID": MR_SOP, "Modality": "MR", "PatientID": "", "PatientName": "", "StudyInstanceUID": "",
            "SeriesInstanceUID": "", "SeriesNumber": s + 1, "SeriesDescription": f"t{1 + s % 2}_tse_run{s}",
            "ImageType": ["ORIGINAL", "PRIMARY", "M", "ND"], "EchoTime": 90, "RepetitionTime": 4000,
            "FrameOfReferenceUID": f"1.2.826.0.1.3680043.8.498.5.{patient}", "Manufacturer": "SIEMENS"})
    (root / "README.txt").write_text("archive export\n", encoding="utf-8")
    shutil.copyfile(get_testdata_file("test-SR.dcm", download=False), root / "SR00001")
    return root


def _export_rows(ctx: Context, mod, exe: str, src: Path, size: str, repeats: int) -> None:
    """The export against ``dcm2niix`` on the whole tree (one call) and on each series folder."""
    from totalseg_bids.bidsify.options import BidsifyOptions

    opts = BidsifyOptions(jobs=1, subject_regex=r"^(PA\d+)/")
    bench, n = "DICOM export -> BIDS (-j 1)", 20

    def ours() -> float:
        out = ctx.tmp / "bids_export"
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        mod.bidsify("dicom", src, out, opts)
        return time.perf_counter() - t

    def tree() -> float:
        out = ctx.tmp / "plain_export"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        t = time.perf_counter()
        subprocess.run([exe, "-z", "y", "-b", "y", "-ba", "y", "-o", str(out), str(src)], capture_output=True,
                       check=True)
        return time.perf_counter() - t

    def parts() -> float:
        from totalseg_bids.bidsify.dcm2niix_run import sidecars_of
        from totalseg_bids.bidsify.dicom_scan import dicom_files, scan

        t = time.perf_counter()
        found, _ = scan(dicom_files(src))
        ctx.tmp.joinpath("scan_s").write_text(str(time.perf_counter() - t))
        sidecars_of([(s.files, f"s{i:04d}") for i, s in enumerate(found) if s.tags["Modality"] == "MR"], 1)
        return time.perf_counter() - t

    ours()  # warm-up: imports and page cache
    res = interleave([("ours", ours), ("tree", tree), ("parts", parts)], repeats)
    ctx.add(Row(bench, size, "ours: bidsify --source dicom, in process", res["ours"], ours=True,
                note=f"{n} series named, 2 strays listed; per export"))
    ctx.add(Row(bench, size, "dcm2niix alone on the whole tree (one call, what a user runs)", res["tree"],
                note="the 20 image series; no BIDS names, no skip list, no sidecar edits"))
    ctx.add(Row(bench, size, "ours, part: header scan + dcm2niix -b o sidecar pass (plans a resumed run)", res["parts"],
                note=f"header scan alone {float(ctx.tmp.joinpath('scan_s').read_text()):.2f} s in the last round"))


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
        from totalseg_bids.bidsify.dicom_scan import dicom_files
        from totalseg_bids.bidsify.dicom_scan import scan as scan_headers

        t = time.perf_counter()
        scan_headers(dicom_files(src))
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
    ctx.add(Row(bench, size, "ours, part: series discovery (pydicom headers to (0028,0011))", res["scan"]))


def bench_bidsify(ctx: Context) -> None:
    mod, why = available("totalseg_bids.bidsify")
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
        export = export_tree(ctx.tmp / "export")
        _export_rows(ctx, mod, exe, export, "2,000 files: 20 de-identified MR series 256x256x100, 5 patients", 3)
