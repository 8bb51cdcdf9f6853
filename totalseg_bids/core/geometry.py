"""Voxel grids in world space: comparing them, cropping to a box, resampling onto another grid.

The geometry every stage shares, apart from file I/O (:mod:`.nifti`):

* A :class:`Grid` is a shape and a voxel-to-world affine; two grids are the
  same when shape, spacing, origin and direction agree (:func:`grid_mismatch`).
* Cropping keeps world positions exactly: cutting ``[i0:i1, j0:j1, k0:k1]``
  moves the origin to ``affine @ [i0, j0, k0]`` (:func:`crop`); spacing and
  direction are unchanged, and a box that leaves the array is padded.
* Resampling maps every target voxel centre through the two affines into the
  source grid (world coordinates), so shapes, orientations and axis orders may
  differ freely. Labels are resampled by nearest neighbour, or per label
  linearly then argmax (threshold 0.5 for one label); never linearly as integers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from .errors import UsageError

GRID_ATOL = 1e-3  # mm, and unitless for direction cosines
#: How labels are resampled: nearest neighbour, or each label linearly then the argmax.
LabelInterp = Literal["nearest", "label"]
LABEL_INTERPOLATIONS: tuple[str, ...] = get_args(LabelInterp)


# ---------------------------------------------------------------- grid objects
def shape3(values: Iterable[float]) -> tuple[int, int, int]:
    """The first three values as a 3D shape.

    >>> shape3((4.0, 5, 6, 1))
    (4, 5, 6)
    """
    a, b, c = (int(v) for v in list(values)[:3])
    return a, b, c


@dataclass(frozen=True)
class Grid:
    """A voxel grid in world space: a shape and a 4x4 voxel-to-world affine."""

    shape: tuple[int, int, int]
    affine: np.ndarray

    @classmethod
    def of(cls, img) -> Grid:
        return cls(shape3(img.shape), np.asarray(img.affine, dtype=float))

    @property
    def spacing(self) -> np.ndarray:
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))

    @property
    def direction(self) -> np.ndarray:
        return self.affine[:3, :3] / self.spacing

    @property
    def origin(self) -> np.ndarray:
        return self.affine[:3, 3]

    def corners(self) -> np.ndarray:
        """World coordinates (8x3) of the outer voxel-centre corners."""
        idx = np.array([[i, j, k] for i in (0, self.shape[0] - 1)
                        for j in (0, self.shape[1] - 1) for k in (0, self.shape[2] - 1)], float)
        return apply_affine(self.affine, idx)

    def world_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned world bounding box of the field of view (voxel edges)."""
        idx = np.array([[i, j, k] for i in (-0.5, self.shape[0] - 0.5)
                        for j in (-0.5, self.shape[1] - 0.5) for k in (-0.5, self.shape[2] - 0.5)])
        pts = apply_affine(self.affine, idx)
        return pts.min(axis=0), pts.max(axis=0)


