"""2D augmentation: ``totalseg_bids.augment`` vs a plain albumentations loop over the same slices.

The slices are what ``slices`` writes for a CTA + NCCT pair at full CT size:
512x512 RGB PNGs (CTA, NCCT, an empty third channel) and a mask. The plain loop
is the clot workflow's own: read, one ``Compose`` call with the NCCT as an
``additional_targets`` image, write both channels and the mask. Ours draws the
intensity transforms per channel, writes the manifest and runs in ``-j`` processes.
"""

from __future__ import annotations

import shutil
import time

import numpy as np

from benchmarks.bench_common import Context, Row, available, interleave


def _write_slices(folder, n: int, size: int) -> None:
    """A synthetic mmseg slice folder (2-channel RGB PNG + mask, slices.tsv) without running ``slices``."""
    from PIL import Image

    rng = np.random.default_rng(0)
    lines = ["file\tmask\tsplit\timages\thas_label"]
    for split in ("images/train", "masks/train"):
        (folder / split).mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:size, :size]
    body = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (0.4 * size) ** 2)
    for i in range(n):
        img = np.zeros((size, size, 3), np.uint8)
        for c in range(2):  # CT-like: a noisy body disc on black, the third channel empty as slices writes it
            img[..., c] = np.where(body, rng.normal(90 + 30 * c, 12, body.shape).clip(0, 255), 0).astype(np.uint8)
        mask = np.zeros((size, size), np.uint8)
        if i % 3:
            mask[size // 4: size // 2, size // 3: size // 2] = 1
            img[size // 4: size // 2, size // 3: size // 2, 0] = 200
        Image.fromarray(img).save(folder / f"images/train/s{i:04d}.png")
        Image.fromarray(mask).save(folder / f"masks/train/s{i:04d}.png")
        vol = f"vol{i % 4}"
        lines.append(f"images/train/s{i:04d}.png\tmasks/train/s{i:04d}.png\ttrain\t{vol}_cta;{vol}_ncct\t"
                     f"{int(mask.any())}")
    (folder / "slices.tsv").write_text("\n".join(lines) + "\n")


def _plain_loop(src, out, n_src: int, target: int) -> float:
    """The clot workflow's loop: one Compose call per sample, NCCT as an additional target."""
    import albumentations as A
    from PIL import Image

    from totalseg_bids.augment.recipe import default_recipe

    shutil.rmtree(out, ignore_errors=True)
    (out / "images").mkdir(parents=True)
    (out / "masks").mkdir(parents=True)
    compose = A.Compose(default_recipe().transforms, p=0.8, additional_targets={"image0": "image"})
    t = time.perf_counter()
    for k in range(target):
        i = k % n_src
        rgb = np.asarray(Image.open(src / f"images/train/s{i:04d}.png"))
        mask = np.asarray(Image.open(src / f"masks/train/s{i:04d}.png"))
        r = compose(image=np.ascontiguousarray(rgb[..., 0]), image0=np.ascontiguousarray(rgb[..., 1]), mask=mask)
        Image.fromarray(np.stack([r["image"], r["image0"], rgb[..., 2]], axis=-1)).save(out / f"images/{k:05d}.png")
        Image.fromarray(r["mask"]).save(out / f"masks/{k:05d}.png")
    return time.perf_counter() - t


def bench_augment(ctx: Context) -> None:
    mod, why = available("totalseg_bids.augment")
    alb, why_alb = available("albumentations")
    bench = "augment to N samples (default six-transform recipe, CTA+NCCT)"
    if mod is None or alb is None:
        ctx.add(Row(bench, "-", "augment", status="not available", note=why or why_alb))
        return
    n_src, target, size = (20, 60, 128) if ctx.quick else (50, 300, 512)
    src = ctx.tmp / "aug_slices"
    _write_slices(src, n_src, size)
    size_txt = f"{n_src} slices {size}x{size}x3 -> {target} samples"

    def ours(jobs):
        def go():
            out = ctx.tmp / f"aug_ours{jobs}"
            shutil.rmtree(out, ignore_errors=True)
            t = time.perf_counter()
            mod.augment(src, out, target_train=target, seed=1, jobs=jobs)
            return time.perf_counter() - t
        return go

    def plain():
        return _plain_loop(src, ctx.tmp / "aug_plain", n_src, target)

    res = interleave([("plain", plain), ("j1", ours(1)), ("j2", ours(2))], 1 if ctx.quick else 3)
    rate = {k: target / float(np.median(v)) for k, v in res.items()}
    ctx.add(Row(bench, size_txt, "plain albumentations loop (read, Compose, write PNG)", res["plain"],
                note=f"{rate['plain']:.1f} samples/s"))
    ctx.add(Row(bench, size_txt, "ours: augment -j 1", res["j1"], ours=True,
                note=f"{rate['j1']:.1f} samples/s, {rate['j1'] / rate['plain']:.2f}x the plain loop"))
    ctx.add(Row(bench, size_txt, "ours: augment -j 2", res["j2"], ours=True,
                note=f"{rate['j2']:.1f} samples/s, speed-up {rate['j2'] / rate['j1']:.2f}x over -j 1"))
