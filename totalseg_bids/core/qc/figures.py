"""Figures of a label map (volume, components, edge contact) that QC flags are drawn from."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..geometry import voxel_volume_ml
from .focus import foreground_box


def label_figures(data: np.ndarray, affine: np.ndarray, max_classes: int = 64) -> dict[str, Any]:
    """Volume (ml), connected components (26-connectivity), emptiness, FOV-edge
    contact and per-class volumes of a label map on its own grid.

    Components are counted per class (cc3d labels each value separately), so
    a clean multi-class map has one component per class.

    >>> f = label_figures(np.pad(np.ones((2, 2, 2), np.uint8), 1), np.eye(4))
    >>> f["voxels"], f["volume_ml"], f["components"], f["empty"], f["touches_edge"]
    (8, 0.008, 1, False, False)
    """
    import cc3d

    data = np.asarray(data)
    vox_ml = voxel_volume_ml(affine)
    box = foreground_box(data)
    crop = np.ascontiguousarray(data[box]) if box is not None else data[:0]
    voxels = int(np.count_nonzero(crop))
    edge = box is not None and any(b.start == 0 or b.stop == n for b, n in zip(box, data.shape))
    out: dict[str, Any] = {"voxels": voxels, "volume_ml": round(voxels * vox_ml, 4), "components": 0,
                           "empty": voxels == 0, "touches_edge": bool(edge), "classes": {}}
    if voxels:
        _, n = cc3d.connected_components(crop, connectivity=26, return_N=True)
        out["components"] = int(n)
        values, counts = np.unique(crop[crop > 0], return_counts=True)
        out["classes"] = {str(int(v)): round(int(c) * vox_ml, 4)
                          for v, c in list(zip(values, counts))[:max_classes]}
    return out
