"""2D slice stacks (``case<N>/image/<k>.png`` + ``case<N>/mask/<k>.png``) and
``.npy`` volumes (``volumes/case<N>.npy`` + ``masks/case<N>_mask.npy``), as
exported by workflows that lost the world geometry (axis-aligned RAS, 2 mm)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core.atomic import atomic_path
from ...core.nifti import Grid
from ..phantoms import make_affine
from .common import subject

SPACING = (2.0, 2.0, 2.0)


def phantom_grid() -> Grid:
    shape = (90, 70, 24)
    return Grid(shape, make_affine(np.eye(3), SPACING, shape, [0.0, -5.0, -10.0]))


def write_png(out, subjects: int = 2, seed: int = 0) -> Path:
    from PIL import Image

    root = Path(out)
    for i in range(subjects):
        ct, labels, _ = subject(i, seed, "CT", phantom_grid())
        img8 = np.clip((ct.astype(float) + 200) / 900 * 255, 0, 255).astype(np.uint8)
        for k in range(ct.shape[2]):
            for kind, arr in (("image", img8[:, :, k]), ("mask", (labels[:, :, k] == 1).astype(np.uint8))):
                path = root / f"case{i + 1}" / kind / f"{k}.png"
                with atomic_path(path) as tmp:
                    Image.fromarray(np.ascontiguousarray(arr.T)).save(tmp, format="PNG")
    return root


def write_npy(out, subjects: int = 2, seed: int = 0) -> Path:
    root = Path(out)
    for i in range(subjects):
        ct, labels, _ = subject(i, seed, "CT", phantom_grid())
        for path, arr in ((root / "volumes" / f"case{i + 1}.npy", ct),
                          (root / "masks" / f"case{i + 1}_mask.npy", (labels == 1).astype(np.uint8))):
            with atomic_path(path) as tmp:
                np.save(tmp, arr)
    return root
