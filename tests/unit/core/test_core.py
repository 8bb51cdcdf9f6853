"""Core helpers: BIDS names, NIfTI geometry, atomic writes, errors, index."""

from __future__ import annotations

import gzip
import json
import pickle
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from totalseg_bids.core import errors
from totalseg_bids.core.atomic import atomic_path, atomic_write_json
from totalseg_bids.core.bids import BidsName, bids_uri, derivative_path, image_for_label
from totalseg_bids.core.derivatives import ensure_dataset_description, write_sidecar
from totalseg_bids.core.geometry import Grid, dice, grid_mismatch, grids_overlap, resample_label, same_grid
from totalseg_bids.core.index import BidsIndex
from totalseg_bids.core.nifti import load_image, load_label, qform_sform_discrepancy, save_mask


# ------------------------------------------------------------------ names
@pytest.mark.parametrize("name,subject,session,suffix,deriv", [
    ("sub-01_T2w.nii.gz", "01", None, "T2w", None),
    ("sub-01_ses-02_acq-sag_run-1_T2w.nii.gz", "01", "02", "T2w", None),
    ("sub-01_CT_label-sacrum_seg.nii.gz", "01", None, "CT", "seg"),
    ("sub-a1_ses-x_T1w_label-total_dseg.nii.gz", "a1", "x", "T1w", "dseg"),
    ("sub-01_T2w_seg.nii.gz", "01", None, "T2w", "seg"),
    ("sub-01_acq-sag_space-T2w_label-sacrum_mask.nii.gz", "01", None, "T2w", "mask"),
    ("sub-01_T2w_desc-manual_label-sacrum_softseg.nii.gz", "01", None, "T2w", "softseg"),
])
def test_parse(name, subject, session, suffix, deriv):
    n = BidsName.parse(name)
    assert (n.subject, n.session, n.suffix, n.deriv_suffix) == (subject, session, suffix, deriv)
    assert n.filename == name or n.naming == "bids"
    assert BidsName.parse(n.filename) == n


@pytest.mark.parametrize("bad", ["T2w.nii.gz", "sub-01.nii.gz", "sub-01_ses_T2w.nii.gz",
                                 "sub-01_T2w_label-a_b_seg.nii.gz", "sub-01_T2w_label-sacrum_foo.nii.gz",
                                 "sub-01_sub-02_T2w.nii.gz", "sub-01_T2w_label-x_seg_extra.nii.gz"])
def test_parse_rejects(bad):
    with pytest.raises(errors.InputError):
        BidsName.parse(bad)


def test_source_does_not_cut_at_last_underscore():
    n = BidsName.parse("sub-01_ses-02_acq-sag_run-3_T2w_label-vertebraeL5_seg.nii.gz")
    assert n.source().filename == "sub-01_ses-02_acq-sag_run-3_T2w.nii.gz"
    assert n.get("label") == "vertebraeL5"


def test_derivative_paths_and_back(phantom_ds):
    t2 = phantom_ds / "sub-02/ses-01/anat/sub-02_ses-01_acq-sag_T2w.nii.gz"
    for naming in ("neuropoly", "bids"):
        lab = derivative_path(t2, phantom_ds / "derivatives/reg-labels", "sacrum", naming=naming)
        assert lab.parent == phantom_ds / "derivatives/reg-labels/sub-02/ses-01/anat"
        assert image_for_label(lab) == t2
    with pytest.raises(errors.InputError, match="no image"):
        image_for_label(phantom_ds / "derivatives/labels/sub-09/anat/sub-09_T2w_label-sacrum_seg.nii.gz")


def test_bids_uri_of_an_annexed_file_is_where_the_dataset_shows_it(tmp_path):
    """A datalad file is a symlink into .git/annex/objects: the URI names the link, not the object
    (the folders above may be links too)."""
    ds = tmp_path / "real"
    obj = ds / ".git/annex/objects/Xy/Zw/MD5E-s4--0.nii.gz/MD5E-s4--0.nii.gz"
    obj.parent.mkdir(parents=True)
    obj.write_bytes(b"data")
    mri = ds / "sub-01/anat/sub-01_T1w.nii.gz"
    mri.parent.mkdir(parents=True)
    mri.symlink_to(obj)
    (tmp_path / "link").symlink_to(ds)
    assert bids_uri(mri, ds) == "bids:raw:sub-01/anat/sub-01_T1w.nii.gz"
    assert bids_uri(tmp_path / "link/sub-01/anat/sub-01_T1w.nii.gz", ds) == "bids:raw:sub-01/anat/sub-01_T1w.nii.gz"
    assert bids_uri(mri, tmp_path / "link") == "bids:raw:sub-01/anat/sub-01_T1w.nii.gz"


