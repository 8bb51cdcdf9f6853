"""totalseg_bids.crop on phantoms: world positions kept, factor-3 volumes kept, names pair up."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from conftest import assert_one_line_error
from totalseg_bids import crop
from totalseg_bids.core.bids import image_for_label
from totalseg_bids.core.nifti import voxel_volume_ml


def centroid_mm(path: Path) -> np.ndarray:
    img = nib.load(str(path))
    idx = np.argwhere(np.asarray(img.dataobj) > 0)
    return nib.affines.apply_affine(img.affine, idx.mean(axis=0))


def volume_ml(path: Path) -> float:
    img = nib.load(str(path))
    return float((np.asarray(img.dataobj) > 0).sum()) * voxel_volume_ml(img.affine)


def gt_of(cropped: Path, ds: Path) -> Path:
    """The ground-truth mask a cropped label was made from (drop desc-/res- entities)."""
    name = cropped.name.replace("_res-factor3", "").replace("_desc-cropped", "")
    return next((ds / "derivatives" / "ground_truth").rglob(name))


def run_crop(ds: Path, *extra: str) -> int:
    return crop.main(["--path-img", str(ds), "--roi-dir", "labels", "--roi-label", "sacrum",
                      "--label-dir", "ground_truth", "--label-suffix", "_label-sacrum_seg", "-q", *extra])


def test_crop_keeps_world_position_and_pairs(phantom_ds):
    assert run_crop(phantom_ds, "--contrasts", "CT", "T2w", "-j", "2") == 0
    out = phantom_ds / "derivatives" / "cropped"
    labels = sorted(out.rglob("*_label-sacrum_seg.nii.gz"))
    assert len(labels) == 8  # 4 CT + 4 T2w (sub-02 has two sessions)
    for lab in labels:
        gt = gt_of(lab, phantom_ds)
        assert np.linalg.norm(centroid_mm(lab) - centroid_mm(gt)) < 0.5, lab.name
        assert volume_ml(lab) == pytest.approx(volume_ml(gt), rel=1e-9)  # nothing cut off
        # the label pairs with the cropped image, which shares its grid exactly
        img = image_for_label(lab)
        assert img.parent == lab.parent and "desc-cropped" in img.name and img.exists()
        assert np.allclose(nib.load(str(img)).affine, nib.load(str(lab)).affine)
    # cropped smaller than the source, same voxel values at the same world points
    ct = out / "sub-01" / "anat" / "sub-01_desc-cropped_CT.nii.gz"
    side = json.loads(ct.with_name("sub-01_desc-cropped_CT.json").read_text())
    start, stop = side["CropBox"]["VoxelStart"], side["CropBox"]["VoxelStop"]
    src = nib.load(str(phantom_ds / "sub-01" / "anat" / "sub-01_CT.nii.gz"))
    cropped = nib.load(str(ct))
    assert cropped.shape == tuple(b - a for a, b in zip(start, stop)) and cropped.shape < src.shape
    sub = np.asarray(src.dataobj)[start[0]:stop[0], start[1]:stop[1], start[2]:stop[2]]
    assert np.array_equal(np.asarray(cropped.dataobj), sub)
    assert np.allclose(cropped.affine[:3, 3], nib.affines.apply_affine(src.affine, start))
    assert side["MarginMm"] == 20.0 and side["ROI"]["Label"] == "sacrum"
    assert any("sub-01_CT.nii.gz" in s for s in side["Sources"])
    assert (out / "dataset_description.json").exists()
    # a second run skips finished cases
    mtime = ct.stat().st_mtime_ns
    assert run_crop(phantom_ds, "--contrasts", "CT", "-j", "1") == 0
    assert ct.stat().st_mtime_ns == mtime


def test_factor3_keeps_volume(phantom_ds):
    assert run_crop(phantom_ds, "--contrasts", "CT", "--factor", "3", "--label-interp", "label", "-j", "2") == 0
    labels = sorted((phantom_ds / "derivatives" / "cropped").rglob("*res-factor3_desc-cropped_CT_label-sacrum_seg.nii.gz"))
    assert len(labels) == 4
    for lab in labels:
        gt = gt_of(lab, phantom_ds)
        img = nib.load(str(lab))
        assert np.allclose(nib.affines.voxel_sizes(img.affine), 3.0)
        assert volume_ml(lab) == pytest.approx(volume_ml(gt), rel=0.03)  # measured: within 0.4 %
        assert np.linalg.norm(centroid_mm(lab) - centroid_mm(gt)) < 1.5
        assert image_for_label(lab).name.startswith(lab.name.split("_label-")[0])


def test_fixed_shape_from_config(phantom_ds, tmp_path):
    t2 = "ds/sub-01/anat/sub-01_acq-sag_T2w.nii.gz"
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"TYPE": "LABEL", "CONTRASTS": "t2", "DATASETS_PATH": str(phantom_ds.parent),
                               "TRAINING": [{"IMAGE": t2, "LABEL": "ds/derivatives/ground_truth/sub-01/anat/"
                                             "sub-01_acq-sag_T2w_label-sacrum_seg.nii.gz"}]}))
    out = tmp_path / "cropped"
    assert crop.main(["--config", str(cfg), "--roi-dir", "labels", "--roi-label", "sacrum",
                      "--shape", "40", "50", "32", "--path-out", str(out), "-q", "-j", "1"]) == 0
    img = out / "sub-01" / "anat" / "sub-01_acq-sag_desc-cropped_T2w.nii.gz"
    lab = img.with_name("sub-01_acq-sag_desc-cropped_T2w_label-sacrum_seg.nii.gz")
    assert nib.load(str(img)).shape == (40, 50, 32) == nib.load(str(lab)).shape  # padded along the 24 slices
    gt = phantom_ds / "derivatives" / "ground_truth" / "sub-01" / "anat" / "sub-01_acq-sag_T2w_label-sacrum_seg.nii.gz"
    assert np.linalg.norm(centroid_mm(lab) - centroid_mm(gt)) < 0.5
    assert image_for_label(lab) == img


def test_empty_roi_is_one_line_error(phantom_ds, cli):
    roi = phantom_ds / "derivatives" / "labels" / "sub-01" / "anat" / "sub-01_CT_label-sacrum_seg.nii.gz"
    img = nib.load(str(roi))
    nib.save(nib.Nifti1Image(np.zeros(img.shape, np.uint8), img.affine), str(roi))
    proc = cli("crop", "--path-img", phantom_ds, "--contrasts", "T2w", "--roi-dir", "labels",
               "--roi-label", "sacrum", "-j", "1")
    assert_one_line_error(proc, str(roi), "empty")
    out = phantom_ds / "derivatives" / "cropped"
    assert not list(out.rglob("sub-01_*"))  # no partial output for the failed case
    assert list(out.rglob("sub-03_acq-sag_desc-cropped_T2w.nii.gz"))  # the others went on


def test_missing_input_is_one_line_error(tmp_path, cli):
    missing = tmp_path / "nope"
    proc = cli("crop", "--path-img", missing, "--roi-dir", "labels", "--roi-label", "sacrum")
    assert_one_line_error(proc, str(missing))
