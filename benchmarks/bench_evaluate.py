"""``evaluate`` against what a user would otherwise run for the same table.

Data: N cases of two label maps (prediction, reference) of W x H x D voxels at
0.8 x 0.8 x 2.0 mm, two classes per case (a large, irregular bone-like structure
and a small one); the prediction is the reference moved by a voxel or two,
grown or shrunk, with a stray false positive. Full run: 100 cases of
512x512x200 (ten shapes, each case placed anew); ``--quick``: 4 cases of
128x128x64. MONAI costs about a minute per full-size case on 2 cores, so it
runs on the first 3 cases, where ours and nnU-Net are measured again.

Measured side by side in one run, from the files on disk:

* ours: ``evaluate_folders`` (Dice, IoU, volumes, HD95, ASSD, NSD at 2 mm, ``-j 1``);
* nnU-Net's ``compute_metrics_on_folder`` (Dice and IoU only; one worker, as
  ``nnUNetv2_evaluate_simple -np 1``);
* nibabel + MONAI (HD95, ASSD, NSD only): each pair read with nibabel, then
  ``compute_hausdorff_distance(percentile=95)``,
  ``compute_average_surface_distance(symmetric=True)`` and
  ``compute_surface_dice`` per class with the voxel spacing, as MONAI's docs
  show them (MONAI >= 1.6 searches a k-d tree on the CPU as we do);
* the same surface metrics on arrays already in memory (ours vs MONAI), which
  isolates the algorithm from the reading.

The note of each row says whether the values agree: ours against nnU-Net's Dice
and MONAI's distances, case by case and class by class.
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path

import numpy as np

from .bench_common import Context, Row, interleave

SPACING = (0.8, 0.8, 2.0)
TOLERANCE_MM = 2.0
CLASSES = (1, 2)


def _blob(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
    """An irregular closed shape filling most of ``shape`` (smoothed random field, thresholded)."""
    from scipy import ndimage

    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma=(6, 6, 3))
    grid = np.indices(shape, dtype=np.float32)
    centre = (np.array(shape) - 1) / 2
    radial = sum(((grid[i] - centre[i]) / (shape[i] / 2.2)) ** 2 for i in range(3))
    return (radial + 12 * field) < 1.0


def make_variant(rng: np.random.Generator, shape: tuple[int, int, int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """One case's two classes as (prediction box, reference box), class 1 large, class 2 small: the
    reference an irregular shape, the prediction moved by up to 2 voxels, grown or shrunk by one."""
    from scipy import ndimage

    big = tuple(max(8, int(s * f)) for s, f in zip(shape, (0.25, 0.22, 0.3)))
    small = tuple(max(4, int(s * f)) for s, f in zip(shape, (0.06, 0.06, 0.1)))
    out = []
    for size in (big, small):
        ref = _blob(rng, size)
        moved = ndimage.shift(ref.astype(np.uint8), rng.uniform(-2, 2, 3), order=0) > 0
        pred = ndimage.binary_dilation(moved) if rng.random() < 0.5 else ndimage.binary_erosion(moved)
        out.append((pred, ref))
    return out


def place(rng: np.random.Generator, shape: tuple[int, int, int],
          variant: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, reference) maps of ``shape`` with the variant's classes at random places and a
    stray false positive of class 1."""
    ref = np.zeros(shape, np.uint8)
    pred = np.zeros(shape, np.uint8)
    for value, (p, r) in enumerate(variant, start=1):
        at = [int(rng.integers(2, s - n - 2)) for s, n in zip(shape, r.shape)]
        box = tuple(slice(a, a + n) for a, n in zip(at, r.shape))
        ref[box][r] = value
        pred[box][p] = value
    stray = [int(rng.integers(2, s - 6)) for s in shape]
    pred[stray[0]:stray[0] + 3, stray[1]:stray[1] + 3, stray[2]:stray[2] + 2] = 1
    return pred, ref


