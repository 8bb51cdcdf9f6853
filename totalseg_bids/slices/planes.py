"""The 2D pictures of a volume: reoriented to RAS+ (permute and flip only), sliced along one
world axis, shown the usual way up, and which slices are kept (pure)."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def to_ras(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reorient to the closest canonical RAS+ orientation (permute/flip only).

    Returns the array, its new affine and nibabel's orientation array of the
    source (``ornt[i] = (RAS axis of source axis i, flip)``) for mapping back.

    >>> d = np.arange(8).reshape(2, 2, 2)
    >>> r, aff, _ = to_ras(d, np.diag([-1., 1., 1., 1.]))
    >>> r[:, 0, 0].tolist(), float(aff[0, 0])
    ([4, 0], 1.0)
    """
    import nibabel as nib

    ornt = nib.orientations.io_orientation(affine)
    xform = nib.orientations.ornt_transform(ornt, nib.orientations.axcodes2ornt("RAS"))
    out = nib.orientations.apply_orientation(np.asarray(data), xform)
    new_affine = affine @ nib.orientations.inv_ornt_aff(xform, data.shape[:3])
    return out, new_affine, ornt


def source_index(ornt: np.ndarray, shape: Sequence[int], ras_axis: int, index: int) -> tuple[int, int]:
    """The source voxel axis and index of slice ``index`` along RAS axis ``ras_axis``.

    >>> ornt = np.array([[0, -1], [1, 1], [2, 1]])
    >>> source_index(ornt, (10, 4, 4), 0, 2)
    (0, 7)
    """
    for src_axis, (ras, flip) in enumerate(np.asarray(ornt)):
        if int(ras) == ras_axis:
            n = int(shape[src_axis])
            return src_axis, (n - 1 - index) if flip < 0 else index
    raise ValueError("axis not found")


def plane(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    """The 2D picture of slice ``index`` along ``axis`` of a RAS+ volume:
    rows top = superior (or anterior for axial), columns along +x/+y.

    >>> v = np.zeros((2, 3, 4)); v[1, 2, 3] = 1
    >>> plane(v, 2, 3).shape, int(np.argwhere(plane(v, 2, 3))[0][0])
    ((3, 2), 0)
    """
    sl = volume[(slice(None),) * axis + (index,)]  # a view: np.take would copy the volume
    return np.ascontiguousarray(np.flipud(sl.T))


def select_slices(has_label: np.ndarray, only_labelled: bool, empty_fraction: float,
                  rng: np.random.Generator) -> list[int]:
    """Indices to export: all, or the labelled ones plus a seeded share of the empty ones.

    >>> sel = select_slices(np.array([0, 1, 1, 0, 0, 0], bool), True, 0.5, np.random.default_rng(0))
    >>> [i for i in sel if i in (1, 2)], len(sel)
    ([1, 2], 4)
    """
    n = len(has_label)
    if not only_labelled:
        return list(range(n))
    labelled = np.flatnonzero(has_label)
    empty = np.flatnonzero(~np.asarray(has_label, bool))
    k = int(round(float(empty_fraction) * len(empty)))
    chosen = rng.choice(empty, size=min(k, len(empty)), replace=False) if k else np.array([], int)
    return sorted(int(i) for i in np.concatenate([labelled, chosen]))