def apply_affine(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 affine to an (N, 3) array of points.

    >>> apply_affine(np.diag([2., 2., 2., 1.]), np.array([[1., 2., 3.]]))
    array([[2., 4., 6.]])
    """
    points = np.asarray(points, dtype=float)
    return points @ affine[:3, :3].T + affine[:3, 3]


def grid_mismatch(a: Grid, b: Grid, atol: float = GRID_ATOL) -> str | None:
    """Why two grids differ (shape, spacing, origin, direction), or None.

    >>> g = Grid((2, 2, 2), np.eye(4))
    >>> grid_mismatch(g, g) is None
    True
    >>> grid_mismatch(g, Grid((2, 2, 3), np.eye(4)))
    'shape (2, 2, 2) != (2, 2, 3)'
    """
    if tuple(a.shape) != tuple(b.shape):
        return f"shape {tuple(a.shape)} != {tuple(b.shape)}"
    if not np.allclose(a.spacing, b.spacing, atol=atol):
        return f"spacing {np.round(a.spacing, 4).tolist()} != {np.round(b.spacing, 4).tolist()}"
    if not np.allclose(a.origin, b.origin, atol=atol):
        return f"origin differs by {np.abs(a.origin - b.origin).max():.4g} mm"
    if not np.allclose(a.direction, b.direction, atol=atol):
        return "direction (orientation) differs"
    return None


def same_grid(a: Grid, b: Grid, atol: float = GRID_ATOL) -> bool:
    """Shape, spacing, origin and direction equal within ``atol``."""
    return grid_mismatch(a, b, atol) is None


def grids_overlap(a: Grid, b: Grid) -> bool:
    """True when the two fields of view share some world volume (bounding boxes)."""
    amin, amax = a.world_bounds()
    bmin, bmax = b.world_bounds()
    return bool(np.all(amin < bmax) and np.all(bmin < amax))


def axcodes(affine: np.ndarray) -> str:
    """Orientation letters of an affine, e.g. ``'RAS'`` or ``'LPS'``.

    >>> axcodes(np.eye(4))
    'RAS'
    """
    import nibabel as nib

    return "".join(nib.aff2axcodes(affine))


# ------------------------------------------------------------ crop boxes
def roi_index_bounds(roi: np.ndarray, roi_affine: np.ndarray, image_affine: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Continuous index bounds (lo, hi) of the ROI's voxels in the image's index space.

    Every non-zero ROI voxel centre is mapped through world coordinates into the
    image grid, and the box is widened by half an ROI voxel (its extent projected
    on the image axes), so a coarse or rotated ROI grid is covered completely.
    For an ROI on the image's own grid this is ``[min - 0.5, max + 0.5]``.

    >>> m = np.zeros((5, 5, 5), np.uint8); m[1:3, 2, 4] = 1
    >>> lo, hi = roi_index_bounds(m, np.eye(4), np.eye(4))
    >>> lo.tolist(), hi.tolist()
    ([0.5, 1.5, 3.5], [2.5, 2.5, 4.5])
    """
    idx = np.argwhere(np.asarray(roi) > 0)
    if not idx.size:
        raise ValueError("empty ROI")
    to_image = np.linalg.inv(image_affine) @ roi_affine
    # only the voxels on the ROI bounding box faces can be extreme after an affine map
    # when grids are aligned; map them all for the general (oblique) case
    pts = apply_affine(to_image, idx.astype(float))
    half = 0.5 * np.abs(to_image[:3, :3]).sum(axis=1)
    return pts.min(axis=0) - half, pts.max(axis=0) + half


def crop_box(lo: np.ndarray, hi: np.ndarray, spacing: np.ndarray, margin_mm: float,
             shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Voxel box ``[start, stop)`` holding every voxel whose centre lies within
    ``margin_mm`` of the ROI bounds, clipped to the image.

    >>> s, e = crop_box(np.array([9.5, 9.5, 9.5]), np.array([19.5, 19.5, 19.5]), np.ones(3), 2.0, (100, 20, 100))
    >>> s.tolist(), e.tolist()
    ([8, 8, 8], [22, 20, 22])
    """
    margin_vox = float(margin_mm) / np.asarray(spacing, float)
    start = np.ceil(lo - margin_vox - 1e-6).astype(int)
    stop = np.floor(hi + margin_vox + 1e-6).astype(int) + 1
    start = np.maximum(start, 0)
    stop = np.minimum(stop, np.asarray(shape, int))
    return start, stop


def centred_box(lo: np.ndarray, hi: np.ndarray, out_shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """A box of exactly ``out_shape`` voxels centred on the ROI bounds (may leave the image).

    >>> s, e = centred_box(np.array([9.5, 0, 0]), np.array([19.5, 4, 4]), (4, 8, 9))
    >>> s.tolist(), e.tolist()
    ([13, -1, -2], [17, 7, 7])
    """
    size = np.asarray(out_shape, int)
    centre = (np.asarray(lo, float) + np.asarray(hi, float)) / 2.0
    start = np.floor(centre - (size - 1) / 2.0 + 0.5).astype(int)
    return start, start + size


def cut(data: np.ndarray, start: Sequence[int], stop: Sequence[int], cval: float = 0) -> np.ndarray:
    """``data[start:stop]`` per axis, padding with ``cval`` where the box leaves the array.

    >>> cut(np.arange(4).reshape(4, 1, 1), [-1, 0, 0], [3, 1, 1], cval=9).ravel().tolist()
    [9, 0, 1, 2]
    """
    lo, hi = np.asarray(start, int), np.asarray(stop, int)
    out = np.full(tuple(hi - lo), cval, dtype=data.dtype)
    src_lo = np.maximum(lo, 0)
    src_hi = np.minimum(hi, data.shape[:3])
    if np.any(src_hi <= src_lo):
        return out
    dst_lo = src_lo - lo
    dst_hi = dst_lo + (src_hi - src_lo)
    out[dst_lo[0]:dst_hi[0], dst_lo[1]:dst_hi[1], dst_lo[2]:dst_hi[2]] = \
        data[src_lo[0]:src_hi[0], src_lo[1]:src_hi[1], src_lo[2]:src_hi[2]]
    return out


def shifted_affine(affine: np.ndarray, start: Sequence[int]) -> np.ndarray:
    """The affine of a sub-grid starting at voxel ``start``: origin ``affine @ start``.

    >>> shifted_affine(np.diag([2., 2., 2., 1.]), [1, 2, 3])[:3, 3].tolist()
    [2.0, 4.0, 6.0]
    """
    out = np.array(affine, float, copy=True)
    out[:3, 3] = apply_affine(affine, np.asarray([start], float))[0]
    return out


def crop_to_box(data: np.ndarray, affine: np.ndarray, start: Sequence[int], stop: Sequence[int],
         cval: float = 0) -> tuple[np.ndarray, np.ndarray]:
    """The box ``[start, stop)`` of an array and the affine that keeps it where it was in the world
    (padded with ``cval`` where the box leaves the array).

    >>> a, aff = crop_to_box(np.arange(8).reshape(2, 2, 2), np.eye(4), [1, 0, 0], [2, 2, 2])
    >>> a.shape, aff[:3, 3].tolist()
    ((1, 2, 2), [1.0, 0.0, 0.0])
    """
    return cut(data, start, stop, cval), shifted_affine(affine, start)


# --------------------------------------------------------------- resampling
def _target_block(lo: np.ndarray, hi: np.ndarray, src_affine: np.ndarray,
                  grid: Grid) -> tuple[np.ndarray, np.ndarray] | None:
    """Index box of ``grid`` whose voxels can map into source box [lo, hi]."""
    corners = np.array([[x, y, z] for x in (lo[0] - 1, hi[0] + 1)
                        for y in (lo[1] - 1, hi[1] + 1) for z in (lo[2] - 1, hi[2] + 1)], float)
    world = apply_affine(src_affine, corners)
    tgt = apply_affine(np.linalg.inv(grid.affine), world)
    start = np.maximum(np.floor(tgt.min(axis=0)).astype(int) - 1, 0)
    stop = np.minimum(np.ceil(tgt.max(axis=0)).astype(int) + 2, np.array(grid.shape))
    if np.any(stop <= start):
        return None
    return start, stop


def nonzero_bbox(a: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Inclusive (lo, hi) indices of the non-zero voxels of a 3-D array, or None.

    Two ``any`` passes in memory order instead of ``np.nonzero``, which builds
    index arrays over the whole volume (seconds on a 512x512x400 CT label).

    >>> a = np.zeros((4, 5, 6), np.uint8); a[1:3, 2, 4:6] = 1
    >>> [b.tolist() for b in nonzero_bbox(a)], [b.tolist() for b in nonzero_bbox(np.asfortranarray(a))]
    ([[1, 2, 4], [2, 2, 5]], [[1, 2, 4], [2, 2, 5]])
    >>> nonzero_bbox(np.zeros((2, 2, 2))) is None
    True
    """
    if a.ndim != 3 or not a.size:
        nz = np.nonzero(a)
        return (np.array([x.min() for x in nz]), np.array([x.max() for x in nz])) if nz[0].size else None
    flip = not a.flags.c_contiguous and a.flags.f_contiguous
    v = a.T if flip else a  # a C-ordered view: axis 0 varies slowest
    first = np.flatnonzero(v.reshape(v.shape[0], -1).any(axis=1))
    if not first.size:
        return None
    rest = np.any(v[first[0]:first[-1] + 1], axis=0)
    second = np.flatnonzero(rest.any(axis=1))
    third = np.flatnonzero(rest.any(axis=0))
    lo = np.array([first[0], second[0], third[0]])
    hi = np.array([first[-1], second[-1], third[-1]])
    return (lo[::-1].copy(), hi[::-1].copy()) if flip else (lo, hi)


def resample_label(label: np.ndarray, label_affine: np.ndarray, grid: Grid, mode: LabelInterp = "nearest",
                   values: Iterable[int] | None = None, origin: Sequence[int] = (0, 0, 0)) -> np.ndarray:
    """Bring a label map onto ``grid`` through world coordinates.

    ``mode='nearest'`` picks the source voxel nearest to each target voxel
    centre; ``mode='label'`` interpolates each label's indicator linearly and
    takes the argmax against background (threshold 0.5 for one label), which is
    smoother when the target grid is much coarser. Only the bounding box of
    the non-zero labels is processed, which makes transfers of small
    structures from large CTs fast. ``label`` may be a box of the grid of
    ``label_affine`` starting at index ``origin`` (a :class:`Volume` read by
    :func:`.label_box.load_label_box`); the result is the same voxel for voxel.
    The result is in Fortran order, the order NIfTI stores, so writing it is a
    straight copy.
    """
    from scipy import ndimage

    if mode not in ("nearest", "label"):
        raise ValueError(f"unknown interpolation {mode!r}")
    label = np.asarray(label)
    out_dtype = np.uint8 if (label.max() if label.size else 0) <= 255 else np.uint16
    out = np.zeros(grid.shape, dtype=out_dtype, order="F")
    box = nonzero_bbox(label)
    if box is None:
        return out
    lo, hi = box
    shift_src = np.asarray(origin, dtype=int)
    # crop to the labels' box and pad it with one zero voxel on every side: a target
    # point that falls a rounding error outside the source array then still meets
    # the edge voxel (scipy treats such points as outside and would drop it)
    crop = np.pad(label[lo[0]:hi[0] + 1, lo[1]:hi[1] + 1, lo[2]:hi[2] + 1], 1)
    lo_p, hi_p = lo - 1 + shift_src, hi + 1 + shift_src  # indices in the grid of label_affine
    block = _target_block(lo_p, hi_p, label_affine, grid)
    if block is None:
        return out
    start, stop = block
    # target index (block-relative) -> world -> source index (crop-relative)
    shift = np.eye(4)
    shift[:3, 3] = start
    unshift = np.eye(4)
    unshift[:3, 3] = -lo_p
    m = unshift @ np.linalg.inv(label_affine) @ grid.affine @ shift
    shape = tuple(int(s) for s in (stop - start))
    if mode == "nearest":
        res = ndimage.affine_transform(crop, m[:3, :3], m[:3, 3], output_shape=shape, order=0,
                                       mode="constant", cval=0, prefilter=False)
    else:
        vals = sorted(int(v) for v in (values if values is not None else np.unique(crop)) if v != 0)
        best = np.full(shape, 0.5, dtype=np.float32)  # background wins below 0.5
        res = np.zeros(shape, dtype=out_dtype)
        for v in vals:
            prob = ndimage.affine_transform((crop == v).astype(np.float32), m[:3, :3], m[:3, 3],
                                            output_shape=shape, order=1, mode="constant", cval=0.0,
                                            prefilter=False)
            win = prob > best
            res[win] = v
            best[win] = prob[win]
    out[start[0]:stop[0], start[1]:stop[1], start[2]:stop[2]] = res
    return out


def resample_image(data: np.ndarray, affine: np.ndarray, grid: Grid, order: int = 1,
                   cval: float = 0.0, edge: bool = False) -> np.ndarray:
    """Bring an intensity image onto ``grid`` (order 1 linear, 3 cubic B-spline).

    Target voxels outside the source are ``cval``, or with ``edge`` the nearest edge
    voxel's value: a grid from :func:`target_grid` covers the source's voxel *edges*,
    so its outer voxel centres can lie up to half a voxel outside the source's outer
    centres, and they should not fade to ``cval``.

    >>> a = np.arange(6, dtype=np.float32).reshape(6, 1, 1)
    >>> resample_image(a, np.eye(4), target_grid(Grid(a.shape, np.eye(4)), [2, 1, 1]), edge=True).ravel().tolist()
    [0.5, 2.5, 4.5]
    """
    from scipy import ndimage

    m = np.linalg.inv(affine) @ grid.affine
    return ndimage.affine_transform(np.asarray(data, dtype=np.float32), m[:3, :3], m[:3, 3],
                                    output_shape=tuple(grid.shape), order=order,
                                    mode="nearest" if edge else "constant", cval=cval, prefilter=order > 1)


def target_grid(grid: Grid, spacing: Sequence[float]) -> Grid:
    """The grid of spacing ``spacing`` covering the same field of view (voxel edges)
    with the same direction; the outer corner of voxel 0 stays put.

    >>> g = target_grid(Grid((9, 9, 3), np.eye(4)), [3, 3, 3])
    >>> g.shape, g.affine[:3, 3].tolist()
    ((3, 3, 1), [1.0, 1.0, 1.0])
    """
    step = np.asarray(spacing, float)
    extent = np.asarray(grid.shape) * grid.spacing
    shape = shape3(max(1, round(e)) for e in extent / step)
    rot = grid.direction * step
    corner = apply_affine(grid.affine, np.array([[-0.5, -0.5, -0.5]]))[0]
    affine = np.eye(4)
    affine[:3, :3] = rot
    affine[:3, 3] = corner + rot @ np.full(3, 0.5)
    return Grid(shape, affine)


def resample_label_edge(label: np.ndarray, affine: np.ndarray, grid: Grid,
                        mode: LabelInterp = "nearest") -> np.ndarray:
    """Label resampling (nearest, or per-label linear then argmax against 0.5) of the whole
    array, edges repeated like :func:`resample_image` with ``edge``.

    >>> l = np.array([0, 0, 1, 1, 1, 1], np.uint8).reshape(6, 1, 1)
    >>> g = target_grid(Grid(l.shape, np.eye(4)), [2, 1, 1])
    >>> resample_label_edge(l, np.eye(4), g, "label").ravel().tolist()
    [0, 1, 1]
    """
    from scipy import ndimage

    if mode not in LABEL_INTERPOLATIONS:
        raise UsageError(f"unknown label interpolation {mode!r}", None,
                         f"use one of {', '.join(LABEL_INTERPOLATIONS)}")
    label = np.asarray(label)
    m = np.linalg.inv(affine) @ grid.affine
    shape = tuple(grid.shape)
    if mode == "nearest":
        return ndimage.affine_transform(label, m[:3, :3], m[:3, 3], output_shape=shape, order=0,
                                        mode="nearest", prefilter=False)
    best = np.full(shape, 0.5, np.float32)
    out = np.zeros(shape, label.dtype)
    for v in np.unique(label):
        if v == 0:
            continue
        prob = ndimage.affine_transform((label == v).astype(np.float32), m[:3, :3], m[:3, 3],
                                        output_shape=shape, order=1, mode="nearest", prefilter=False)
        win = prob > best
        out[win] = v
        best[win] = prob[win]
    return out


# ----------------------------------------------------------- mask measures
def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient of two masks (1.0 when both are empty).

    >>> dice(np.array([1, 1, 0]), np.array([1, 0, 0]))
    0.6666666666666666
    """
    a = np.asarray(a) > 0
    b = np.asarray(b) > 0
    denom = a.sum() + b.sum()
    return 1.0 if denom == 0 else float(2.0 * np.logical_and(a, b).sum() / denom)


def touches_edge(mask: np.ndarray) -> bool:
    """True when a non-zero voxel lies on the outer face of the field of view."""
    m = np.asarray(mask) > 0
    if not m.any():
        return False
    return bool(m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any()
                or m[:, :, 0].any() or m[:, :, -1].any())


def voxel_volume_ml(affine: np.ndarray) -> float:
    """Volume of one voxel in millilitres."""
    return float(abs(np.linalg.det(np.asarray(affine)[:3, :3]))) / 1000.0
