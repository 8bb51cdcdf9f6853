"""The augmentation recipe: the clot workflow's six transforms, or an ``A.save`` file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.errors import InputError


def default_recipe() -> Any:
    """HorizontalFlip, VerticalFlip, RandomBrightnessContrast, RandomGamma, AdvancedBlur, CLAHE.

    The ``Compose`` has p=0.8: one sample in five is the unchanged source slice
    (the clot workflow's augmentation probability).
    """
    import albumentations as A

    return A.Compose([
        A.HorizontalFlip(p=0.5),
        A.VerticalFlip(p=0.5),
        A.RandomBrightnessContrast(p=0.5),
        A.RandomGamma(p=0.5),
        A.AdvancedBlur(p=0.3),
        A.CLAHE(p=0.3),
    ], p=0.8)


def load_recipe(path: Path | None) -> Any:
    """The default recipe, or a ``Compose`` serialised with ``A.save`` (json or yaml)."""
    if path is None:
        return default_recipe()
    import albumentations as A

    if not path.is_file():
        raise InputError("recipe file not found", path, "write one with albumentations.save(compose, path)")
    fmt = "yaml" if path.suffix in (".yaml", ".yml") else "json"
    try:
        return A.load(str(path), data_format=fmt)
    except Exception as exc:  # albumentations raises ValueError/KeyError/json errors
        raise InputError(f"not an albumentations recipe ({exc})", path,
                         "write it with albumentations.save(compose, path)") from exc


def _is_spatial(leaf: dict) -> bool:
    """A leaf transform moves pixels (image and mask together) rather than changing intensities."""
    import albumentations as A

    return isinstance(A.from_dict({"transform": leaf}), A.DualTransform)


def _keep(node: dict, spatial: bool) -> dict | None:
    """``node`` with only the spatial (or only the intensity) leaves; ``None`` when nothing is left."""
    if "transforms" in node:
        kept = [k for k in (_keep(t, spatial) for t in node["transforms"]) if k is not None]
        return {**node, "transforms": kept} if kept else None
    return node if _is_spatial(node) == spatial else None


def split_recipe(recipe: dict) -> tuple[float, dict | None, dict | None]:
    """(probability, spatial part, intensity part) of an ``A.to_dict`` recipe.

    Why: the spatial part runs once on all channels and the mask, so they stay
    aligned; the intensity part runs once per image channel with its own draw.
    The outer ``Compose`` probability decides once per sample whether it is
    augmented at all. A ``OneOf`` mixing both kinds is split into a spatial
    ``OneOf`` and an intensity ``OneOf``.

    >>> import albumentations as A
    >>> p, sp, it = split_recipe(A.to_dict(A.Compose([A.HorizontalFlip(), A.CLAHE()], p=0.8)))
    >>> names = lambda part: [t["__class_fullname__"] for t in part["transform"]["transforms"]]
    >>> p, names(sp), names(it)
    (0.8, ['HorizontalFlip'], ['CLAHE'])
    """
    root = recipe["transform"]
    if root.get("__class_fullname__") not in ("Compose", "albumentations.core.composition.Compose"):
        root = {"__class_fullname__": "Compose", "p": 1.0, "transforms": [root]}
    p = float(root.get("p", 1.0))
    parts = []
    for spatial in (True, False):
        kept = _keep({**root, "p": 1.0}, spatial)
        parts.append(None if kept is None else {**recipe, "transform": kept})
    return p, parts[0], parts[1]
