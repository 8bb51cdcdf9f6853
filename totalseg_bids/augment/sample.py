"""Write one output sample: read the source slice, transform, save image and mask atomically."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.atomic import atomic_path
from ..core.errors import InputError


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


def channel_seed(seed: int, channel: int) -> int:
    """The intensity draw of one channel: its own, fixed by the sample seed.

    >>> channel_seed(5, 0) == channel_seed(5, 0) != channel_seed(5, 1)
    True
    """
    import random

    return random.Random(f"{seed}:channel{channel}").randrange(2**31)


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


def transform(recipe_json: str, seed: int, image: np.ndarray, mask: np.ndarray | None,
              channels: int) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Spatial part once on all channels and the mask, intensity part per channel with its own draw."""
    import random

    p, spatial, intensity = _composes(recipe_json)
    applied: dict = {"spatial": [], "intensity": [[] for _ in range(channels)]}
    if random.Random(seed).random() >= p:
        return image, mask, applied
    if spatial is not None:
        spatial.set_random_seed(seed)
        result = spatial(image=image) if mask is None else spatial(image=image, mask=mask)
        image, applied["spatial"] = np.asarray(result["image"]), _applied(result)
        if mask is not None:
            out_mask = np.asarray(result["mask"])
            if not set(np.unique(out_mask)) <= set(np.unique(mask)):
                raise InputError("a transform changed the mask's class values", None,
                                 "use only spatial transforms with nearest-neighbour masks in the recipe")
            mask = out_mask.astype(mask.dtype)
    if intensity is not None:
        image = image.copy()
        for c in range(channels):
            intensity.set_random_seed(channel_seed(seed, c))
            plane = image if image.ndim == 2 else np.ascontiguousarray(image[..., c])
            result = intensity(image=plane)
            out = np.asarray(result["image"]).reshape(plane.shape).astype(plane.dtype)
            if image.ndim == 2:
                image = out
            else:
                image[..., c] = out
            applied["intensity"][c] = _applied(result)
    return image, mask, applied


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


@functools.lru_cache(maxsize=4)
def _composes(recipe_json: str) -> tuple[float, Any, Any]:
    """(p, spatial Compose, intensity Compose) per recipe and worker process; each use re-seeds them."""
    import albumentations as A

    from .recipe import split_recipe

    p, spatial, intensity = split_recipe(json.loads(recipe_json))

    def build(part: dict | None) -> Any:
        if part is None:
            return None
        compose = A.from_dict(part)
        return A.Compose(compose.transforms, p=1.0, save_applied_params=True, seed=0)

    return p, build(spatial), build(intensity)


def _applied(result: dict) -> list:
    return [[name, _plain(params)] for name, params in result.get("applied_transforms", [])]


def _plain(value: Any) -> Any:
    """JSON-safe copy of albumentations' parameter dicts (numpy scalars, tuples)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
