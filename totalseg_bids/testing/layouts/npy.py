"""``.npy`` volumes: ``volumes/case<N>.npy`` + ``masks/case<N>_mask.npy`` (the sacrum mask),
on the axis-aligned 2 mm grid of :mod:`.arrays`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core.atomic import atomic_path
from .arrays import phantom_grid
from .common import subject

NAME = "npy"


def write(out, subjects: int = 2, seed: int = 0) -> Path:
    root = Path(out)
    for i in range(subjects):
        ct, labels, _ = subject(i, seed, "CT", phantom_grid())
        for path, arr in ((root / "volumes" / f"case{i + 1}.npy", ct),
                          (root / "masks" / f"case{i + 1}_mask.npy", (labels == 1).astype(np.uint8))):
            with atomic_path(path) as tmp:
                np.save(tmp, arr)
    return root