# ---------------------------------------------------------------- errors
def test_errors_subclass_builtins_and_pickle():
    e = errors.MissingFileError("file not found", "/x.nii.gz", "check the path")
    assert isinstance(e, FileNotFoundError) and isinstance(e, ValueError)
    assert isinstance(e, errors.TotalsegBidsError)
    assert str(e) == "/x.nii.gz: file not found; check the path"
    assert str(pickle.loads(pickle.dumps(e))) == str(e)
    b = errors.BatchError("1 failed", failures=[("a", "bad")])
    assert pickle.loads(pickle.dumps(b)).failures == [("a", "bad")]
    assert errors.UsageError("x").exit_code == 2


# ---------------------------------------------------------------- atomic
def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    final = tmp_path / "out" / "a.nii.gz"
    with pytest.raises(RuntimeError), atomic_path(final) as tmp:
        assert tmp.name.endswith(".nii.gz") and tmp.parent == final.parent
        tmp.write_bytes(b"partial")
        raise RuntimeError("killed")
    assert list((tmp_path / "out").iterdir()) == []
    atomic_write_json(tmp_path / "x.json", {"a": 1})
    assert json.loads((tmp_path / "x.json").read_text(encoding="utf-8")) == {"a": 1}


def test_dataset_description_and_sidecar(tmp_path):
    deriv = tmp_path / "ds" / "derivatives" / "labels"
    p = ensure_dataset_description(deriv, "labels")
    desc = json.loads(p.read_text(encoding="utf-8"))
    assert desc["DatasetType"] == "derivative" and desc["GeneratedBy"][0]["Name"] == "totalseg_bids"
    img = tmp_path / "ds/sub-01/anat/sub-01_T2w.nii.gz"
    lab = deriv / "sub-01/anat/sub-01_T2w_label-sacrum_seg.nii.gz"
    side = write_sidecar(lab, [img], [{"Name": "x"}], spatial_reference=img)
    data = json.loads(side.read_text(encoding="utf-8"))
    assert data["SpatialReference"] == "bids:raw:sub-01/anat/sub-01_T2w.nii.gz"
    assert data["Sources"] == ["bids:raw:sub-01/anat/sub-01_T2w.nii.gz"]


# ----------------------------------------------------------------- NIfTI
def test_save_mask_policy(tmp_path):
    aff = np.array([[0, 0, -3.0, 10], [0.9, 0, 0, -5], [0, 1.1, 0, 2], [0, 0, 0, 1]])
    p = save_mask(np.ones((3, 4, 5)), aff, tmp_path / "m.nii.gz")
    img = nib.load(str(p))
    assert img.get_data_dtype() == np.uint8
    assert np.allclose(img.get_qform(), aff, atol=1e-5) and np.allclose(img.get_sform(), aff)
    assert int(img.header["qform_code"]) == 1 and int(img.header["sform_code"]) == 1
    assert save_mask(np.full((2, 2, 2), 300), aff, tmp_path / "big.nii.gz") and \
        nib.load(str(tmp_path / "big.nii.gz")).get_data_dtype() == np.uint16


@pytest.mark.parametrize("content,match", [
    (b"", "empty"), (b"not a gzip at all", "not a gzip"), (gzip.compress(b"x" * 400, mtime=0), "NIfTI"),
], ids=["empty", "not-gzip", "gzip-not-nifti"])
def test_bad_files_raise_one_line(tmp_path, content, match):
    p = tmp_path / "sub-01_T2w.nii.gz"
    p.write_bytes(content)
    with pytest.raises(errors.InputError, match=match) as info:
        load_image(p)
    assert "\n" not in str(info.value) and str(p) in str(info.value)


