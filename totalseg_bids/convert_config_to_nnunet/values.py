"""A label's values and a file's plain header, read without building the whole volume.

Most labels are linked as they are, so their array is never needed: the checks
here cost the decompression alone, and the plain path reads headers without nibabel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.errors import InputError, TotalsegBidsError
from ..core.gzip_codec import codec_errors, iter_decompressed
from ..core.nifti import Grid, check_input_file
from ..core.nifti_header import Header, read_header


def plain_header(path: Path) -> Header | None:
    """The header of a ``.nii.gz`` that :func:`load_nifti` would accept as it is (present,
    gzip, plain NIfTI, as many bytes as the header promises, 3D), or None."""
    try:
        check_input_file(path)
    except TotalsegBidsError:
        return None
    if not path.name.endswith(".nii.gz"):
        return None
    hdr = read_header(path)
    if hdr is None or len(hdr.shape) < 3 or any(s != 1 for s in hdr.shape[3:]):
        return None
    expected = hdr.offset + int(np.prod(hdr.shape)) * hdr.dtype.itemsize
    with open(path, "rb") as fh:
        fh.seek(-4, 2)
        if int.from_bytes(fh.read(4), "little") != expected % 2**32:
            return None
    return hdr


def form_gap(hdr: Header) -> float:
    """:func:`~totalseg_bids.core.nifti.qform_sform_discrepancy` of a plain header."""
    if hdr.qform is None or hdr.sform is None:
        return 0.0
    shape = tuple(hdr.shape[:3])
    return float(np.linalg.norm(Grid(shape, hdr.qform).corners() - Grid(shape, hdr.sform).corners(), axis=1).max())


def streamable(img, path: Path) -> bool:
    """Whether a label's values can be checked slice by slice from its gzip
    stream: an unscaled native-integer array in a ``.nii.gz`` on disk."""
    from nibabel.arrayproxy import ArrayProxy

    proxy, shape = img.dataobj, img.shape
    if len(shape) < 3 or any(s != 1 for s in shape[3:]):  # label_array words the error
        return False
    if not (isinstance(proxy, ArrayProxy) and path.name.endswith(".gz")
            and str(getattr(proxy, "file_like", "")) == str(path)):
        return False
    dtype = np.dtype(proxy.dtype)
    return dtype.kind in "iu" and dtype.isnative and float(proxy.slope) == 1.0 and float(proxy.inter) == 0.0


def stream_label_values(img, path: Path) -> set[int]:
    """The values (0 included) of an integer ``.nii.gz`` label that
    :func:`streamable` accepts, decompressed in 1 MiB slices that are scanned
    and dropped: no array of the whole volume is built.

    Most labels are linked as they are, so their array is never needed: the
    check costs the decompression alone. Errors as
    :func:`~totalseg_bids.core.nifti.label_array` words them.
    """
    return stream_values(path, np.dtype(img.dataobj.dtype), int(img.dataobj.offset), int(np.prod(img.shape)))


def stream_values(path: Path, dtype: np.dtype, skip: int, count: int) -> set[int]:
    """:func:`stream_label_values` of ``count`` values of ``dtype`` after ``skip`` bytes."""
    lo, hi, found, carry = 0, 0, set(), b""
    try:
        for piece in iter_decompressed(path, skip, skip + count * dtype.itemsize):
            buf = carry + bytes(piece) if carry else piece
            n = len(buf) - len(buf) % dtype.itemsize
            carry = bytes(buf[n:])
            arr = np.frombuffer(buf[:n], dtype)
            if arr.size:
                lo, hi = min(lo, int(arr.min())), max(hi, int(arr.max()))
                if hi > 1:
                    found |= set(np.unique(arr).tolist())
    except codec_errors() + (ValueError,) as exc:
        raise InputError(f"truncated or corrupt image data ({type(exc).__name__})", path,
                         "re-copy the file or `datalad get` it again") from None
    if lo < 0:
        raise InputError(f"label has negative values (min {lo:g})", path, "fix the label file")
    return (found | {0}) if hi > 1 else {0, hi}

