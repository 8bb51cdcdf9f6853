"""Post-processing of predicted label maps: the largest connected component.

Largest connected component with cc3d (26-connectivity), per label or on the
union of labels. **Ties** (two components of the same voxel count): the one
whose first voxel comes first in C-order raster scan of the array (lowest i,
then j, then k) wins, since cc3d numbers components in that order and
``np.argmax`` returns the first maximum.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

from ..core.errors import UsageError
from ..core.nifti import nonzero_bbox

#: How the largest component is kept: per label, on the union of labels, or not at all.
KeepLargest = Literal["per-label", "union", "off"]
KEEP_LARGEST: tuple[str, ...] = get_args(KeepLargest)


def keep_largest(seg: np.ndarray, mode: str = "per-label", connectivity: int = 26) -> tuple[np.ndarray, dict]:
    """Keep the largest connected component, per label or on the union.

    Returns the cleaned map and ``{label: voxels removed}``. Ties: the
    component found first in a C-order raster scan wins (see module doc).

    >>> seg = np.zeros((1, 1, 7), np.uint8); seg[0, 0, [0, 1, 3, 5, 6]] = [1, 1, 1, 2, 2]
    >>> out, removed = keep_largest(seg)
    >>> out[0, 0].tolist(), removed
    ([1, 1, 0, 0, 0, 2, 2], {1: 1})
    >>> keep_largest(seg, "union")[0][0, 0].tolist()  # union: two components of 2 tie, the first wins
    [1, 1, 0, 0, 0, 0, 0]
    >>> tie = np.zeros((1, 1, 5), np.uint8); tie[0, 0, [0, 2]] = 1
    >>> keep_largest(tie)[0][0, 0].tolist()  # two single voxels: the first one wins
    [1, 0, 0, 0, 0]
    """
    if mode not in KEEP_LARGEST:
        raise UsageError(f"unknown --keep-largest {mode!r}", None, f"use one of {', '.join(KEEP_LARGEST)}")
    if mode == "off":
        return seg, {}
    box = nonzero_bbox(seg) if seg.ndim == 3 else None
    if box is None:
        return seg, {}
    # label only the labelled box: a prediction covers a small part of the field of
    # view, and raster order inside the box keeps the tie rule
    window = tuple(slice(int(a), int(b) + 1) for a, b in zip(*box))
    kept, removed = _keep_largest_in(np.ascontiguousarray(seg[window]), mode, connectivity)
    out = np.zeros_like(seg)
    out[window] = kept
    return out, removed


def _keep_largest_in(seg: np.ndarray, mode: str, connectivity: int) -> tuple[np.ndarray, dict]:
    import cc3d

    source = seg if mode == "per-label" else (seg > 0).astype(np.uint8)
    comps, n = cc3d.connected_components(source, connectivity=connectivity, return_N=True)
    if n <= 1:
        return seg, {}
    flat = comps.ravel()
    sizes = np.bincount(flat, minlength=n + 1)
    comp_label = np.zeros(n + 1, dtype=np.int64)
    comp_label[flat] = source.ravel()  # every voxel of a component has its label
    keep = np.zeros(n + 1, dtype=bool)
    for value in np.unique(comp_label[1:]):
        ids = np.flatnonzero(comp_label == value)
        ids = ids[ids > 0]
        keep[ids[np.argmax(sizes[ids])]] = True  # first maximum = first in raster order
    mask = keep[comps]
    out = np.where(mask, seg, 0).astype(seg.dtype)
    removed_vals, removed_counts = np.unique(seg[(seg > 0) & ~mask], return_counts=True)
    return out, {int(v): int(c) for v, c in zip(removed_vals, removed_counts)}
