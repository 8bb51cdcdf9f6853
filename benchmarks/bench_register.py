"""Registration: ours (SimpleITK rigid) vs ANTs rigid (antspyx) on misaligned phantom pairs, then the
hard pairs (totalseg_bids.testing.hard.HARD_CASES) per case: header vs whole-image rigid vs rigid with
the options that case needs.

Everything runs through ``register_dataset`` so inputs, outputs and CT preprocessing are the same;
seconds per pair and mean Dice against the phantom's exact truth. The articulated case also writes
``benchmarks/figures/register_articulated.png`` (truth, whole-image and focused sacrum on one MRI slice).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from .bench_common import REPO, Context, Row, available

CASES = ((10.0, 10.0), (20.0, 15.0))
METHODS = (("header", "header", False), ("ours: register --method rigid", "rigid", True),
           ("ANTs rigid (antspyx, --method ants-rigid)", "ants-rigid", False))
#: CPU seconds per pair (all threads of this process) of the last run_method call: on a shared
#: machine wall time follows the other load, CPU time follows the work
LAST_CPU = [0.0]
FIGURE = REPO / "benchmarks" / "figures" / "register_articulated.png"


def _dice(a, b) -> float:
    a, b = np.asarray(a) > 0, np.asarray(b) > 0
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))


def run_method(root: Path, method: str, options: dict | None = None, tag: str = "") -> tuple[float, list[float], Path]:
    """Seconds per pair, Dice per MRI and the output folder of one method on the phantom dataset ``root``.

    A pair the method refuses (header transfer without a common world frame) counts as Dice 0.
    """
    import nibabel as nib

    from totalseg_bids.register import register_dataset
    from totalseg_bids.register.options import RegOptions

    out = root / "derivatives" / f"reg-{method}{tag}"
    shutil.rmtree(out, ignore_errors=True)
    n_mri = len(list(root.glob("sub-*/**/anat/*_T?w.nii.gz")))
    t, cpu = time.perf_counter(), time.process_time()
    try:
        results = register_dataset(root, out=out, method=method, jobs=1, reg=RegOptions(**(options or {})))
    except Exception:  # noqa: BLE001 - refused pairs (BatchError): those score 0
        results = []
    dt = (time.perf_counter() - t) / max(n_mri, 1)
    LAST_CPU[0] = (time.process_time() - cpu) / max(n_mri, 1)
    gt = root / "derivatives" / "ground_truth"
    dice = [_dice(nib.load(r["path"]).dataobj, nib.load(gt / Path(r["path"]).relative_to(out)).dataobj)
            for r in results]
    return dt, dice + [0.0] * (n_mri - len(dice)), out


def _speed(ctx: Context, subjects: int, has_ants: bool) -> None:
    from totalseg_bids.testing.phantoms import generate

    for mm, deg in CASES:
        root = generate(ctx.tmp / f"reg-{mm:g}-{deg:g}", subjects=subjects, misalign_mm=mm, misalign_deg=deg, seed=11)
        bench = f"registration, {mm:g} mm / {deg:g} deg (s/pair, Dice vs truth)"
        size = f"{2 * subjects} MRI grids"
        for label, method, ours in METHODS:
            if method.startswith("ants") and not has_ants:
                ctx.add(Row(bench, size, label, status="not available", note="pip install totalseg_bids[ants]"))
                continue
            try:
                dt, dice, _ = run_method(root, method)
            except Exception as exc:  # noqa: BLE001 - a failing method is a row, not a crash
                ctx.add(Row(bench, size, label, status=f"error: {str(exc)[:120]}"))
                continue
            note = f"Dice {np.mean(dice):.3f} (min {min(dice):.3f})"
            ctx.add(Row(bench, size, label, [dt], ours=ours, note=note))
            ctx.add(Row(bench.replace("s/pair", "CPU s/pair"), size, label, [LAST_CPU[0]], ours=ours, note=note))
        shutil.rmtree(root, ignore_errors=True)


def _hard(ctx: Context, subjects: int) -> None:
    from totalseg_bids.testing.hard import HARD_CASES
    from totalseg_bids.testing.phantoms import generate

    for i, (case, (phantom, options)) in enumerate(HARD_CASES.items()):
        root = generate(ctx.tmp / f"reg-hard-{i}", subjects=subjects, misalign_mm=10, misalign_deg=10, seed=7,
                        **phantom)
        bench = f"hard pair: {case} (+10 mm / 10 deg)"
        size = f"{2 * subjects} MRI grids"
        flags = " ".join(f"--{k.replace('_', '-')} {v:g}" if isinstance(v, float) else f"--{k} {v}"
                         for k, v in options.items())
        runs = [("header", "header", None, False), ("rigid, whole image", "rigid", {}, False)]
        if options:
            runs.append((f"ours: rigid {flags}", "rigid", options, True))
        else:
            runs[1] = ("ours: rigid (no options needed)", "rigid", {}, True)
        outs = {}
        for label, method, opts, ours in runs:
            dt, dice, outs[label] = run_method(root, method, opts, tag=str(len(outs)))
            ctx.add(Row(bench, size, label, [dt], ours=ours,
                        note=f"Dice {np.mean(dice):.3f} (min {min(dice):.3f})"))
        if "flexed" in case:
            _figure(root, outs["rigid, whole image"], outs[runs[-1][0]], FIGURE)
        shutil.rmtree(root, ignore_errors=True)


def _figure(root: Path, whole: Path, focused: Path, path: Path) -> None:
    """Mid-sacrum slice of the first T2w: truth (green), whole-image rigid (red), --focus-mm (blue)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import nibabel as nib
    except ImportError:
        return
    mri = sorted(root.glob("sub-*/anat/*_T2w.nii.gz"))[0]
    rel = mri.relative_to(root)
    seg = rel.name.replace(".nii.gz", "_label-sacrum_seg.nii.gz")
    truth = np.asarray(nib.load(root / "derivatives" / "ground_truth" / rel.parent / seg).dataobj)
    k = int(np.argmax(truth.sum(axis=(0, 1))))
    fig, ax = plt.subplots(figsize=(4, 4.6))
    ax.imshow(np.asarray(nib.load(mri).dataobj)[:, :, k].T, cmap="gray", origin="lower")
    for folder, colour in ((None, "lime"), (whole, "red"), (focused, "deepskyblue")):
        data = truth if folder is None else np.asarray(nib.load(folder / rel.parent / seg).dataobj)
        ax.contour(data[:, :, k].T, levels=[0.5], colors=colour, linewidths=1.2)
    ax.set_title("sacrum: truth (green), whole image (red),\n--focus-mm 15 (blue)", fontsize=9)
    ax.axis("off")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def bench_register(ctx: Context) -> None:
    reg, why = available("totalseg_bids.register")
    if reg is None:
        ctx.add(Row("register rigid vs ANTs", "-", "register --method rigid", status="not available", note=why))
        return
    subjects = 1 if ctx.quick else 6
    _speed(ctx, subjects, available("ants")[0] is not None)
    _hard(ctx, 1 if ctx.quick else 3)
