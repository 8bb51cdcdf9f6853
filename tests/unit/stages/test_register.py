"""totalseg_bids.register: CT labels onto MRI grids.

Accuracy is measured against the phantoms' ground truth on each MRI grid
(oblique, sagittal, anisotropic, LPS/RAS, qform != sform); misalignment is the
known 4 mm / 3 degree rigid motion of ``misaligned_ds``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from support import FAKE_TOOLS, assert_one_line_error

from totalseg_bids import register as reg
from totalseg_bids.core import errors
from totalseg_bids.core.nifti import dice, load_label
from totalseg_bids.testing.anatomy import STRUCTURES
from totalseg_bids.testing.phantoms import misalignment_record


def _outputs(ds: Path, name: str = "sacrum", kind: str = "seg") -> list[Path]:
    return sorted((ds / "derivatives" / "reg-labels").rglob(f"*_label-{name}_{kind}.nii.gz"))


def _truth(ds: Path, out: Path) -> np.ndarray:
    rel = out.relative_to(ds / "derivatives" / "reg-labels")
    return load_label(ds / "derivatives" / "ground_truth" / rel).data


def _mri_of(ds: Path, out: Path) -> Path:
    rel = out.relative_to(ds / "derivatives" / "reg-labels")
    return ds / rel.parent / (out.name.split("_label-")[0] + ".nii.gz")


def _dices(ds: Path, name: str = "sacrum") -> dict[str, float]:
    return {o.name: dice(nib.load(o).get_fdata() > 0, _truth(ds, o)) for o in _outputs(ds, name)}


def _assert_on_mri_grid(ds: Path, out: Path) -> None:
    img, mri = nib.load(out), nib.load(_mri_of(ds, out))
    assert img.shape == mri.shape[:3]
    assert img.get_data_dtype() == np.uint8
    assert np.allclose(img.get_qform(), mri.affine, atol=1e-4)
    assert np.allclose(img.get_sform(), mri.affine, atol=1e-4)
    assert int(img.header["qform_code"]) == 1 and int(img.header["sform_code"]) == 1


# ------------------------------------------------------------------ pure helpers
def test_transform_conversion_round_trip():
    """An ITK (LPS) affine becomes the RAS matrix that moves the label the same way."""
    import SimpleITK as sitk

    tx = sitk.Euler3DTransform()
    tx.SetCenter([10.0, -5.0, 3.0])
    tx.SetRotation(0.05, -0.03, 0.02)
    tx.SetTranslation([2.0, -1.0, 4.0])
    m = reg.transform_to_ras(tx)
    p_ras = np.array([12.0, 7.0, -9.0])
    p_lps = p_ras * [-1, -1, 1]
    expect = np.array(tx.TransformPoint(p_lps.tolist())) * [-1, -1, 1]
    assert np.allclose(m[:3, :3] @ p_ras + m[:3, 3], expect, atol=1e-9)


def test_to_sitk_geometry_matches_nibabel(phantom_ds):
    """Voxel (i, j, k) lands at the same world point in both libraries (LPS sign flip)."""
    from totalseg_bids.core.nifti import load_image

    vol = load_image(phantom_ds / "sub-01/anat/sub-01_acq-sag_T2w.nii.gz")
    img = reg.to_sitk(vol.data, vol.affine)
    ijk = (5, 17, 9)
    ras = vol.affine[:3, :3] @ ijk + vol.affine[:3, 3]
    assert np.allclose(np.array(img.TransformIndexToPhysicalPoint(ijk)) * [-1, -1, 1], ras, atol=1e-6)
    assert img.GetPixel(*ijk) == pytest.approx(float(vol.data[ijk]))


def test_pick_ct_label_refuses_ambiguity():
    mri = reg.BidsName.parse("sub-01_acq-sag_T2w.nii.gz")
    cands = [Path("sub-01_acq-a_CT_label-s_seg.nii.gz"), Path("sub-01_acq-b_CT_label-s_seg.nii.gz")]
    with pytest.raises(errors.InputError, match="none match"):
        reg.pick_ct_label(mri, cands)
    run = reg.BidsName.parse("sub-01_run-2_T2w.nii.gz")
    runs = [Path("sub-01_run-1_CT_label-s_seg.nii.gz"), Path("sub-01_run-2_CT_label-s_seg.nii.gz")]
    assert reg.pick_ct_label(run, runs) == runs[1]


# ----------------------------------------------------------------- header mode
def test_header_reproduces_ground_truth_on_every_grid(phantom_ds, cli):
    """Aligned phantoms: header Dice >= 0.97 on oblique/sagittal/LPS/RAS/qform!=sform grids."""
    proc = cli("register", "--path-img", phantom_ds, "-j", "2")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    outs = _outputs(phantom_ds)
    assert len(lines) == len(outs) == 8  # sub-01, sub-02 x 2 sessions, sub-03; T1w + T2w
    assert {(r["stage"], r["status"]) for r in lines} == {("register", "written")}
    assert sorted(Path(r["path"]) for r in lines) == outs and all(r["method"] == "header" for r in lines)
    dices = _dices(phantom_ds)
    print("header Dice:", {k: round(v, 4) for k, v in dices.items()})
    assert min(dices.values()) >= 0.97, dices
    for out in outs:
        _assert_on_mri_grid(phantom_ds, out)
        side = json.loads(out.with_name(out.name.replace(".nii.gz", ".json")).read_text(encoding="utf-8"))
        mri_rel = _mri_of(phantom_ds, out).relative_to(phantom_ds).as_posix()
        assert side["SpatialReference"] == f"bids:raw:{mri_rel}"
        assert side["Sources"][0].startswith("bids:raw:derivatives/labels/") and side["Sources"][0].endswith(
            "_CT_label-sacrum_seg.nii.gz")
        assert side["Sources"][1].endswith("_CT.nii.gz") and side["Sources"][2] == f"bids:raw:{mri_rel}"
        gen = side["GeneratedBy"][0]
        assert gen["Name"] == "totalseg_bids.register" and gen["Method"] == "header"
        assert gen["Interpolation"] == "nearest"
    desc = json.loads((phantom_ds / "derivatives/reg-labels/dataset_description.json").read_text(encoding="utf-8"))
    assert desc["DatasetType"] == "derivative" and desc["GeneratedBy"][0]["Name"] == "totalseg_bids"
    # sessions are paired with their own CT
    ses2 = phantom_ds / "derivatives/reg-labels/sub-02/ses-02/anat"
    assert (ses2 / "sub-02_ses-02_T1w_label-sacrum_seg.nii.gz").is_file()


def test_rerun_skips_and_overwrite_redoes(phantom_ds):
    out = phantom_ds / "derivatives/reg-labels/sub-03/anat/sub-03_T1w_label-sacrum_seg.nii.gz"
    first = reg.register_dataset(phantom_ds, jobs=1)
    assert {r["status"] for r in first} == {"written"}
    mtime = out.stat().st_mtime_ns
    again = reg.register_dataset(phantom_ds, jobs=1)
    assert {r["status"] for r in again} == {"skipped"} and out.stat().st_mtime_ns == mtime
    # a killed run (mask without sidecar) is redone
    out.with_name(out.name.replace(".nii.gz", ".json")).unlink()
    redo = {Path(r["path"]).name: r["status"] for r in reg.register_dataset(phantom_ds, jobs=1)}
    assert redo[out.name] == "written" and list(redo.values()).count("written") == 1
    assert {r["status"] for r in reg.register_dataset(phantom_ds, jobs=1, overwrite=True)} == {"written"}


def test_interp_label_and_multiclass_by_name_and_value(phantom_ds):
    """Class extraction from the TotalSegmentator-like dseg (by name via its .tsv, by value)."""
    ids = {v: int(k) for k, v in
           (line.split("\t") for line in (phantom_ds / "derivatives/labels/sub-01/anat/"
                                          "sub-01_CT_label-total_dseg.tsv").read_text(encoding="utf-8").splitlines()[1:])}
    by_name = phantom_ds / "derivatives/by_name"
    by_value = phantom_ds / "derivatives/by_value"
    reg.register_dataset(phantom_ds, out=by_name, spec=reg.LabelSpec("vertebrae_L5", dseg="total"),
                         interp="label", jobs=1)
    reg.register_dataset(phantom_ds, out=by_value, contrasts=["T2w"], jobs=1,
                         spec=reg.LabelSpec("vertebraeL5", value=ids["vertebrae_L5"], dseg="total"))
    for out_root in (by_name, by_value):
        outs = sorted(out_root.rglob("*_label-vertebraeL5_seg.nii.gz"))
        assert len(outs) == (8 if out_root == by_name else 4)
        for out in outs:
            rel = out.relative_to(out_root)
            gt = load_label(phantom_ds / "derivatives/ground_truth" / rel).data
            d = dice(nib.load(out).get_fdata() > 0, gt)
            assert d >= 0.95, (out.name, d)
            assert set(np.unique(nib.load(out).get_fdata())) <= {0.0, 1.0}
    side = json.loads(next(by_value.rglob("*_seg.json")).read_text(encoding="utf-8"))
    assert side["GeneratedBy"][0]["LabelValue"] == ids["vertebrae_L5"]
    side = json.loads(next(by_name.rglob("*_seg.json")).read_text(encoding="utf-8"))
    assert side["GeneratedBy"][0]["Interpolation"] == "label"


def test_whole_dseg_and_bids_naming(phantom_ds, cli):
    proc = cli("register", "--path-img", phantom_ds, "--labels-dseg", "total", "--naming", "bids",
               "--contrasts", "T1w", "-j", "1")
    assert proc.returncode == 0, proc.stderr
    out = phantom_ds / "derivatives/reg-labels/sub-01/anat/sub-01_space-T1w_desc-total_dseg.nii.gz"
    data = np.asarray(nib.load(out).dataobj)
    table = (out.parent / "sub-01_space-T1w_desc-total_dseg.tsv").read_text(encoding="utf-8")
    assert "sacrum" in table and "index\tname" in table
    gt = np.asarray(nib.load(phantom_ds / "derivatives/ground_truth/sub-01/anat/"
                             "sub-01_T1w_label-phantom_dseg.nii.gz").dataobj)
    classes = {int(a): b for a, b in (line.split("\t") for line in table.splitlines()[1:])}
    assert set(np.unique(data)) - {0} == set(classes)
    # each class lands on the matching ground-truth structure (phantom dseg: index in STRUCTURES + 1)
    for value, name in classes.items():
        assert dice(data == value, gt == STRUCTURES.index(name) + 1) >= 0.95, name


def test_reads_bids_named_ct_labels(phantom_ds):
    """CT labels spelled the strict-BIDS way (space-CT, _mask / desc-_dseg) are found too."""
    for lab in (phantom_ds / "derivatives/labels").rglob("*_CT_label-*"):
        name = lab.name.replace("_CT_label-sacrum_seg", "_space-CT_label-sacrum_mask").replace(
            "_CT_label-total_dseg", "_space-CT_desc-total_dseg")
        lab.rename(lab.with_name(name))
    res = reg.register_dataset(phantom_ds, contrasts=["T1w"], jobs=1)
    assert len(res) == 4 and all(r["ct_label"].endswith("_space-CT_label-sacrum_mask.nii.gz") for r in res)
    assert min(_dices(phantom_ds).values()) >= 0.97
    out = phantom_ds / "derivatives/l5"
    res = reg.register_dataset(phantom_ds, out=out, contrasts=["T1w"], jobs=1,
                               spec=reg.LabelSpec("vertebrae_L5"))
    assert all(r["ct_label"].endswith("_space-CT_desc-total_dseg.nii.gz") for r in res)
    side = json.loads(next(out.rglob("*_seg.json")).read_text(encoding="utf-8"))
    assert side["Sources"][1].endswith("_CT.nii.gz")  # the CT image found from the bids name


def test_annexed_input_without_content(phantom_ds, cli):
    """A datalad file whose content is absent: the run stops before any work with one
    line naming it and `datalad get`, so a re-run after the get does it all."""
    mri = phantom_ds / "sub-03/anat/sub-03_T1w.nii.gz"
    mri.unlink()
    mri.symlink_to("../../.git/annex/objects/XX/YY/SHA256E-s1--abc.nii.gz/SHA256E-s1--abc.nii.gz")
    proc = cli("register", "--path-img", phantom_ds, "--contrasts", "T1w", "-j", "1")
    assert_one_line_error(proc, str(mri), "datalad get")
    assert len(_outputs(phantom_ds)) == 0


def test_datalad_save_once_per_batch(phantom_ds, monkeypatch):
    """--datalad-save: one save call for the batch, listing masks, sidecars and the description."""
    calls = []
    monkeypatch.setattr(reg.batch, "save_outputs", lambda ds, paths, msg: calls.append((ds, list(paths), msg)))
    reg.register_dataset(phantom_ds, contrasts=["T2w"], jobs=1, datalad_save=True)
    assert len(calls) == 1
    files = {Path(p).name for p in calls[0][1]}
    assert "dataset_description.json" in files and len([f for f in files if f.endswith("_seg.json")]) == 4
    reg.register_dataset(phantom_ds, contrasts=["T2w"], jobs=1, datalad_save=True)
    assert len(calls) == 1  # nothing new written, nothing to save


def test_own_mri_label_is_used_and_resampled(phantom_ds):
    """Legacy layout: an MRI that has its own label gets it (resampled only if its grid differs)."""
    labels = phantom_ds / "derivatives/labels/sub-03/anat"
    gt = phantom_ds / "derivatives/ground_truth/sub-03/anat/sub-03_T1w_label-sacrum_seg.nii.gz"
    own = labels / "sub-03_T1w_label-sacrum_seg.nii.gz"
    shutil.copy(gt, own)
    g2 = nib.load(phantom_ds / "derivatives/ground_truth/sub-03/anat/sub-03_acq-sag_T2w_label-sacrum_seg.nii.gz")
    # the T2w's own label on a 2x finer grid: must be resampled onto the T2w grid
    fine = g2.affine.copy()
    fine[:3, :3] /= 2
    fine[:3, 3] -= (g2.affine[:3, :3] @ [0.25, 0.25, 0.25])
    from totalseg_bids.core.nifti import Grid, resample_label, save_mask
    data = resample_label(np.asarray(g2.dataobj), g2.affine, Grid(tuple(2 * s for s in g2.shape), fine))
    save_mask(data, fine, labels / "sub-03_acq-sag_T2w_label-sacrum_seg.nii.gz")
    # by default the CT label is transferred, whatever sits next to it
    default = {Path(r["mri"]).name: r for r in reg.register_dataset(phantom_ds, jobs=1,
                                                                     out=phantom_ds / "ct-only")}
    assert default["sub-03_T1w.nii.gz"]["method"] == "header"
    # asked for: a label already on the MRI (no sidecar: origin unknown, accepted by "any")
    results = {Path(r["mri"]).name: r for r in reg.register_dataset(phantom_ds, jobs=1,
                                                                     mri_label_origins=["any"])}
    r1 = results["sub-03_T1w.nii.gz"]
    assert r1["method"] == "own-label" and r1["ct_label"] == str(own)
    out1 = Path(r1["path"])
    assert np.array_equal(np.asarray(nib.load(out1).dataobj), np.asarray(nib.load(gt).dataobj))
    out2 = Path(results["sub-03_acq-sag_T2w.nii.gz"]["path"])
    _assert_on_mri_grid(phantom_ds, out2)
    assert dice(np.asarray(nib.load(out2).dataobj), np.asarray(g2.dataobj)) >= 0.97
    assert results["sub-01_T1w.nii.gz"]["method"] == "header"
    side = json.loads(out1.with_name(out1.name.replace(".nii.gz", ".json")).read_text(encoding="utf-8"))
    assert side["GeneratedBy"][0]["LabelOrigin"] == "unknown"


def test_mri_label_used_by_generated_by_not_folder(phantom_ds, tmp_path):
    """The sidecar's GeneratedBy decides; a planted empty mask is refused, never copied."""
    from totalseg_bids.core.derivatives import generated_by, write_sidecar

    labels = phantom_ds / "derivatives/labels/sub-01/anat"
    gt = phantom_ds / "derivatives/ground_truth/sub-01/anat/sub-01_T1w_label-sacrum_seg.nii.gz"
    own = labels / "sub-01_T1w_label-sacrum_seg.nii.gz"
    shutil.copy(gt, own)
    mri = phantom_ds / "sub-01/anat/sub-01_T1w.nii.gz"
    write_sidecar(own, [mri], [generated_by("nnUNetv2", version="2.8")], raw_root=phantom_ds)
    out = tmp_path / "a"
    manual_only = {Path(r["mri"]).name: r for r in reg.register_dataset(
        phantom_ds, out=out, contrasts=["T1w"], jobs=1, mri_label_origins=["Manual"])}
    assert manual_only["sub-01_T1w.nii.gz"]["method"] == "header"  # an nnU-Net label is not a manual one
    nn = {Path(r["mri"]).name: r for r in reg.register_dataset(
        phantom_ds, out=tmp_path / "b", contrasts=["T1w"], jobs=1, mri_label_origins=["nnU-Net"])}
    assert nn["sub-01_T1w.nii.gz"]["method"] == "own-label"
    img = nib.load(own)
    nib.save(nib.Nifti1Image(np.zeros(img.shape, np.uint8), img.affine), own)  # planted empty mask
    with pytest.raises(Exception, match="sub-01_T1w"):
        reg.register_dataset(phantom_ds, out=tmp_path / "c", contrasts=["T1w"], jobs=1,
                             mri_label_origins=["nnU-Net"])
    with pytest.raises(Exception, match="empty"):
        reg.transfer_label(own, mri, tmp_path / "d.nii.gz", own_label=True)
    assert not (tmp_path / "c/sub-01/anat/sub-01_T1w_label-sacrum_seg.nii.gz").exists()