def test_truncated_gzip_and_missing(tmp_path):
    p = tmp_path / "a.nii.gz"
    save_mask(np.random.default_rng(0).integers(0, 2, (40, 40, 40)), np.eye(4), p)
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(errors.InputError, match="truncated|corrupt"):
        load_label(p)
    with pytest.raises(errors.MissingFileError):
        load_label(tmp_path / "nope.nii.gz")
    link = tmp_path / "annexed.nii.gz"
    link.symlink_to(".git/annex/objects/XX/YY/SHA256E-s1--abc.nii.gz/SHA256E-s1--abc.nii.gz")
    with pytest.raises(errors.AnnexContentMissingError, match="datalad get"):
        load_label(link)


def test_label_checks(tmp_path):
    p = tmp_path / "f.nii.gz"
    nib.save(nib.Nifti1Image(np.full((3, 3, 3), 0.5, np.float32), np.eye(4)), str(p))
    with pytest.raises(errors.InputError, match="non-integer"):
        load_label(p)
    nib.save(nib.Nifti1Image(np.arange(27, dtype=np.float32).reshape(3, 3, 3) % 3, np.eye(4)), str(p))
    assert load_label(p).data.dtype == np.uint8
    with pytest.raises(errors.InputError, match="unexpected values"):
        load_label(p, binary=True)


def test_4d_and_nan_refused(tmp_path):
    p = tmp_path / "f.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((3, 3, 3, 2), np.float32), np.eye(4)), str(p))
    with pytest.raises(errors.InputError, match="3D"):
        load_image(p)
    d = np.zeros((3, 3, 3), np.float32)
    d[1, 1, 1] = np.nan
    nib.save(nib.Nifti1Image(d, np.eye(4)), str(p))
    with pytest.raises(errors.InputError, match="NaN"):
        load_image(p)


def test_grid_helpers():
    g = Grid((10, 10, 10), np.eye(4))
    assert same_grid(g, g)
    shifted = np.eye(4)
    shifted[0, 3] = 0.5
    assert "origin" in grid_mismatch(g, Grid((10, 10, 10), shifted))
    far = np.eye(4)
    far[:3, 3] = 100
    assert grids_overlap(g, Grid((10, 10, 10), shifted)) and not grids_overlap(g, Grid((10, 10, 10), far))


def test_resample_label_exact_for_permuted_grids():
    """A flip/permutation of axes must move every voxel exactly."""
    rng = np.random.default_rng(0)
    lab = (rng.uniform(size=(6, 7, 8)) > 0.7).astype(np.uint8)
    aff = np.diag([2.0, 3.0, 4.0, 1.0])
    aff[:3, 3] = [5, -7, 9]
    flip = np.array([[0, -1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 1.0]])  # new index -> old index
    flip[0, 3] = 6  # i_old = 6 - j_new ... keep inside
    target_aff = aff @ np.array([[0, 0, 1, 0], [-1, 0, 0, 6], [0, 1, 0, 0], [0, 0, 0, 1.0]])
    out = resample_label(lab, aff, Grid((7, 8, 6), target_aff))
    expected = np.transpose(lab[::-1], (1, 2, 0))  # out[a,b,c] = lab[6-b?]... checked by world coords below
    ijk = np.argwhere(out > 0)
    world = ijk @ target_aff[:3, :3].T + target_aff[:3, 3]
    src = np.rint((world - aff[:3, 3]) @ np.linalg.inv(aff[:3, :3]).T).astype(int)
    assert lab[tuple(src.T)].all() and out.sum() == lab.sum() == expected.sum()


def test_phantom_ground_truth_on_mri_grids(phantom_ds):
    """Header transfer of the CT ground truth lands where the world-space
    definition puts it, on oblique, sagittal, LPS and RAS grids."""
    for ct_label in sorted((phantom_ds / "derivatives/labels").rglob("*_CT_label-sacrum_seg.nii.gz")):
        lab = load_label(ct_label)
        for mod in ("T1w", "acq-sag_T2w"):
            gt = load_label(Path(str(ct_label).replace("/labels/", "/ground_truth/").replace("CT", mod)))
            assert dice(resample_label(lab.data, lab.affine, gt.grid), gt.data) >= 0.97
            assert dice(resample_label(lab.data, lab.affine, gt.grid, mode="label"), gt.data) >= 0.98
            # a wrong geometry (e.g. ignoring the MRI's orientation) must fail the same check
            wrong = Grid(gt.grid.shape, np.diag([*gt.grid.spacing, 1.0]))
            assert dice(resample_label(lab.data, lab.affine, wrong), gt.data) < 0.5


