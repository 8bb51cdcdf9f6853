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
    """Everything one worker needs for one sample (picklable)."""

    image: Path
    mask: Path
    out_image: Path
    out_mask: Path
    recipe: dict | None
    seed: int
    augmented: bool


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


def transform(compose: Any, image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
    """Apply ``compose`` to image and mask; the mask keeps its exact class values."""
    result = compose(image=image, mask=mask)
    out_mask = np.asarray(result["mask"])
    if not set(np.unique(out_mask)) <= set(np.unique(mask)):
        raise InputError("a transform changed the mask's class values", None,
                         "use only spatial transforms with nearest-neighbour masks in the recipe")
    return np.asarray(result["image"]), out_mask.astype(mask.dtype), result.get("applied_transforms", [])


def run_job(job: Job) -> str:
    """Make one sample; returns the applied transforms as JSON for the manifest."""
    image, mask = read_array(job.image), read_array(job.mask)
    applied: list = []
    if job.augmented:
        compose = _compose(json.dumps(job.recipe, sort_keys=True))
        compose.set_random_seed(job.seed)
        image, mask, applied = transform(compose, image, mask)
    write_array(job.out_image, image)
    write_array(job.out_mask, mask)
    return json.dumps([[name, _plain(params)] for name, params in applied], sort_keys=True)


@functools.lru_cache(maxsize=4)
def _compose(recipe_json: str) -> Any:
    """One ``Compose`` per recipe and worker process; each sample re-seeds it."""
    import albumentations as A

    from .recipe import with_params_recorded

    return with_params_recorded(A.from_dict(json.loads(recipe_json)), 0)


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