def write_cases(folder: Path, n: int, shape: tuple[int, int, int], seed: int = 0, variants: int = 10) -> None:
    """``folder/pred`` and ``folder/ref`` with ``n`` cases (``variants`` shapes, each case placed anew)."""
    from totalseg_bids.core.nifti import save_mask

    rng = np.random.default_rng(seed)
    shapes = [make_variant(rng, shape) for _ in range(min(n, variants))]
    affine = np.diag([*SPACING, 1.0])
    for i in range(n):
        pred, ref = place(rng, shape, shapes[i % len(shapes)])
        targets = folder / "pred" / f"case_{i:03d}.nii.gz", folder / "ref" / f"case_{i:03d}.nii.gz"
        if all(t.exists() for t in targets):  # written by an earlier run with --keep/--tmp: the same data
            continue
        save_mask(pred, affine, targets[0])
        save_mask(ref, affine, targets[1])


def subset(folder: Path, k: int) -> Path:
    """A folder pair holding links to the first ``k`` cases of ``folder``."""
    out = folder / f"first_{k}"
    for side in ("pred", "ref"):
        (out / side).mkdir(parents=True, exist_ok=True)
        for p in sorted((folder / side).glob("*.nii.gz"))[:k]:
            target = out / side / p.name
            if not target.exists():
                target.symlink_to(p)
    return out


def monai_case(pred: np.ndarray, ref: np.ndarray, spacing) -> dict[int, dict[str, float]]:
    """HD95, ASSD and NSD of each class as a MONAI user computes them."""
    import torch
    from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance, compute_surface_dice

    out = {}
    spacing = [float(s) for s in spacing]
    for value in CLASSES:
        p, r = torch.as_tensor(pred == value)[None, None], torch.as_tensor(ref == value)[None, None]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[value] = {
                "hd95_mm": compute_hausdorff_distance(p, r, include_background=True, percentile=95,
                                                      spacing=spacing).item(),
                "assd_mm": compute_average_surface_distance(p, r, include_background=True, symmetric=True,
                                                            spacing=spacing).item(),
                "nsd": compute_surface_dice(p, r, [TOLERANCE_MM], include_background=True, spacing=spacing).item()}
    return out


def _agreement(ours: list[dict], other: dict[str, dict[int, dict[str, float]]], keys: tuple[str, ...]) -> str:
    """``max |ours - theirs|`` per metric over every case and class, and whether non-finite values match."""
    worst = dict.fromkeys(keys, 0.0)
    same_nonfinite = True
    for rec in ours:
        for m in rec["labels"].values():
            theirs = other.get(rec["case"], {}).get(m["value"])
            if theirs is None:
                continue
            for k in keys:
                a, b = m[k], theirs[k]
                if math.isfinite(a) and math.isfinite(b):
                    worst[k] = max(worst[k], abs(a - b))
                elif not (math.isinf(a) and (math.isinf(b) or math.isnan(b))):
                    same_nonfinite = False
    shown = ", ".join(f"{k} {v:.1e}" for k, v in worst.items())
    return f"max abs difference from ours: {shown}; same empty-mask cases: {'yes' if same_nonfinite else 'NO'}"


def bench_evaluate(ctx: Context) -> None:
    n, k, shape = (4, 2, (128, 128, 64)) if ctx.quick else (100, 3, (512, 512, 200))
    t0 = time.perf_counter()
    write_cases(ctx.tmp, n, shape)
    grid = "x".join(map(str, shape))
    ctx.log(f"  evaluate: wrote {n} cases of {grid} in {time.perf_counter() - t0:.1f} s")
    _files(ctx, ctx.tmp, f"{n} cases of {grid}, 2 classes", monai=False)
    _files(ctx, subset(ctx.tmp, k), f"the first {k} of those cases", monai=True)
    _in_memory(ctx, f"surface metrics of {min(k, 2)} cases in memory", min(k, 2))


