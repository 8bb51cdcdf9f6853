"""Reading only the labelled box of a label gives the same transfer as reading it whole."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from totalseg_bids.core import geometry, nifti
from totalseg_bids.core.errors import InputError
from totalseg_bids.core.label_box import _stream_box, crop_to_box, load_label_box
from totalseg_bids.register import transfer_label

CT_AFFINE = np.array([[-0.8, 0, 0, 90], [0, -0.8, 0, 110], [0, 0, 1.25, -60], [0, 0, 0, 1.0]])


@pytest.fixture(params=["isal", "zlib"])
def codec(request, monkeypatch):
    if request.param == "isal":
        pytest.importorskip("isal")
        monkeypatch.delenv("TOTALSEG_BIDS_GZIP", raising=False)
    else:
        monkeypatch.setenv("TOTALSEG_BIDS_GZIP", "zlib")
    return request.param


def _label(shape=(90, 80, 60), dtype=np.uint8, where=(slice(30, 61), slice(22, 50), slice(18, 41)), seed=0):
    rng = np.random.default_rng(seed)
    a = np.zeros(shape, dtype)
    a[where] = 1
    block = a[where]
    block[rng.random(block.shape) > 0.8] = 0  # holes: the box is not all ones
    return a


def _oblique_mri_affine(shape=(48, 44, 24)):
    """An oblique 1.1 x 1.1 x 3 mm grid centred on the label of :func:`_label`."""
    a, b = np.deg2rad(12), np.deg2rad(7)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]) @ \
        np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    centre = CT_AFFINE[:3, :3] @ np.array([45.0, 36.0, 30.0]) + CT_AFFINE[:3, 3]
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag([1.1, 1.1, 3.0])
    aff[:3, 3] = centre - aff[:3, :3] @ (np.array(shape) / 2.0)
    return aff


def _write(arr, path, affine=CT_AFFINE):
    img = nib.Nifti1Image(arr, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_slope_inter(1, 0)
    img.to_filename(str(path))
    return path


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int32])
@pytest.mark.parametrize("chunk", [None, 1000, 7200, 4097])
def test_streamed_box_equals_the_crop_of_the_whole_array(tmp_path, codec, dtype, chunk):
    """Pieces that split a slice, or a multi-byte value, still give the exact box and origin."""
    arr = _label(dtype=dtype)
    arr[31, 23, 40] = 2
    path = _write(arr, tmp_path / f"lab_{np.dtype(dtype).name}.nii.gz")
    img = nifti.load_nifti(path)
    box, origin = _stream_box(img, path, arr.shape, chunk=chunk)
    want, want_origin = crop_to_box(arr)
    assert origin == want_origin == (30, 22, 18)
    np.testing.assert_array_equal(box, want)


@pytest.mark.parametrize("where", [(slice(0, 3), slice(0, 2), slice(0, 1)),  # first voxels of the file
                                   (slice(87, 90), slice(78, 80), slice(59, 60)),  # last slice
                                   (slice(45, 46), slice(40, 41), slice(30, 31))])  # one voxel
def test_box_at_the_edges_and_of_one_voxel(tmp_path, codec, where):
    arr = np.zeros((90, 80, 60), np.uint8)
    arr[where] = 1
    vol = load_label_box(_write(arr, tmp_path / "edge.nii.gz"), binary=True)
    assert vol.origin == tuple(s.start for s in where)
    assert vol.data.shape == tuple(s.stop - s.start for s in where)
    assert vol.grid.shape == arr.shape and np.allclose(vol.grid.affine, CT_AFFINE)


def test_empty_label_is_a_zero_box_and_transfers_to_an_empty_mask(tmp_path, codec):
    empty = _write(np.zeros((40, 40, 20), np.uint8), tmp_path / "sub-01_CT_label-sacrum_seg.nii.gz")
    vol = load_label_box(empty, binary=True)
    assert vol.data.shape == (1, 1, 1) and not vol.data.any() and vol.grid.shape == (40, 40, 20)


@pytest.mark.parametrize("mri_affine", [
    np.array([[-1.6, 0, 0, 90], [0, -1.6, 0, 110], [0, 0, 2.5, -60], [0, 0, 0, 1.0]]),  # aligned, 2x: ties
    _oblique_mri_affine(),
])
@pytest.mark.parametrize("mode", ["nearest", "label"])
def test_resampling_a_box_is_voxel_identical_to_resampling_the_whole(tmp_path, mri_affine, mode):
    arr = _label()
    arr[35:40, 25:30, 20:25] = 3
    vol = load_label_box(_write(arr, tmp_path / "lab.nii.gz"))
    grid = geometry.Grid((48, 44, 24), mri_affine)
    whole = geometry.resample_label(arr, CT_AFFINE, grid, mode=mode)
    boxed = geometry.resample_label(vol.data, vol.affine, grid, mode=mode, origin=vol.origin)
    assert whole.any()
    np.testing.assert_array_equal(boxed, whole)
    assert boxed.flags.f_contiguous


def test_float_and_scaled_labels_take_the_whole_read_with_the_same_checks(tmp_path):
    arr = _label().astype(np.float32)
    vol = load_label_box(_write(arr, tmp_path / "float.nii.gz"), binary=True)
    assert vol.origin == (30, 22, 18) and vol.data.dtype == np.uint8
    soft = arr.copy()
    soft[40, 30, 20] = 0.5
    with pytest.raises(InputError, match="non-integer"):
        load_label_box(_write(soft, tmp_path / "soft.nii.gz"))
    neg = _label(dtype=np.int16)
    neg[40, 30, 20] = -1
    with pytest.raises(InputError, match="negative"):
        load_label_box(_write(neg, tmp_path / "neg.nii.gz"))
    multi = _label()
    multi[40, 30, 20] = 5
    with pytest.raises(InputError, match="unexpected values"):
        load_label_box(_write(multi, tmp_path / "multi.nii.gz"), binary=True)


def test_corrupt_data_is_one_line_error(tmp_path, codec):
    good = nifti.save_mask(_label(), CT_AFFINE, tmp_path / "good.nii.gz")
    blob = good.read_bytes()
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(blob[:40] + bytes(len(blob) - 48) + blob[-8:])
    with pytest.raises(InputError, match="corrupt"):
        load_label_box(corrupt)


def test_header_transfer_reads_the_box_and_writes_what_the_whole_read_gives(tmp_path, codec):
    arr = _label()
    anat = tmp_path / "ds" / "sub-01" / "anat"
    anat.mkdir(parents=True)
    ct = _write(arr, anat / "sub-01_CT_label-sacrum_seg.nii.gz")
    mri_affine = _oblique_mri_affine()
    mri = _write(np.ones((48, 44, 24), np.int16), anat / "sub-01_T2w.nii.gz", mri_affine)
    out = tmp_path / "ds" / "derivatives" / "reg-labels" / "sub-01" / "anat" / "sub-01_T2w_label-sacrum_seg.nii.gz"
    out.parent.mkdir(parents=True)
    transfer_label(ct, mri, out, method="header")
    want = geometry.resample_label(arr, CT_AFFINE, geometry.Grid((48, 44, 24), mri_affine))
    got = nib.load(str(out))
    np.testing.assert_array_equal(np.asanyarray(got.dataobj), want)
    assert want.any() and np.allclose(got.affine, mri_affine)
