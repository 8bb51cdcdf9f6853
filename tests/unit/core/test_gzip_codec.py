"""The fast gzip codec writes standard files and reads exactly what nibabel reads."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest

from totalseg_bids.core import gzip_codec, nifti
from totalseg_bids.core.errors import InputError

AFFINE = np.array([[-0.8, 0, 0, 90], [0, 0.8, 0.1, -120], [0, 0, 2.5, -40], [0, 0, 0, 1.0]])


@pytest.fixture(params=["isal", "zlib"])
def codec(request, monkeypatch):
    if request.param == "isal":
        pytest.importorskip("isal")
        monkeypatch.delenv("TOTALSEG_BIDS_GZIP", raising=False)
    else:
        monkeypatch.setenv("TOTALSEG_BIDS_GZIP", "zlib")
    assert gzip_codec.backend() == request.param
    return request.param


def _label(shape=(70, 64, 30)):
    rng = np.random.default_rng(0)
    a = np.zeros(shape, np.uint8)
    a[10:50, 8:40, 5:25] = 1
    a[20:30, 20:30, 10:12] = 7
    a[rng.random(shape) > 0.995] = 3
    return a


def test_plain_zlib_reads_what_we_write_byte_identical(tmp_path, codec):
    """nibabel's own gzip (zlib) opens our files; the decompressed bytes equal
    nibabel's own writing of the same image, header included."""
    rng = np.random.default_rng(1)
    arrays = {"mask": _label(), "u16": _label().astype(np.uint16) * 300,
              "i16": rng.normal(300, 80, (64, 60, 20)).astype(np.int16),
              "f32": rng.random((33, 31, 17)).astype(np.float32)}
    for name, arr in arrays.items():
        ours = tmp_path / f"{name}.nii.gz"
        if name == "mask":
            nifti.save_mask(arr, AFFINE, ours)
        else:
            nifti.save_image(arr, AFFINE, ours)
        img = nib.load(str(ours))  # nibabel + the standard library's gzip
        assert img.dataobj.dtype == arr.dtype
        np.testing.assert_array_equal(np.asanyarray(img.dataobj), arr)
        ref = nifti.nifti_image(arr, AFFINE)
        if name == "mask":
            ref.header.set_data_dtype(arr.dtype)
            ref.header.set_slope_inter(1, 0)
        theirs = tmp_path / f"{name}_nib.nii.gz"
        ref.to_filename(str(theirs))
        assert gzip.decompress(ours.read_bytes()) == gzip.decompress(theirs.read_bytes())
        assert img.header.binaryblock == nib.load(str(theirs)).header.binaryblock


def test_our_reader_equals_nibabel(tmp_path, codec):
    arr = _label()
    path = tmp_path / "lab.nii.gz"
    nib.Nifti1Image(arr, AFFINE).to_filename(str(path))  # written by nibabel/zlib
    vol = nifti.load_label(path)
    np.testing.assert_array_equal(vol.data, np.asanyarray(nib.load(str(path)).dataobj))
    assert vol.data.dtype == np.uint8 and vol.data.flags.writeable


def test_scaled_image_keeps_nibabel_scaling(tmp_path, codec):
    img = nib.Nifti1Image(np.arange(24, dtype=np.int16).reshape(2, 3, 4), AFFINE)
    img.header.set_slope_inter(0.5, 10)
    path = tmp_path / "scaled.nii.gz"
    img.to_filename(str(path))
    np.testing.assert_allclose(nifti.load_image(path).data, nib.load(str(path)).get_fdata())


def test_multi_member_gzip(tmp_path, codec):
    arr = _label((20, 20, 10))
    raw = nib.Nifti1Image(arr, AFFINE).to_bytes()
    path = tmp_path / "multi.nii.gz"
    path.write_bytes(gzip.compress(raw[:1000]) + gzip.compress(raw[1000:]))
    np.testing.assert_array_equal(nifti.load_label(path).data, arr)


def test_truncated_and_corrupt_streams_are_one_line_errors(tmp_path, codec):
    arr = _label()
    good = tmp_path / "good.nii.gz"
    nifti.save_mask(arr, AFFINE, good)
    blob = good.read_bytes()
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(blob[:40] + bytes(len(blob) - 48) + blob[-8:])  # trailer intact, data zeroed
    with pytest.raises(InputError, match="corrupt"):
        nifti.load_label(corrupt)
    short = np.empty(arr.size + 10, np.uint8)
    with pytest.raises(EOFError):
        gzip_codec.read_into(good, short, skip=352)


def test_same_image_same_bytes(tmp_path, codec):
    """The gzip header holds no file name or time stamp: a rewrite is byte-identical."""
    first, second = tmp_path / "a" / "m.nii.gz", tmp_path / "b" / "m.nii.gz"
    for path in (first, second):
        path.parent.mkdir()
        nifti.save_mask(_label(), AFFINE, path)
    data = first.read_bytes()
    assert data == second.read_bytes()
    assert data[4:8] == b"\0\0\0\0" and not data[3] & 0x08  # MTIME 0, no FNAME flag