@pytest.mark.slow
def test_jobs_two_equals_jobs_one(misaligned_ds, tmp_path):
    """-j 2 writes byte-identical label data (and transforms) to -j 1, rigid included."""
    a, b = tmp_path / "j1", tmp_path / "j2"
    reg.register_dataset(misaligned_ds, out=a, method="rigid", contrasts=["T2w"], jobs=1)
    reg.register_dataset(misaligned_ds, out=b, method="rigid", contrasts=["T2w"], jobs=2)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.suffix in (".gz", ".txt"))
    assert len(files) == 4
    for rel in files:
        if rel.suffix == ".txt":
            assert (a / rel).read_text(encoding="utf-8") == (b / rel).read_text(encoding="utf-8")
        else:
            ia, ib = nib.load(a / rel), nib.load(b / rel)
            assert np.array_equal(np.asarray(ia.dataobj), np.asarray(ib.dataobj))
            assert np.array_equal(ia.affine, ib.affine)


# --------------------------------------------------------------- rigid / affine
@pytest.mark.slow
def test_rigid_recovers_misalignment(misaligned_ds, cli, tmp_path):
    """4 mm / 3 degree motion: rigid Dice >= 0.90 and clearly above header; transform re-applies."""
    import SimpleITK as sitk

    assert json.loads(misalignment_record(misaligned_ds).read_text(encoding="utf-8"))["subjects"][0]["misaligned"]
    header_out = tmp_path / "header"
    reg.register_dataset(misaligned_ds, out=header_out, jobs=2)
    header = {o.name: dice(nib.load(o).get_fdata() > 0, load_label(
        misaligned_ds / "derivatives/ground_truth" / o.relative_to(header_out)).data)
        for o in header_out.rglob("*_seg.nii.gz")}
    proc = cli("register", "--path-img", misaligned_ds, "--method", "rigid", "-j", "2")
    assert proc.returncode == 0, proc.stderr
    rigid = _dices(misaligned_ds)
    print("header Dice:", {k: round(v, 4) for k, v in header.items()})
    print("rigid Dice:", {k: round(v, 4) for k, v in rigid.items()},
          "seconds:", [json.loads(x)["seconds"] for x in proc.stdout.splitlines()])
    assert set(rigid) == set(header) and len(rigid) == 4
    for name, d in rigid.items():
        assert d >= 0.90 and d >= header[name] + 0.04, (name, d, header[name])
    out = _outputs(misaligned_ds)[0]
    _assert_on_mri_grid(misaligned_ds, out)
    xfm = out.with_name(out.name.replace(".nii.gz", "_xfm.txt"))
    side = json.loads(out.with_name(out.name.replace(".nii.gz", ".json")).read_text(encoding="utf-8"))
    gen = side["GeneratedBy"][0]
    assert gen["Method"] == "rigid" and gen["TransformFile"] == xfm.name
    assert gen["SimpleITKVersion"] == sitk.Version_VersionString()
    # re-applying the saved transform with plain SimpleITK reproduces the output
    mri = sitk.ReadImage(str(_mri_of(misaligned_ds, out)))
    rel = out.relative_to(misaligned_ds / "derivatives/reg-labels")
    ct_lab = (misaligned_ds / "derivatives/labels" / rel.parent
              / (out.name.split("_")[0] + "_CT_label-sacrum_seg.nii.gz"))
    moved = sitk.Resample(sitk.ReadImage(str(ct_lab)), mri, sitk.ReadTransform(str(xfm)), sitk.sitkNearestNeighbor)
    again = sitk.GetArrayFromImage(moved).transpose(2, 1, 0)
    assert dice(again, np.asarray(nib.load(out).dataobj)) >= 0.97


