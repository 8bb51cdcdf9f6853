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


def with_params_recorded(compose: Any, seed: int) -> Any:
    """A copy of ``compose`` that reports applied parameters and draws from ``seed``."""
    import albumentations as A

    copy = A.from_dict(A.to_dict(compose))
    copy = A.Compose(copy.transforms, p=copy.p, save_applied_params=True, seed=seed)
    return copy
