"""One case: its image grid from the header, its label's voxel count per class."""

from __future__ import annotations

import logging
from pathlib import Path

from ..core.bids import is_binary_label
from ..core.geometry import grid_mismatch, voxel_volume_ml
from ..core.nifti import load_grid, load_image, load_label
from .counts import CaseStats, count_classes

log = logging.getLogger(__name__)

#: One case to read: dataset, split folder name, subject, image, label (None: no label).
StatsItem = tuple[str, str, str, Path, Path | None]


def case_stats(item: StatsItem) -> CaseStats:
    """Read one case: the image grid from its header, the label's class counts."""
    dataset, split, subject, image, label = item
    grid = load_grid(image)
    load_image(image)  # NaN/inf intensities would end up in a training set unnoticed
    counts = None
    if label is not None:
        lab = load_label(label, binary=is_binary_label(label))  # a {0, 2} _seg is a mislabelled mask
        why = grid_mismatch(lab.grid, grid)
        if why:
            log.warning("%s: label not on its image's grid (%s); class statistics use the label grid",
                        label, why)
        counts = count_classes(lab.data)
        voxel_ml = voxel_volume_ml(lab.affine)
    else:
        voxel_ml = voxel_volume_ml(grid.affine)
    return CaseStats(dataset, split, subject, tuple(float(s) for s in grid.spacing),
                     tuple(int(s) for s in grid.shape), voxel_ml, counts)
