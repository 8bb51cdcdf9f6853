"""segment_ct over a cohort of CTs vs one ``TotalSegmentator`` call per CT, as users run it by hand.

The real TotalSegmentator program on the tiny local weights (built once into
``$TOTALSEG_BIDS_TINY_WEIGHTS`` or the run's temporary folder). ``segment_ct``
starts TotalSegmentator's Python API once per worker process and hands it one
CT after the other; the alternative starts the program once per CT (an
interpreter, torch, nnU-Net, TotalSegmentator and, with the program's default
``--nr_thr_saving 6``, six nnU-Net export processes). The same loop with
``-ns 1`` separates what the export processes cost from what the program start
costs. Full mode only (minutes).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

from .bench_common import Context, Row, available, child_env, interleave, run_cli

CLASSES = ("sacrum",)


def _weights(ctx: Context) -> Path:
    from totalseg_bids.testing.tiny_totalseg import build

    env = os.environ.get("TOTALSEG_BIDS_TINY_WEIGHTS")
    home = Path(env) if env else ctx.tmp / "tiny_totalseg"
    t = time.perf_counter()
    build(home)
    ctx.log(f"  tiny TotalSegmentator weights ready in {time.perf_counter() - t:.1f} s ({home})")
    return home


def _by_hand(cts: list[Path], out: Path, env: dict, extra: tuple[str, ...]) -> float:
    """One ``TotalSegmentator`` process per CT, in a shell-like loop."""
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    for ct in cts:
        cmd = ["TotalSegmentator", "-i", str(ct), "-o", str(out / ct.name.split(".")[0]), "--roi_subset",
               *CLASSES, "--fast", "-d", "cpu", *extra]
        proc = subprocess.run(cmd, capture_output=True, encoding="utf-8", errors="replace", env=env, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"TotalSegmentator failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    return time.perf_counter() - t


def _ours(root: Path, env: dict) -> float:
    shutil.rmtree(root / "derivatives" / "labels", ignore_errors=True)
    t = time.perf_counter()
    proc = run_cli(["-m", "totalseg_bids.segment_ct", "--bids-dir", str(root), "--classes", *CLASSES, "--fast",
                    "--device", "cpu", "-j", "1", "-q"], env=env, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"segment_ct failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    return time.perf_counter() - t


def _same_masks(root: Path, by_hand: Path) -> str:
    """Whether segment_ct's labels equal the program's own files."""
    import nibabel as nib

    differ = 0
    cts = sorted(root.glob("sub-*/anat/*_CT.nii.gz"))
    for ct in cts:
        stem = ct.name.split(".")[0]
        ours = root / "derivatives" / "labels" / ct.parent.relative_to(root) / f"{stem}_label-sacrum_seg.nii.gz"
        theirs = by_hand / stem / "sacrum.nii.gz"
        a, b = (np.asarray(nib.load(p).dataobj) > 0 for p in (ours, theirs))
        differ += int(not np.array_equal(a, b))
    return f"{len(cts) - differ}/{len(cts)} masks identical to the program's"


def bench_segment_ct(ctx: Context) -> None:
    stage, why = available("totalseg_bids.segment_ct")
    bench = "segment_ct: TotalSegmentator --fast over a cohort (real program, tiny weights)"
    if stage is None or shutil.which("TotalSegmentator") is None:
        ctx.add(Row(bench, "-", "segment_ct", status="not available", note=why or "TotalSegmentator not installed"))
        return
    from totalseg_bids.testing.phantoms import generate
    from totalseg_bids.totalsegmentator import home_env

    n, spacing = (2, 3.0) if ctx.quick else (6, 2.0)
    root = generate(ctx.tmp / "segment_cohort", subjects=n, ct_labels=False, ct_spacing=spacing)
    env = child_env(home_env(_weights(ctx)))
    cts = sorted(root.glob("sub-*/anat/*_CT.nii.gz"))
    size = f"{len(cts)} phantom CTs ({spacing:g} mm)"
    out_default, out_ns1 = ctx.tmp / "by_hand", ctx.tmp / "by_hand_ns1"
    res = interleave([("ours", lambda: _ours(root, env)),
                      ("hand", lambda: _by_hand(cts, out_default, env, ())),
                      ("hand_ns1", lambda: _by_hand(cts, out_ns1, env, ("-ns", "1")))], 1 if ctx.quick else 2)
    ctx.add(Row(bench, size, "ours: segment_ct -j 1 (one API process for every CT)", res["ours"], ours=True,
                note=_same_masks(root, out_default)))
    ctx.add(Row(bench, size, "TotalSegmentator -i ct -o out --roi_subset sacrum --fast, once per CT",
                res["hand"], note=f"{np.median(res['hand']) / len(cts):.1f} s per CT"))
    ctx.add(Row(bench, size, "the same with -ns 1 (one nnU-Net export process)", res["hand_ns1"],
                note=f"{np.median(res['hand_ns1']) / len(cts):.1f} s per CT"))