@pytest.mark.slow
def test_affine_and_interp_label_api(misaligned_ds, tmp_path):
    sub = misaligned_ds / "sub-02/anat"
    lab = misaligned_ds / "derivatives/labels/sub-02/anat/sub-02_CT_label-sacrum_seg.nii.gz"
    out = tmp_path / "sub-02/anat/sub-02_T1w_label-sacrum_seg.nii.gz"
    res = reg.transfer_label(lab, sub / "sub-02_T1w.nii.gz", out, method="affine", interp="label",
                             ct_image=sub / "sub-02_CT.nii.gz")
    gt = load_label(misaligned_ds / "derivatives/ground_truth/sub-02/anat/sub-02_T1w_label-sacrum_seg.nii.gz").data
    d = dice(np.asarray(nib.load(out).dataobj), gt)
    print("affine + interp label Dice:", round(d, 4), "seconds:", res.seconds)
    assert d >= 0.90 and res.method == "affine" and Path(res.transform).is_file()
    assert (tmp_path / "dataset_description.json").is_file()


# ------------------------------------------------------------------------ sct
@pytest.mark.slow
def test_sct_mode_with_mimic(phantom_ds, cli, tmp_path):
    """spinalcordtoolbox cannot run here: tests/support/fake_tools/sct_register_multimodal mimics its
    documented behaviour (header resampling for -identity 1, float32 output, *_inv and
    warp_* side files). We check the exact call, that no side file survives, and our writer."""
    log_file = tmp_path / "sct.log"
    env = {"PATH": f"{FAKE_TOOLS}{os.pathsep}{os.environ['PATH']}", "FAKE_SCT_LOG": str(log_file)}
    proc = cli("register", "--path-img", phantom_ds, "--method", "sct", "--contrasts", "T2w", "-j", "1", env=env)
    assert proc.returncode == 0, proc.stderr
    calls = [json.loads(x) for x in log_file.read_text(encoding="utf-8").splitlines()]
    assert len(calls) == 4
    argv = calls[0]["argv"]
    assert argv[argv.index("-identity") + 1] == "1" and argv[argv.index("-x") + 1] == "nn"
    assert argv[argv.index("-i") + 1].endswith("_CT_label-sacrum_seg.nii.gz")
    assert argv[argv.index("-d") + 1].endswith("_T2w.nii.gz")
    assert not Path(calls[0]["cwd"]).exists()  # scratch folder removed with its side files
    assert not list(phantom_ds.rglob("warp_*")) and not list(phantom_ds.rglob("*_inv.nii.gz"))
    dices = _dices(phantom_ds)
    print("sct (mimic) Dice:", {k: round(v, 4) for k, v in dices.items()})
    assert len(dices) == 4 and min(dices.values()) >= 0.97
    for out in _outputs(phantom_ds):
        _assert_on_mri_grid(phantom_ds, out)
    side = json.loads(next((phantom_ds / "derivatives/reg-labels").rglob("*_seg.json")).read_text(encoding="utf-8"))
    assert side["GeneratedBy"][0]["Method"] == "sct"


