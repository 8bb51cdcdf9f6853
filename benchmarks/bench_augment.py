"""2D augmentation: ``totalseg_bids.augment`` vs a plain albumentations loop over the same slices."""

from __future__ import annotations

import shutil
import time

import numpy as np

from benchmarks.bench_common import Context, Row, available, interleave


def _write_slices(folder, n: int, size: int) -> None:
    """A synthetic mmseg slice folder (RGB PNG + mask, slices.tsv) without running ``slices``."""
    from PIL import Image

    rng = np.random.default_rng(0)
    lines = ["file\tmask\tsplit\timages\thas_label"]
    for split in ("images/train", "masks/train"):
        (folder / split).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        mask = np.zeros((size, size), np.uint8)
        if i % 3:
            mask[size // 4: size // 2, size // 3: size // 2] = 1
        Image.fromarray(img).save(folder / f"images/train/s{i:04d}.png")
        Image.fromarray(mask).save(folder / f"masks/train/s{i:04d}.png")
        lines.append(f"images/train/s{i:04d}.png\tmasks/train/s{i:04d}.png\ttrain\tvol{i % 4}\t{int(mask.any())}")
    (folder / "slices.tsv").write_text("\n".join(lines) + "\n")


def bench_augment(ctx: Context) -> None:
    mod, why = available("totalseg_bids.augment.main")
    alb, why_alb = available("albumentations")
    bench = "augment to N samples (default six-transform recipe)"
    if mod is None or alb is None:
        ctx.add(Row(bench, "-", "augment", status="not available", note=why or why_alb))
        return
    from PIL import Image

    from totalseg_bids.augment.recipe import default_recipe

    n_src, target, size = (20, 60, 128) if ctx.quick else (100, 1000, 256)
    src = ctx.tmp / "aug_slices"
    _write_slices(src, n_src, size)
    size_txt = f"{n_src} slices {size}x{size}x3 -> {target} samples"

    def ours(jobs):
        def go():
            out = ctx.tmp / f"aug_ours{jobs}"
            shutil.rmtree(out, ignore_errors=True)
            t = time.perf_counter()
            mod.augment(src, out, {"train": target}, seed=1, jobs=jobs)
            return time.perf_counter() - t
        return go

    def plain():
        out = ctx.tmp / "aug_plain"
        shutil.rmtree(out, ignore_errors=True)
        (out / "images").mkdir(parents=True)
        (out / "masks").mkdir(parents=True)
        compose = default_recipe()
        t = time.perf_counter()
        for k in range(target):
            i = k % n_src
            img = np.asarray(Image.open(src / f"images/train/s{i:04d}.png"))
            mask = np.asarray(Image.open(src / f"masks/train/s{i:04d}.png"))
            r = compose(image=img, mask=mask)
            Image.fromarray(r["image"]).save(out / f"images/{k:05d}.png")
            Image.fromarray(r["mask"]).save(out / f"masks/{k:05d}.png")
        return time.perf_counter() - t

    res = interleave([("plain", plain), ("j1", ours(1)), ("j2", ours(2))], 1 if ctx.quick else 3)
    rate = {k: target / float(np.median(v)) for k, v in res.items()}
    ctx.add(Row(bench, size_txt, "plain albumentations loop (read, Compose, write PNG)", res["plain"],
                note=f"{rate['plain']:.0f} samples/s"))
    ctx.add(Row(bench, size_txt, "ours: augment -j 1", res["j1"], ours=True,
                note=f"{rate['j1']:.0f} samples/s, {rate['j1'] / rate['plain']:.2f}x the plain loop"))
    ctx.add(Row(bench, size_txt, "ours: augment -j 2", res["j2"], ours=True,
                note=f"{rate['j2']:.0f} samples/s, speed-up {rate['j2'] / rate['j1']:.2f}x over -j 1"))
