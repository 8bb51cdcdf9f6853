"""totalseg_bids.crop on phantoms: world positions kept, factor-3 volumes kept, names pair up."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from support import assert_one_line_error

from totalseg_bids import crop
from totalseg_bids.core.bids import image_for_label
from totalseg_bids.core.geometry import voxel_volume_ml


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
    side = json.loads(ct.with_name("sub-01_desc-cropped_CT.json").read_text(encoding="utf-8"))
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
    cropped = phantom_ds / "derivatives" / "cropped"
    labels = sorted(cropped.rglob("*res-factor3_desc-cropped_CT_label-sacrum_seg.nii.gz"))
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


CT1 = "ds/sub-01/anat/sub-01_CT.nii.gz"
CT1_LABEL = "ds/derivatives/ground_truth/sub-01/anat/sub-01_CT_label-sacrum_seg.nii.gz"


def one_case_config(tmp_path: Path, ds: Path, image: str = CT1, label: str = CT1_LABEL) -> Path:
    cfg = tmp_path / "one.json"
    cfg.write_text(json.dumps({"TYPE": "LABEL", "DATASETS_PATH": str(ds.parent),
                               "TRAINING": [{"IMAGE": image, "LABEL": label}]}))
    return cfg


def crop_main(capsys, cfg: Path, out: Path, *extra: str) -> tuple[int, str]:
    code = crop.main(["--config", str(cfg), "--roi-dir", "labels", "--roi-label", "sacrum",
                      "--path-out", str(out), "-j", "1", *extra])
    return code, capsys.readouterr().err


def one_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ": error: " in ln]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_damaged_output_is_redone_and_finished_ones_skipped(phantom_ds, tmp_path, capsys):
    cfg, out = one_case_config(tmp_path, phantom_ds), tmp_path / "cropped"
    assert crop_main(capsys, cfg, out)[0] == 0
    img = out / "sub-01" / "anat" / "sub-01_desc-cropped_CT.nii.gz"
    lab = img.with_name("sub-01_desc-cropped_CT_label-sacrum_seg.nii.gz")
    first = np.asarray(nib.load(str(img)).dataobj).copy()
    mtimes = {p: p.stat().st_mtime_ns for p in (img, lab)}
    assert crop_main(capsys, cfg, out)[0] == 0
    assert {p: p.stat().st_mtime_ns for p in (img, lab)} == mtimes  # complete: skipped
    img.write_bytes(img.read_bytes()[: img.stat().st_size // 2])  # a killed copy
    code, err = crop_main(capsys, cfg, out, "-v")
    assert code == 0 and any("sub-01_desc-cropped_CT.nii.gz" in ln and "redoing it" in ln for ln in err.splitlines())
    assert np.array_equal(np.asarray(nib.load(str(img)).dataobj), first)


def test_spacing_resamples_on_a_common_grid_and_records_it(phantom_ds, tmp_path, capsys):
    cfg, out = one_case_config(tmp_path, phantom_ds), tmp_path / "cropped"
    assert crop_main(capsys, cfg, out, "--spacing", "2", "2", "2", "--image-interp", "bspline",
                     "--label-interp", "label", "--margin-mm", "6")[0] == 0
    img = out / "sub-01" / "anat" / "sub-01_res-2mm_desc-cropped_CT.nii.gz"
    lab = img.with_name("sub-01_res-2mm_desc-cropped_CT_label-sacrum_seg.nii.gz")
    side = json.loads(img.with_name("sub-01_res-2mm_desc-cropped_CT.json").read_text(encoding="utf-8"))
    assert np.allclose(nib.affines.voxel_sizes(nib.load(str(img)).affine), 2.0)
    assert nib.load(str(img)).shape == nib.load(str(lab)).shape == tuple(side["Resampling"]["Shape"])
    assert side["Resampling"]["Mode"] == "spacing" and side["Resampling"]["ImageInterpolation"] == "bspline"
    assert "2mm" in side["Resolution"] and side["MarginMm"] == 6.0
    assert nib.load(str(img)).get_data_dtype() == np.float32  # a B-spline leaves the integer range
    gt = phantom_ds.parent / CT1_LABEL
    assert volume_ml(lab) == pytest.approx(volume_ml(gt), rel=0.03)
    assert np.linalg.norm(centroid_mm(lab) - centroid_mm(gt)) < 1.0


def test_roi_outside_the_image_and_label_off_grid_are_refused_before_writing(phantom_ds, tmp_path, capsys):
    cfg, out = one_case_config(tmp_path, phantom_ds), tmp_path / "cropped"
    label = phantom_ds.parent / CT1_LABEL
    src = nib.load(str(label))
    shifted = src.affine.copy()
    shifted[:3, 3] += 0.5
    nib.save(nib.Nifti1Image(np.asarray(src.dataobj), shifted), str(label))
    code, err = crop_main(capsys, cfg, out)
    assert code == 1 and "not on its image's grid" in one_error(err) and "sub-01_CT_label-sacrum" in err
    assert not list(out.rglob("*.nii.gz"))
    roi = phantom_ds / "derivatives" / "labels" / "sub-01" / "anat" / "sub-01_CT_label-sacrum_seg.nii.gz"
    r = nib.load(str(roi))
    far = r.affine.copy()
    far[:3, 3] += 5000.0
    nib.save(nib.Nifti1Image(np.asarray(r.dataobj), far), str(roi))
    nib.save(src, str(label))
    code, err = crop_main(capsys, cfg, out)
    assert code == 1 and "outside the image's field of view" in one_error(err) and str(roi) in err
    assert not list(out.rglob("*.nii.gz"))


def test_contradicting_or_out_of_range_options_exit_2(phantom_ds, tmp_path, capsys):
    cfg, out = one_case_config(tmp_path, phantom_ds), tmp_path / "cropped"
    for extra in (["--spacing", "2", "2", "2", "--factor", "3"], ["--margin-mm", "-1"], ["--factor", "0"],
                  ["--shape", "0", "10", "10"]):
        code, err = crop_main(capsys, cfg, out, *extra)
        assert code == 2 and one_error(err), extra
    assert not out.exists()


def test_shape_smaller_than_roi_plus_margin_warns_naming_the_dataset(phantom_ds, tmp_path, capsys):
    cfg, out = one_case_config(tmp_path, phantom_ds), tmp_path / "cropped"
    code, err = crop_main(capsys, cfg, out, "--shape", "8", "8", "8")
    assert code == 0 and "ds/sub-01/anat/sub-01_CT.nii.gz: ROI plus margin" in err, err
    img = out / "sub-01" / "anat" / "sub-01_desc-cropped_CT.nii.gz"
    assert nib.load(str(img)).shape == (8, 8, 8)


def test_one_unreadable_image_fails_the_batch_after_the_others(phantom_ds, tmp_path, capsys):
    """Library: one BatchError naming the bad image, ``.done`` holds the other case's result and its
    outputs exist; the CLI prints the completed records as JSON lines (the rerun: skipped) and exits 1."""
    from totalseg_bids.core.errors import BatchError

    cfg = tmp_path / "two.json"
    cfg.write_text(json.dumps({"TYPE": "LABEL", "DATASETS_PATH": str(phantom_ds.parent), "TRAINING": [
        {"IMAGE": CT1, "LABEL": CT1_LABEL},
        {"IMAGE": "ds/sub-03/anat/sub-03_CT.nii.gz",
         "LABEL": "ds/derivatives/ground_truth/sub-03/anat/sub-03_CT_label-sacrum_seg.nii.gz"}]}))
    bad = phantom_ds / "sub-03" / "anat" / "sub-03_CT.nii.gz"
    bad.write_bytes(bad.read_bytes()[:300])
    out = tmp_path / "cropped"
    with pytest.raises(BatchError) as err:
        crop.crop_config(cfg, out, roi_label="sacrum", roi_dir="labels", jobs=1)
    assert [key for key, _ in err.value.failures] == ["ds/sub-03/anat/sub-03_CT.nii.gz"]
    (good,) = err.value.done
    assert good.status == "written" and good.path.name == "sub-01_desc-cropped_CT.nii.gz"
    assert all(p.is_file() for p in (good.path, *good.labels)) and len(good.labels) == 1
    assert not (out / "sub-03").exists()
    code = crop.main(["--config", str(cfg), "--roi-dir", "labels", "--roi-label", "sacrum",
                      "--path-out", str(out), "-j", "1"])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1 and [(r["stage"], r["status"], r["path"]) for r in records] == [
        ("crop", "skipped", str(good.path))]
    assert records[0]["labels"] == [str(p) for p in good.labels]