def test_sct_missing_is_one_line_error(phantom_ds, cli):
    env = {"PATH": os.path.dirname(sys.executable)}
    proc = cli("register", "--path-img", phantom_ds, "--method", "sct", env=env)
    assert_one_line_error(proc, "sct_register_multimodal", "spinalcordtoolbox")
    assert not (phantom_ds / "derivatives/reg-labels").exists()


# ------------------------------------------------------------------ bad input
def test_missing_ct_label_one_line_error_and_others_continue(phantom_ds, cli):
    lab = phantom_ds / "derivatives/labels/sub-03/anat/sub-03_CT_label-sacrum_seg.nii.gz"
    lab.unlink()
    (phantom_ds / "derivatives/labels/sub-03/anat/sub-03_CT_label-total_dseg.nii.gz").unlink()
    proc = cli("register", "--path-img", phantom_ds, "--contrasts", "T1w", "-j", "1")
    assert_one_line_error(proc, str(lab), "no CT label", "sub-03_T1w.nii.gz")
    assert len(_outputs(phantom_ds)) == 3  # sub-01, sub-02 x 2 done


def test_library_batch_error_carries_the_completed_records(phantom_ds):
    """One MRI without its CT label: one BatchError naming it, the other records in ``.done``
    and their labels written."""
    (phantom_ds / "derivatives/labels/sub-03/anat/sub-03_CT_label-sacrum_seg.nii.gz").unlink()
    (phantom_ds / "derivatives/labels/sub-03/anat/sub-03_CT_label-total_dseg.nii.gz").unlink()
    options = reg.RegisterOptions(contrasts=("T1w",), jobs=1)
    with pytest.raises(errors.BatchError) as info:
        reg.register_dataset(phantom_ds, options=options)
    assert [item for item, _ in info.value.failures] == ["sub-03_T1w.nii.gz"]
    done = info.value.done
    assert sorted(Path(r["path"]) for r in done) == _outputs(phantom_ds) and len(done) == 3
    assert all(r["status"] == "written" and Path(r["path"]).is_file() for r in done)
    with pytest.raises(TypeError, match="not both"):
        reg.register_dataset(phantom_ds, options=options, jobs=2)


