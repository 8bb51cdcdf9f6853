"""The minimal header reader agrees with nibabel bit for bit, or defers to it."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest

from totalseg_bids.core.nifti_header import parse_header, read_header

DTYPES = (np.uint8, np.int16, np.int32, np.uint16, np.int8, np.uint32, np.int64)


def _random_affine(rng) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    aff = np.eye(4)
    aff[:3, :3] = q * rng.uniform(0.3, 3.0, size=3)
    aff[:3, 3] = rng.uniform(-200, 200, size=3)
    return aff


def _headers(rng, n: int):
    """Images with every combination of qform/sform codes, flips, NIfTI-1/2 and trailing dimensions."""
    for i in range(n):
        klass = (nib.Nifti1Image, nib.Nifti2Image)[i % 2]
        shape = (3, 4, 5) + ((1,) if i % 5 == 0 else ())
        dtype = DTYPES[i % len(DTYPES)]
        img = klass(np.zeros(shape, dtype), _random_affine(rng), dtype=dtype)
        qcode, scode = [(1, 1), (0, 1), (1, 0), (2, 4), (1, 2)][i % 5]
        img.set_qform(_random_affine(rng) if i % 3 == 0 else img.affine, code=qcode)
        img.set_sform(_random_affine(rng) if i % 7 == 0 else img.affine, code=scode)
        yield img


def test_agrees_with_nibabel_on_many_headers(tmp_path):
    rng = np.random.default_rng(0)
    for k, img in enumerate(_headers(rng, 120)):
        path = tmp_path / f"i{k}.nii.gz"
        img.to_filename(path)
        ref = nib.load(path)
        hdr = read_header(path)
        assert hdr is not None, k
        assert hdr.shape == ref.shape
        assert hdr.dtype == ref.get_data_dtype()
        assert hdr.offset == int(ref.dataobj.offset)
        assert np.array_equal(hdr.affine, ref.affine), k
        h = ref.header
        assert (hdr.qform is None) == (int(h["qform_code"]) == 0)
        assert (hdr.sform is None) == (int(h["sform_code"]) == 0)
        if hdr.qform is not None:
            assert np.array_equal(hdr.qform, ref.get_qform())
        if hdr.sform is not None:
            assert np.array_equal(hdr.sform, ref.get_sform())


@pytest.mark.parametrize("change", ["float", "scaled", "no_forms", "big_endian", "qfac0", "2d", "extension"])
def test_defers_to_nibabel_outside_the_plain_case(tmp_path, change):
    data = np.zeros((3, 4, 5) if change != "2d" else (3, 4), np.float32 if change == "float" else np.int16)
    img = nib.Nifti1Image(data, np.eye(4))
    img.set_qform(np.eye(4), 1)
    if change == "scaled":
        img.header.set_slope_inter(2.0, 1.0)
    if change == "no_forms":
        img.set_qform(None, 0)
        img.set_sform(None, 0)
    if change == "big_endian":
        img = nib.Nifti1Image(data.astype(">i2"), np.eye(4), header=img.header.as_byteswapped(">"))
    raw = img.header.binaryblock + (b"\1" if change == "extension" else b"\0") + b"\0" * 3
    if change == "qfac0":
        hdr = img.header.copy()
        hdr["pixdim"][0] = 0
        raw = hdr.binaryblock + b"\0" * 4
    assert parse_header(raw) is None


def test_truncated_or_not_gzip(tmp_path):
    img = nib.Nifti1Image(np.zeros((3, 4, 5), np.uint8), np.eye(4))
    full = gzip.compress(img.header.binaryblock + b"\0" * 4 + bytes(60))
    (tmp_path / "short.nii.gz").write_bytes(full[:30])
    (tmp_path / "plain.nii.gz").write_bytes(img.header.binaryblock)
    assert read_header(tmp_path / "short.nii.gz") is None
    assert read_header(tmp_path / "plain.nii.gz") is None
