"""Read only the labelled box of a label file.

A TotalSegmentator label of one structure is a 512x512x400 (or larger) CT grid
that is zero almost everywhere: the sacrum fills a few per cent of its slices.
Transferring it by the header needs only the box around its non-zero voxels.
:func:`load_label_box` decompresses the file slice after slice (as every read
must) but keeps only the pieces that hold a non-zero byte, so the whole grid is
never allocated: the read costs the compressed file plus the labelled slab,
and none of the full-volume passes (maximum, bounding box, value checks) that
a whole-array read needs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .geometry import nonzero_bbox
from .gzip_codec import CHUNK, iter_decompressed
from .nifti import Volume, check_3d_shape, check_label_values, load_nifti, read_data, readable_data


def load_label_box(path: str | Path, allowed=None, binary: bool = False) -> Volume:
    """The box of ``path`` holding every non-zero voxel, as a :class:`Volume`
    whose ``origin`` is the box's first index in the file and whose ``grid`` is the
    file's; the same checks and messages as :func:`.nifti.load_label`.

    An all-zero label gives a 1x1x1 zero box at the origin.
    """
    img = load_nifti(path)
    shape = check_3d_shape(img.shape, path)
    with readable_data(path):
        found = _stream_box(img, path, shape)
    if found is None:  # scaled, float, foreign byte order or uncompressed: nibabel's reader
        found = crop_to_box(read_data(img, path))
    data, origin = found
    data = check_label_values(data, path, allowed, binary)
    return Volume(data, np.asarray(img.affine, float), Path(path), img.header, origin, shape)


def crop_to_box(data: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int]]:
    """(the box of ``data`` around its non-zero voxels, the box's first index).

    >>> a = np.zeros((4, 5, 6), np.uint8); a[1:3, 2, 4] = 7
    >>> box, origin = crop_to_box(a); box.shape, origin
    ((2, 1, 1), (1, 2, 4))
    >>> crop_to_box(np.zeros((2, 2, 2), np.uint8))[0].shape
    (1, 1, 1)
    """
    box = nonzero_bbox(data)
    if box is None:
        return np.zeros((1, 1, 1), data.dtype), (0, 0, 0)
    lo, hi = box
    crop = data[lo[0]:hi[0] + 1, lo[1]:hi[1] + 1, lo[2]:hi[2] + 1]
    return np.array(crop, order="F"), (int(lo[0]), int(lo[1]), int(lo[2]))


def _stream_box(img, path: str | Path, shape: tuple[int, int, int],
                chunk: int | None = None) -> tuple[np.ndarray, tuple] | None:
    """The labelled box of an unscaled integer ``.nii.gz`` read ``chunk`` bytes at a time, or None."""
    from nibabel.arrayproxy import ArrayProxy

    proxy = img.dataobj
    dtype = np.dtype(proxy.dtype) if isinstance(proxy, ArrayProxy) else None
    if (dtype is None or dtype.kind not in "iu" or not dtype.isnative or not str(path).endswith(".gz")
            or str(getattr(proxy, "file_like", "")) != str(path) or float(proxy.slope) != 1.0
            or float(proxy.inter) != 0.0 or proxy.order != "F"):
        return None
    slice_bytes = shape[0] * shape[1] * dtype.itemsize
    skip = int(proxy.offset)
    kept, pos = [], 0  # (start byte in the data, piece) of the pieces with a non-zero byte
    for piece in iter_decompressed(path, skip, skip + slice_bytes * shape[2], chunk or CHUNK):
        if np.frombuffer(piece, np.uint8).max(initial=0):
            kept.append((pos, piece))
        pos += len(piece)
    if not kept:
        return np.zeros((1, 1, 1), dtype), (0, 0, 0)
    first = kept[0][0] // slice_bytes
    last = (kept[-1][0] + len(kept[-1][1]) - 1) // slice_bytes
    slab = np.zeros(slice_bytes * (last - first + 1), np.uint8)
    for start, piece in kept:  # the pieces left out between two kept ones are zeros
        offset = start - first * slice_bytes
        slab[offset:offset + len(piece)] = np.frombuffer(piece, np.uint8)
    data = slab.view(dtype).reshape((shape[0], shape[1], last - first + 1), order="F")
    box, origin = crop_to_box(data)
    return box, (origin[0], origin[1], origin[2] + first)
