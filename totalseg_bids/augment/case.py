"""One output sample: read the source slice, transform it, save image and mask atomically."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.atomic import atomic_path
from ..core.errors import InputError
from .transforms import transform


@dataclass(frozen=True)
class Job:
    """Everything one worker needs for one sample (picklable).

    ``images`` is one stacked file or one file per channel; ``channels`` is how
    many image channels are real (a 2-channel RGB PNG has an empty third).
    """

    images: tuple[Path, ...]
    mask: Path | None
    out_images: tuple[Path, ...]
    out_mask: Path | None
    recipe: dict | None
    seed: int
    augmented: bool
    channels: int = 1


def read_array(path: Path) -> np.ndarray:
    """A slice file (png/tif via Pillow, npy via numpy) as an array."""
    if not path.is_file():
        raise InputError("slice file not found", path, "rerun totalseg_bids.slices")
    if path.suffix == ".npy":
        return np.load(path)
    from PIL import Image

    return np.asarray(Image.open(path))


def write_array(path: Path, array: np.ndarray) -> None:
    """Save like the source format; atomic so a crash leaves no half file."""
    with atomic_path(path) as tmp:
        if path.suffix == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, array)
        else:
            from PIL import Image

            Image.fromarray(array).save(tmp, format="PNG" if path.suffix == ".png" else "TIFF")


def read_channels(paths: tuple[Path, ...]) -> np.ndarray:
    """One file as it is, or one file per channel stacked to ``(H, W, C)``."""
    arrays = [read_array(p) for p in paths]
    if len(arrays) == 1:
        return arrays[0]
    if any(a.ndim != 2 or a.shape != arrays[0].shape for a in arrays):
        raise InputError("channel files differ in shape or are not single-channel", paths[0],
                         "give one grayscale file per channel, all of one size")
    return np.stack(arrays, axis=-1)


def write_channels(paths: tuple[Path, ...], image: np.ndarray) -> None:
    """The inverse of :func:`read_channels`."""
    if len(paths) == 1:
        write_array(paths[0], image)
        return
    for c, path in enumerate(paths):
        write_array(path, np.ascontiguousarray(image[..., c]))


def run_job(job: Job) -> str:
    """Make one sample; returns the applied transforms as JSON for the manifest."""
    image = read_channels(job.images)
    mask = read_array(job.mask) if job.mask is not None else None
    applied: dict = {}
    if job.augmented:
        image, mask, applied = transform(json.dumps(job.recipe, sort_keys=True), job.seed, image, mask, job.channels)
    write_channels(job.out_images, image)
    if job.out_mask is not None and mask is not None:
        write_array(job.out_mask, mask)
    return json.dumps(applied, sort_keys=True)
