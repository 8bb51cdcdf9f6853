"""2D slice stacks: ``case<N>/image/<k>.png`` + ``case<N>/mask/<k>.png`` (8-bit, the sacrum mask),
on the axis-aligned 2 mm grid of :mod:`.arrays`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core.atomic import atomic_path
from .arrays import phantom_grid
from .common import subject

NAME = "png-stack"


def write(out, subjects: int = 2, seed: int = 0) -> Path:
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