def _files(ctx: Context, folder: Path, size: str, monai: bool) -> None:
    """From the files: ours against nnU-Net's overlap metrics and (``monai``) MONAI's surface metrics."""
    import nibabel as nib

    from totalseg_bids.evaluate import evaluate_folders

    pred, ref = folder / "pred", folder / "ref"
    results: dict[str, object] = {}

    def ours() -> float:
        t = time.perf_counter()
        results["ours"] = evaluate_folders(pred, ref, labels=[str(c) for c in CLASSES], jobs=1,
                                           tolerance_mm=TOLERANCE_MM)
        return time.perf_counter() - t

    def nnunet() -> float:
        from nnunetv2.evaluation.evaluate_predictions import compute_metrics_on_folder
        from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

        t = time.perf_counter()
        out = compute_metrics_on_folder(str(ref), str(pred), None, SimpleITKIO(), ".nii.gz", list(CLASSES),
                                        num_processes=1)
        results["nnunet"] = {Path(c["prediction_file"]).name.split(".nii")[0]:
                             {v: {"dice": c["metrics"][v]["Dice"], "iou": c["metrics"][v]["IoU"]} for v in CLASSES}
                             for c in out["metric_per_case"]}
        return time.perf_counter() - t

    def monai_files() -> float:
        t = time.perf_counter()
        found = {}
        for p in sorted(pred.glob("*.nii.gz")):
            pi, ri = nib.load(p), nib.load(ref / p.name)
            found[p.name.split(".nii")[0]] = monai_case(np.asanyarray(pi.dataobj), np.asanyarray(ri.dataobj),
                                                         ri.header.get_zooms()[:3])
        results["monai"] = found
        return time.perf_counter() - t

    methods = [("ours", ours), ("nnunet", nnunet)] + ([("monai", monai_files)] if monai else [])
    times = interleave(methods, 1)  # a first round is seconds to minutes; the groups repeat the comparison
    ctx.add(Row("evaluate", size, "ours: evaluate_folders -j 1 (Dice, IoU, volumes, HD95, ASSD, NSD)",
                times["ours"], ours=True, note=f"{len(results['ours'])} cases"))
    ctx.add(Row("evaluate", size, "nnU-Net compute_metrics_on_folder, 1 worker (Dice, IoU only)", times["nnunet"],
                note=_agreement(results["ours"], results["nnunet"], ("dice", "iou"))))
    if monai:
        ctx.add(Row("evaluate", size, "nibabel + MONAI per class (HD95, ASSD, NSD only)", times["monai"],
                    note=_agreement(results["ours"], results["monai"], ("hd95_mm", "assd_mm", "nsd"))))
        both = [a + b for a, b in zip(times["nnunet"], times["monai"])]
        ctx.add(Row("evaluate", size, "nnU-Net + MONAI: the same table from the two tools", both,
                    note="sum of the two rows above"))


def _in_memory(ctx: Context, size: str, n: int) -> None:
    import nibabel as nib

    from totalseg_bids.evaluate import case_metrics

    arrays = []
    for p in sorted((ctx.tmp / "pred").glob("*.nii.gz"))[:n]:
        pi, ri = nib.load(p), nib.load(ctx.tmp / "ref" / p.name)
        arrays.append((p.name.split(".nii")[0], np.asanyarray(pi.dataobj), np.asanyarray(ri.dataobj), ri.affine))
    results: dict[str, dict] = {}

    def ours() -> float:
        t = time.perf_counter()
        results["ours"] = {case: case_metrics(p, r, a, CLASSES, TOLERANCE_MM) for case, p, r, a in arrays}
        return time.perf_counter() - t

    def monai() -> float:
        t = time.perf_counter()
        results["monai"] = {case: monai_case(p, r, SPACING) for case, p, r, _a in arrays}
        return time.perf_counter() - t

    times = interleave([("ours", ours), ("monai", monai)], 2 if ctx.quick else 1)
    records = [{"case": c, "labels": {str(v): {"value": v, **m} for v, m in ms.items()}}
               for c, ms in results["ours"].items()]
    ctx.add(Row("evaluate", size, "ours: case_metrics (whole maps in, every metric)", times["ours"], ours=True))
    ctx.add(Row("evaluate", size, "MONAI: three metric calls per class", times["monai"],
                note=_agreement(records, results["monai"], ("hd95_mm", "assd_mm", "nsd"))))