def test_missing_input_folder(tmp_path, cli):
    missing = tmp_path / "nope"
    assert_one_line_error(cli("register", "--path-img", missing), str(missing))


def test_corrupt_ct_label(phantom_ds, cli):
    lab = phantom_ds / "derivatives/labels/sub-01/anat/sub-01_CT_label-sacrum_seg.nii.gz"
    lab.write_bytes(lab.read_bytes()[:200])
    before = lab.read_bytes()
    proc = cli("register", "--path-img", phantom_ds, "--contrasts", "T1w", "-j", "1")
    assert_one_line_error(proc, str(lab))
    assert lab.read_bytes() == before
    assert not (phantom_ds / "derivatives/reg-labels/sub-01").exists()
    assert len(_outputs(phantom_ds)) == 3


def test_absent_label_value(phantom_ds, cli):
    proc = cli("register", "--path-img", phantom_ds, "--labels-dseg", "total", "--label-value", "200",
               "--label-name", "nothing", "--contrasts", "T1w", "-j", "1")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    errs = [x for x in proc.stderr.splitlines() if ": error: " in x]
    assert any("label value 200 is absent" in e and "_CT_label-total_dseg.nii.gz" in e for e in errs)
    assert not _outputs(phantom_ds, "nothing")


def test_explicit_pair_of_different_subjects(phantom_ds, cli):
    lab = phantom_ds / "derivatives/labels/sub-02/ses-01/anat/sub-02_ses-01_CT_label-sacrum_seg.nii.gz"
    mri = phantom_ds / "sub-01/anat/sub-01_T1w.nii.gz"
    proc = cli("register", "--path-img", phantom_ds, "--mri", mri, "--ct-label", lab)
    assert_one_line_error(proc, str(lab), "sub-02", "sub-01")
    ok = cli("register", "--path-img", phantom_ds, "--mri", mri,
             "--ct-label", phantom_ds / "derivatives/labels/sub-01/anat/sub-01_CT_label-sacrum_seg.nii.gz")
    assert ok.returncode == 0 and len(ok.stdout.splitlines()) == 1


