"""The recipe applied to one sample: its spatial part once on all channels and the mask, its
intensity part per channel with its own seeded draw, and what was applied (for the manifest)."""

from __future__ import annotations

import functools
import json
import random
from typing import Any

import numpy as np

from ..core.errors import InputError
from .recipe import split_recipe


def channel_seed(seed: int, channel: int) -> int:
    """The intensity draw of one channel: its own, fixed by the sample seed.

    >>> channel_seed(5, 0) == channel_seed(5, 0) != channel_seed(5, 1)
    True
    """
    return random.Random(f"{seed}:channel{channel}").randrange(2**31)


def transform(recipe_json: str, seed: int, image: np.ndarray, mask: np.ndarray | None,
              channels: int) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Spatial part once on all channels and the mask, intensity part per channel with its own draw."""
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


@functools.lru_cache(maxsize=4)
def _composes(recipe_json: str) -> tuple[float, Any, Any]:
    """(p, spatial Compose, intensity Compose) per recipe and worker process; each use re-seeds them."""
    import albumentations as A

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
