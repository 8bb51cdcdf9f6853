"""The 2D pictures of a volume: reoriented to RAS+ (permute and flip only), sliced along one
world axis, shown the usual way up, and which slices are kept (pure)."""

from __future__ import annotations

from collections.abc import Sequence

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


def plane_shape(shape: Sequence[int], affine: np.ndarray, axis: int) -> tuple[int, int]:
    """(rows, columns) of the pictures :func:`plane` makes along RAS ``axis`` of a volume of ``shape``.

    >>> plane_shape((10, 20, 30), np.eye(4), 2), plane_shape((10, 20, 30), np.eye(4), 0)
    ((20, 10), (30, 20))
    """
    import nibabel as nib

    ornt = nib.orientations.io_orientation(affine)
    size = {int(ras): int(n) for (ras, _), n in zip(ornt, shape[:3])}
    low, high = (a for a in range(3) if a != axis)
    return size[high], size[low]


def centre_pad(picture: np.ndarray, shape: Sequence[int], value: float = 0) -> np.ndarray:
    """``picture`` (rows, columns[, channels]) in the middle of a ``shape`` canvas of ``value``
    (an odd remainder goes below and right).

    >>> centre_pad(np.ones((2, 3), np.uint8), (4, 5)).tolist()
    [[0, 0, 0, 0, 0], [0, 1, 1, 1, 0], [0, 1, 1, 1, 0], [0, 0, 0, 0, 0]]
    """
    rows, cols = picture.shape[:2]
    top, left = (int(shape[0]) - rows) // 2, (int(shape[1]) - cols) // 2
    out = np.full((int(shape[0]), int(shape[1]), *picture.shape[2:]), value, picture.dtype)
    out[top:top + rows, left:left + cols] = picture
    return out