def test_non_overlapping_grids_geometry_error(phantom_ds, tmp_path):
    lab = phantom_ds / "derivatives/labels/sub-01/anat/sub-01_CT_label-sacrum_seg.nii.gz"
    img = nib.load(lab)
    far = img.affine.copy()
    far[:3, 3] += 2000.0
    moved = tmp_path / "sub-01_CT_label-sacrum_seg.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), far), moved)
    with pytest.raises(errors.GeometryError, match="do not overlap"):
        reg.transfer_label(moved, phantom_ds / "sub-01/anat/sub-01_T1w.nii.gz", tmp_path / "o.nii.gz")
    assert not (tmp_path / "o.nii.gz").exists()


def test_empty_and_edge_warnings_in_sidecar(phantom_ds, tmp_path):
    lab = phantom_ds / "derivatives/labels/sub-01/anat/sub-01_CT_label-sacrum_seg.nii.gz"
    img = nib.load(lab)
    data = np.zeros(img.shape, np.uint8)
    data[:3] = 1  # a slab at the CT's side (|x| ~ 88 mm), outside the sagittal T2w's +-48 mm
    empty_in = tmp_path / "sub-01_CT_label-sacrum_seg.nii.gz"
    nib.save(nib.Nifti1Image(data, img.affine), empty_in)
    mri = phantom_ds / "sub-01/anat/sub-01_acq-sag_T2w.nii.gz"
    out = tmp_path / "sub-01/anat/sub-01_acq-sag_T2w_label-sacrum_seg.nii.gz"
    res = reg.transfer_label(empty_in, mri, out)
    assert res.flags == {"EmptyLabel": True}
    sidecar = out.with_name(out.name.replace(".nii.gz", ".json"))
    assert json.loads(sidecar.read_text(encoding="utf-8"))["EmptyLabel"] is True
    data[:] = 1  # fills the whole MRI field of view
    nib.save(nib.Nifti1Image(data, img.affine), empty_in)
    res = reg.transfer_label(empty_in, mri, out, overwrite=True)
    assert res.flags == {"TouchesFieldOfViewEdge": True}
    side = json.loads(out.with_name(out.name.replace(".nii.gz", ".json")).read_text(encoding="utf-8"))
    assert side["TouchesFieldOfViewEdge"] is True and "EmptyLabel" not in side


