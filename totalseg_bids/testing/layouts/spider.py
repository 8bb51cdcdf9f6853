"""SPIDER ``images/<id>_{t1,t2,t2_SPACE}.mha`` + ``masks/`` + ``overview.csv``.

Images are oblique (direction cosines off the axes); the masks use SPIDER's
numbering for the one vertebra the phantom has (L5 = 1, the lowest).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from ...core.atomic import atomic_write_text
from .common import oblique_grid, subject, write_mha

NAME = "spider"


def write(out, subjects: int = 2, seed: int = 0) -> Path:
    root = Path(out)
    rows = []
    for i in range(subjects):
        sid = str(i + 1)
        grid = oblique_grid(i)
        for key, contrast in (("t1", "T1w"), ("t2", "T2w"), ("t2_SPACE", "T2w")):
            img, labels, _ = subject(i, seed, contrast, grid)
            mask = np.where(labels == 2, 1, 0).astype(np.uint8)  # L5 = vertebra 1
            write_mha(img, grid.affine, root / "images" / f"{sid}_{key}.mha")
            write_mha(mask, grid.affine, root / "masks" / f"{sid}_{key}.mha")
            rows.append({"new_file_name": f"{sid}_{key}", "sex": "MF"[i % 2], "num_vertebrae": 1,
                         "Manufacturer": "phantom"})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(root / "overview.csv", buf.getvalue())
    return root
