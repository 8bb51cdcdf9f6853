"""Registration: ours (SimpleITK rigid) vs ANTs rigid (antspyx) on misaligned phantom pairs.

Both run through ``register_dataset`` so inputs, outputs and CT preprocessing
are the same; seconds per pair and mean Dice against the phantom's exact truth.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from .bench_common import Context, Row, available

CASES = ((10.0, 10.0), (20.0, 15.0))
METHODS = (("header", "header", False), ("ours: register --method rigid", "rigid", True),
           ("ANTs rigid (antspyx, --method ants-rigid)", "ants-rigid", False))


def _dice(a, b) -> float:
    a, b = np.asarray(a) > 0, np.asarray(b) > 0
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))


def _run(root: Path, method: str) -> tuple[float, float]:
    """Seconds per pair and mean Dice of one method on the phantom dataset ``root``."""
    import nibabel as nib

    from totalseg_bids.register import register_dataset

    out = root / "derivatives" / f"reg-{method}"
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    results = register_dataset(root, path_out=out, method=method, jobs=1)
    dt = (time.perf_counter() - t) / len(results)
    gt = root / "derivatives" / "ground_truth"
    dice = [_dice(nib.load(r["output"]).dataobj, nib.load(gt / Path(r["output"]).relative_to(out)).dataobj)
            for r in results]
    return dt, float(np.mean(dice))


def bench_register(ctx: Context) -> None:
    reg, why = available("totalseg_bids.register")
    if reg is None:
        ctx.add(Row("register rigid vs ANTs", "-", "register --method rigid", status="not available", note=why))
        return
    from totalseg_bids.phantoms import generate

    subjects = 1 if ctx.quick else 6
    has_ants = available("ants")[0] is not None
    for mm, deg in CASES:
        root = generate(ctx.tmp / f"reg-{mm:g}-{deg:g}", subjects=subjects, misalign_mm=mm, misalign_deg=deg, seed=11)
        bench = f"registration, {mm:g} mm / {deg:g} deg (s/pair, Dice vs truth)"
        size = f"{2 * subjects} MRI grids"
        for label, method, ours in METHODS:
            if method.startswith("ants") and not has_ants:
                ctx.add(Row(bench, size, label, status="not available", note="pip install totalseg_bids[ants]"))
                continue
            try:
                dt, dice = _run(root, method)
            except Exception as exc:  # noqa: BLE001 - a failing method is a row, not a crash
                ctx.add(Row(bench, size, label, status=f"error: {str(exc)[:120]}"))
                continue
            ctx.add(Row(bench, size, label, [dt], ours=ours, note=f"Dice {dice:.3f}"))
        shutil.rmtree(root, ignore_errors=True)
