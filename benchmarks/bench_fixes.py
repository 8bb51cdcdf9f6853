"""Proposed fixes for hot paths where we lose, measured side by side with the current code.

Nothing here changes ``totalseg_bids``: :func:`patched_register` temporarily swaps
three functions inside ``totalseg_bids.register`` for the versions below, so the
harness can show the gain of the fix described in ``benchmarks/RESULTS.md``.
Once the fix is applied in the package, the "ours" and "ours + proposed fix"
rows read the same.

1. ``core.nifti.resample_label`` finds the label's bounding box with
   ``np.nonzero(label)`` (a full 3-D index array build: ~2 s on a 512x512x400
   volume). :func:`nonzero_bbox` gets it from two ``any`` projections
   (~50 ms), then crops as before.
2. ``core.nifti.load_label(binary=True / allowed=...)`` calls ``np.unique`` on
   the whole volume (a sort: ~3.3 s on 512x512x400). With the maximum known,
   a binary label needs no more check (``max <= 1``); otherwise
   ``np.unique`` over the bounding-box crop (plus 0) gives the same set.
3. ``register.transfer_label`` reads the whole MRI (``load_image``: gzip
   decode, float32 copy, NaN check) although ``--method header/sct`` and own
   labels need only its grid: use ``load_grid`` there, ``load_image`` only for
   rigid/affine.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterable

import numpy as np


def nonzero_bbox(a: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Inclusive (lo, hi) voxel indices of the non-zero voxels of a 3-D array, or None.

    Two passes of ``any`` (memory order first), never a full index array.
    """
    if a.ndim != 3:
        nz = np.nonzero(a)
        return (np.array([x.min() for x in nz]), np.array([x.max() for x in nz])) if nz[0].size else None
    flip = not a.flags.c_contiguous and a.flags.f_contiguous
    v = a.T if flip else a  # C-ordered view: axis 0 is the slowest
    first = np.flatnonzero(v.reshape(v.shape[0], -1).any(axis=1))
    if not first.size:
        return None
    sub = v[first[0]:first[-1] + 1]
    rest = sub.any(axis=0)
    second = np.flatnonzero(rest.any(axis=1))
    third = np.flatnonzero(rest.any(axis=0))
    lo = np.array([first[0], second[0], third[0]])
    hi = np.array([first[-1], second[-1], third[-1]])
    return (lo[::-1].copy(), hi[::-1].copy()) if flip else (lo, hi)


def resample_label_fixed(label: np.ndarray, label_affine: np.ndarray, grid, mode: str = "nearest",
                         values: Iterable[int] | None = None) -> np.ndarray:
    """``core.nifti.resample_label`` with the bounding box from :func:`nonzero_bbox`
    (identical output; only the ``np.nonzero`` lines change)."""
    from scipy import ndimage

    from totalseg_bids.core.nifti import _target_block

    if mode not in ("nearest", "label"):
        raise ValueError(f"unknown interpolation {mode!r}")
    label = np.asarray(label)
    out_dtype = np.uint8 if (label.max() if label.size else 0) <= 255 else np.uint16
    out = np.zeros(grid.shape, dtype=out_dtype)
    bb = nonzero_bbox(label) if label.size else None
    if bb is None:
        return out
    lo, hi = bb
    pad = 1
    lo_p = np.maximum(lo - pad, 0)
    hi_p = np.minimum(hi + pad, np.array(label.shape) - 1)
    crop = label[lo_p[0]:hi_p[0] + 1, lo_p[1]:hi_p[1] + 1, lo_p[2]:hi_p[2] + 1]
    block = _target_block(label.shape, lo_p, hi_p, label_affine, grid)
    if block is None:
        return out
    start, stop = block
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
        best = np.full(shape, 0.5, dtype=np.float32)
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


def present_values(data: np.ndarray, maxval: int) -> set[int]:
    """The set of values in an integer label, sorting only its bounding box."""
    if maxval == 0:
        return {0}
    bb = nonzero_bbox(data)
    lo, hi = bb
    crop = data[lo[0]:hi[0] + 1, lo[1]:hi[1] + 1, lo[2]:hi[2] + 1] if data.ndim == 3 else data
    return set(np.unique(crop).tolist()) | {0}


def load_label_fixed(path, allowed=None, binary: bool = False):
    """``core.nifti.load_label`` without the whole-volume ``np.unique``."""
    from totalseg_bids.core.errors import InputError
    from totalseg_bids.core.nifti import Volume, load_nifti, read_data

    img = load_nifti(path)
    data = read_data(img, path)
    if np.issubdtype(data.dtype, np.floating):
        if not np.isfinite(data).all():
            raise InputError("label contains NaN or infinite values", path, "fix the label file")
        rounded = np.rint(data)
        if not np.array_equal(rounded, data):
            raise InputError("label has non-integer values (a soft or interpolated mask?)", path,
                             "threshold it at 0.5 or re-create it with nearest-neighbour interpolation")
        data = rounded
    if data.size and not np.issubdtype(data.dtype, np.unsignedinteger) and data.min() < 0:
        raise InputError(f"label has negative values (min {data.min()})", path, "fix the label file")
    maxval = int(data.max()) if data.size else 0
    data = data.astype(np.uint8 if maxval <= 255 else np.uint16, copy=False)
    if binary:
        allowed = (1,)
    if allowed is not None:
        ok = set(int(a) for a in allowed) | {0}
        if not set(range(maxval + 1)) <= ok:  # the maximum alone cannot prove it: look
            unexpected = sorted(present_values(data, maxval) - ok)
            if unexpected:
                raise InputError(f"label has unexpected values {unexpected[:10]} "
                                 f"(expected {sorted(ok - {0})})", path,
                                 "pass the right label value or fix the label")
    return Volume(data, np.asarray(img.affine, float), Path(path), img.header)


def _grid_only_image(path, dtype=np.float32):
    """What ``transfer_label`` needs of the MRI for --method header: its grid."""
    from totalseg_bids.core.nifti import Volume, load_grid

    grid = load_grid(path)
    return Volume(np.broadcast_to(np.zeros((), dtype), grid.shape), grid.affine, Path(path))


@contextlib.contextmanager
def patched_register():
    """Temporarily apply fixes 1-3 inside ``totalseg_bids.register``."""
    import totalseg_bids.register as reg

    saved = {k: getattr(reg, k) for k in ("resample_label", "load_label", "load_image")}
    reg.resample_label = resample_label_fixed
    reg.load_label = load_label_fixed
    reg.load_image = _grid_only_image
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(reg, k, v)
