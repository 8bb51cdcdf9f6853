"""``.npy`` volumes with a geometry sidecar: NIfTI -> npy -> NIfTI keeps array and affine exactly."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from totalseg_bids.core.errors import InputError
from totalseg_bids.core.npy_volume import load_npy_volume, npy_to_nifti, save_npy_volume, sidecar_path


@pytest.mark.parametrize("dtype", ["int16", "uint8", "float32"])
def test_round_trip_reproduces_geometry(tmp_path, dtype):
    rng = np.random.default_rng(0)
    data = (rng.random((7, 5, 4)) * 100).astype(dtype)
    affine = np.array([[0.0, -0.8, 0.1, 12.5], [0.9, 0.0, 0.0, -3.0], [0.0, 0.05, 2.5, 40.0], [0, 0, 0, 1]])
    src = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), str(src))
    img = nib.load(str(src))
    npy = save_npy_volume(np.asanyarray(img.dataobj), img.affine, tmp_path / "CS1_CTA_Binary.npy", str(src))
    back = nib.load(str(npy_to_nifti(npy, tmp_path / "back.nii.gz")))
    assert np.array_equal(np.asanyarray(back.dataobj), np.asanyarray(img.dataobj))
    assert back.get_data_dtype() == img.get_data_dtype()
    assert np.array_equal(back.affine, img.affine)


def test_missing_sidecar_is_input_error(tmp_path):
    npy = save_npy_volume(np.zeros((2, 2, 2), np.uint8), np.eye(4), tmp_path / "m.npy")
    sidecar_path(npy).unlink()
    with pytest.raises(InputError, match="sidecar"):
        load_npy_volume(npy)