def test_phantom_qform_sform_within_tolerance(phantom_ds):
    t1 = phantom_ds / "sub-01/anat/sub-01_T1w.nii.gz"
    gap = qform_sform_discrepancy(nib.load(str(t1)))
    assert 0 < gap < 0.1


def test_index(phantom_ds):
    idx = BidsIndex.scan(phantom_ds)
    assert idx.subjects == ["01", "02", "03"]
    cts = idx.query(suffix="CT")
    assert len(cts) == 4  # sub-02 has two sessions
    assert {f.session for f in idx.query(suffix="T2w", subject="02")} == {"01", "02"}
    assert not any(f.name.is_derivative for f in idx)
    labels = BidsIndex.scan_derivatives(phantom_ds, "labels")
    assert len(labels.query(derivative=True, label="sacrum")) == 4


def test_phantom_left_is_left():
    """RAS+: x grows towards the subject's right, so hip_left lies at negative x."""
    from totalseg_bids.testing.anatomy import STRUCTURES, Anatomy

    labels = Anatomy().labels(np.array([[-58.0, -18.0, 2.0], [58.0, -18.0, 2.0], [0.0, -30.0, -10.0]]))
    assert [STRUCTURES[v - 1] for v in labels] == ["hip_left", "hip_right", "sacrum"]


def test_display_windowing_ignores_nan_and_maps_it_to_black_in_both_views():
    from totalseg_bids.core.display import intensity_range, percentile_range, to_uint8
    from totalseg_bids.core.qc.display import window_bounds

    rng = np.random.default_rng(0)
    finite = rng.normal(100.0, 20.0, (20, 20, 10)).astype(np.float32)
    with_nan = finite.copy()
    with_nan[:5] = np.nan  # outside the field of view
    lo, hi = percentile_range(with_nan, (1, 99))
    assert (lo, hi) == pytest.approx(tuple(np.percentile(finite[5:], (1, 99))), rel=1e-6)
    assert window_bounds(with_nan, ct=False) == pytest.approx((lo, hi), rel=1e-6)
    assert intensity_range(with_nan, None, (1, 99)) == (lo, hi)
    pic = to_uint8(with_nan, lo, hi)
    assert pic.dtype == np.uint8 and not pic[:5].any()
    assert np.array_equal(pic[5:], to_uint8(finite[5:], lo, hi))
    assert to_uint8(np.array([np.inf, -np.inf]), 0.0, 1.0).tolist() == [255, 0]


def test_check_3d_shape_and_dataset_path():
    from totalseg_bids.core.bids import dataset_path, is_ct_name
    from totalseg_bids.core.nifti import check_3d_shape

    assert check_3d_shape((3, 4, 5, 1, 1)) == (3, 4, 5)
    for shape in ((3, 4), (3, 4, 5, 2)):
        with pytest.raises(errors.InputError, match="expected a 3D image"):
            check_3d_shape(shape, "x.nii.gz")
    assert dataset_path("/a/ds3/derivatives/crop/sub-03/anat/sub-03_T1w.nii.gz") == \
        "ds3/derivatives/crop/sub-03/anat/sub-03_T1w.nii.gz"
    assert is_ct_name("/a/ds3/sub-03/ct/sub-03_ct.nii.gz") and not is_ct_name("sub-03_CTA.nii.gz")


def test_config_with_only_absent_annexed_content_raises_annex_error(tmp_path):
    from totalseg_bids.core.config import load_config

    anat = tmp_path / "ds" / "sub-01" / "anat"
    anat.mkdir(parents=True)
    (anat / "sub-01_T1w.nii.gz").symlink_to("../../.git/annex/objects/XX/YY/SHA256E-s1--a/SHA256E-s1--a")
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"TYPE": "IMAGE", "DATASETS_PATH": str(tmp_path),
                               "TRAINING": ["ds/sub-01/anat/sub-01_T1w.nii.gz"]}))
    with pytest.raises(errors.AnnexContentMissingError, match="datalad get"):
        load_config(cfg).cases()
    cfg.write_text(json.dumps({"TYPE": "IMAGE", "DATASETS_PATH": str(tmp_path),
                               "TRAINING": ["ds/sub-01/anat/sub-01_T1w.nii.gz", "ds/sub-02/anat/x_T1w.nii.gz"]}))
    with pytest.raises(errors.InputError, match="2 config entries") as info:
        load_config(cfg).cases()
    assert not isinstance(info.value, errors.AnnexContentMissingError)
