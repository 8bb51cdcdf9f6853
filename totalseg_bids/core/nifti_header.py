"""A minimal NIfTI-1/2 header reader for the plain case, without nibabel.

Importing nibabel costs a CLI about 0.2-0.8 s (it pulls in pydicom), more than
checking a whole cohort's headers. Stages that only need a header's shape,
stored type, scaling and affine read it here from the first bytes of the
file; anything this reader does not recognise as plain (foreign byte order,
float or exotic types, unset forms, codes or offsets nibabel would fix on
load, header extensions) gives None, and the caller takes nibabel's path, which words any error.
Affines are computed with the same numpy operations as nibabel, so they are
bit-identical (``tests/unit/core/test_nifti_header.py`` compares them).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_N1 = np.dtype([
    ("sizeof_hdr", "<i4"), ("data_type", "S10"), ("db_name", "S18"), ("extents", "<i4"),
    ("session_error", "<i2"), ("regular", "S1"), ("dim_info", "u1"), ("dim", "<i2", (8,)),
    ("intent_p1", "<f4"), ("intent_p2", "<f4"), ("intent_p3", "<f4"), ("intent_code", "<i2"),
    ("datatype", "<i2"), ("bitpix", "<i2"), ("slice_start", "<i2"), ("pixdim", "<f4", (8,)),
    ("vox_offset", "<f4"), ("scl_slope", "<f4"), ("scl_inter", "<f4"), ("slice_end", "<i2"),
    ("slice_code", "u1"), ("xyzt_units", "u1"), ("cal_max", "<f4"), ("cal_min", "<f4"),
    ("slice_duration", "<f4"), ("toffset", "<f4"), ("glmax", "<i4"), ("glmin", "<i4"),
    ("descrip", "S80"), ("aux_file", "S24"), ("qform_code", "<i2"), ("sform_code", "<i2"),
    ("quatern_b", "<f4"), ("quatern_c", "<f4"), ("quatern_d", "<f4"), ("qoffset_x", "<f4"),
    ("qoffset_y", "<f4"), ("qoffset_z", "<f4"), ("srow_x", "<f4", (4,)), ("srow_y", "<f4", (4,)),
    ("srow_z", "<f4", (4,)), ("intent_name", "S16"), ("magic", "S4")])
_N2 = np.dtype([
    ("sizeof_hdr", "<i4"), ("magic", "S4"), ("eol_check", "i1", (4,)), ("datatype", "<i2"),
    ("bitpix", "<i2"), ("dim", "<i8", (8,)), ("intent_p1", "<f8"), ("intent_p2", "<f8"),
    ("intent_p3", "<f8"), ("pixdim", "<f8", (8,)), ("vox_offset", "<i8"), ("scl_slope", "<f8"),
    ("scl_inter", "<f8"), ("cal_max", "<f8"), ("cal_min", "<f8"), ("slice_duration", "<f8"),
    ("toffset", "<f8"), ("slice_start", "<i8"), ("slice_end", "<i8"), ("descrip", "S80"),
    ("aux_file", "S24"), ("qform_code", "<i4"), ("sform_code", "<i4"), ("quatern_b", "<f8"),
    ("quatern_c", "<f8"), ("quatern_d", "<f8"), ("qoffset_x", "<f8"), ("qoffset_y", "<f8"),
    ("qoffset_z", "<f8"), ("srow_x", "<f8", (4,)), ("srow_y", "<f8", (4,)), ("srow_z", "<f8", (4,)),
    ("slice_code", "<i4"), ("xyzt_units", "<i4"), ("intent_code", "<i4"), ("intent_name", "S16"),
    ("dim_info", "u1"), ("unused_str", "S15")])
#: (header dtype, magic, quaternion threshold as nibabel's Nifti1Header / Nifti2Header)
_KINDS: dict[int, tuple[np.dtype, bytes, float]] = {348: (_N1, b"n+1", float(np.finfo(np.float32).eps * 3)),
                                                     540: (_N2, b"n+2", float(np.finfo(np.float64).eps * 3))}
#: integer NIfTI datatype codes (the plain case: no NaN to check)
_INT_TYPES = {2: "u1", 4: "<i2", 8: "<i4", 256: "i1", 512: "<u2", 768: "<u4", 1024: "<i8", 1280: "<u8"}
_FLOAT_EPS = np.finfo(float).eps


@dataclass(frozen=True)
class Header:
    """What the converter needs of a plain NIfTI header."""

    shape: tuple[int, ...]
    dtype: np.dtype
    offset: int
    affine: np.ndarray
    qform: np.ndarray | None
    sform: np.ndarray | None


def read_gzip_head(path: str | Path, nbytes: int = 544) -> bytes | None:
    """The first ``nbytes`` decompressed bytes of a gzip file (fewer when it is
    shorter), or None when it is not a readable gzip stream."""
    dec = zlib.decompressobj(31)
    out = b""
    try:
        with open(path, "rb") as fh:
            while len(out) < nbytes:
                data = dec.unconsumed_tail or fh.read(4096)
                if not data:
                    break
                out += dec.decompress(data, nbytes - len(out))
                if dec.eof:
                    break
    except (OSError, zlib.error):
        return None
    return out


def parse_header(raw: bytes) -> Header | None:
    """The plain header in ``raw`` (a file's first bytes), or None where nibabel must decide.

    >>> parse_header(b"not a header") is None
    True
    """
    if len(raw) < 348:
        return None
    size = int.from_bytes(raw[:4], "little")
    if size not in _KINDS or len(raw) < size + 4 or raw[size] != 0:  # extensions: nibabel parses them
        return None
    dt, magic, threshold = _KINDS[size]
    hdr = np.frombuffer(raw[:size], dt)[0]
    if hdr["magic"] != magic or int(hdr["datatype"]) not in _INT_TYPES:
        return None
    if size == 540 and list(hdr["eol_check"]) != [13, 10, 26, 10]:
        return None
    dtype = np.dtype(_INT_TYPES[int(hdr["datatype"])])
    ndim = int(hdr["dim"][0])
    shape = tuple(int(d) for d in hdr["dim"][1:ndim + 1])
    offset = float(hdr["vox_offset"])
    if (int(hdr["bitpix"]) != dtype.itemsize * 8 or not 3 <= ndim <= 7 or min(shape) < 1
            or offset != int(offset) or offset < size + 4 or not _plain_scaling(hdr)):
        return None
    qcode, scode = int(hdr["qform_code"]), int(hdr["sform_code"])
    if not (0 <= qcode <= 4 and 0 <= scode <= 4) or (qcode == 0 and scode == 0):
        return None
    pix = hdr["pixdim"]
    if np.any(pix[1:ndim + 1] <= 0) or pix[0] not in (-1, 1):
        return None
    qform = _qform(hdr, threshold) if qcode else None
    sform = _sform(hdr) if scode else None
    if (qform is not None and not np.isfinite(qform).all()) or (sform is not None and not np.isfinite(sform).all()):
        return None
    affine = sform if scode else qform
    assert affine is not None  # one of the codes is set (checked above)
    return Header(shape, dtype, int(offset), affine, qform, sform)


def read_header(path: str | Path) -> Header | None:
    """The plain header of a ``.nii.gz`` file, or None (see :func:`parse_header`)."""
    raw = read_gzip_head(path)
    return None if raw is None else parse_header(raw)


def _plain_scaling(hdr) -> bool:
    """Unset scaling (slope 0 or NaN) or the identity (1, 0): what nibabel reads as unscaled."""
    slope, inter = float(hdr["scl_slope"]), float(hdr["scl_inter"])
    return slope == 0 or np.isnan(slope) or (slope == 1 and inter == 0)


def _qform(hdr, threshold: float) -> np.ndarray | None:
    """nibabel's ``get_qform``, step for step (extended-precision quaternion)."""
    xyz = np.asarray([hdr["quatern_b"], hdr["quatern_c"], hdr["quatern_d"]], dtype=np.longdouble)
    w2 = 1.0 - xyz @ xyz
    if np.abs(w2) < np.abs(threshold):
        w = 0
    elif w2 < 0:
        return None
    else:
        w = np.sqrt(w2)
    q = np.r_[w, xyz]
    vox = hdr["pixdim"][1:4].copy()
    vox[-1] *= hdr["pixdim"][0]
    out = np.eye(4)
    out[0:3, 0:3] = np.dot(_quat2mat(q), np.diag(vox))
    out[0:3, 3] = [hdr["qoffset_x"], hdr["qoffset_y"], hdr["qoffset_z"]]
    return out


def _quat2mat(q) -> np.ndarray:
    w, x, y, z = q
    nq = w * w + x * x + y * y + z * z
    if nq < _FLOAT_EPS:
        return np.eye(3)
    s = 2.0 / nq
    X, Y, Z = x * s, y * s, z * s
    wX, wY, wZ = w * X, w * Y, w * Z
    xX, xY, xZ = x * X, x * Y, x * Z
    yY, yZ, zZ = y * Y, y * Z, z * Z
    return np.array([[1.0 - (yY + zZ), xY - wZ, xZ + wY],
                     [xY + wZ, 1.0 - (xX + zZ), yZ - wX],
                     [xZ - wY, yZ + wX, 1.0 - (xX + yY)]])


def _sform(hdr) -> np.ndarray:
    out = np.eye(4)
    out[0, :] = hdr["srow_x"][:]
    out[1, :] = hdr["srow_y"][:]
    out[2, :] = hdr["srow_z"][:]
    return out