def test_usage_errors(phantom_ds, cli):
    proc = cli("register", "--path-img", phantom_ds, "--label-value", "25")
    assert proc.returncode == 2 and "usage:" in proc.stderr and "--label-name" in proc.stderr
    assert cli("register", "--path-img", phantom_ds, "--method", "warp").returncode == 2


# ------------------------------------------------------------------------ QC
def test_qc_hook_contract(phantom_ds, tmp_path):
    """One report entry per written output, naming the MRI, the label and the CT label it came from;
    a QC folder that cannot be written is a warning, never a failed transfer."""
    qc = tmp_path / "qc"
    results = reg.register_dataset(phantom_ds, out=tmp_path / "out", contrasts=["T1w"], jobs=1, qc_dir=qc)
    records = [json.loads(f.read_text(encoding="utf-8")) for f in sorted((qc / "entries").glob("*.json"))]
    assert len(records) == len(results) == 4
    assert {Path(r["label"]) for r in records} == {Path(r["path"]) for r in results}
    for rec in records:
        assert rec["stage"] == "register" and rec["image"].endswith("_T1w.nii.gz")
        assert rec["compare_label"].endswith("_CT_label-sacrum_seg.nii.gz") and rec["meta"]["method"] == "header"
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the QC folder should be", encoding="utf-8")
    again = reg.register_dataset(phantom_ds, out=tmp_path / "out2", contrasts=["T1w"], jobs=1, qc_dir=blocked)
    assert [r["status"] for r in again] == ["written"] * 4


def test_qc_real_module(phantom_ds, tmp_path, cli):
    pytest.importorskip("totalseg_bids.qc")
    qc = tmp_path / "qc"
    proc = cli("register", "--path-img", phantom_ds, "--contrasts", "T2w", "-j", "1", "--qc", qc)
    assert proc.returncode == 0, proc.stderr
    assert qc.is_dir() and any(qc.rglob("*.json"))
