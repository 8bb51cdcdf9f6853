"""bidsify: each publisher layout (phantom) -> BIDS that keeps world geometry,
labels and label tables, passes the BIDS validator, resumes, and refuses bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from support import REPO, assert_one_line_error, run_module, series_volume, tree_digest

from totalseg_bids.bidsify import main
from totalseg_bids.bidsify.geometry import corner_world, read_volume
from totalseg_bids.testing.layouts import write_layout

VALIDATOR = shutil.which("bids-validator-deno")


def validator_errors(root: Path) -> tuple[list, dict]:
    proc = subprocess.run([VALIDATOR, "-r", "--format", "json", str(root)], capture_output=True, encoding="utf-8",
                          errors="replace", timeout=600)
    report = json.loads(proc.stdout)
    raw = [i["code"] for i in report["issues"]["issues"] if i["severity"] == "error"]
    deriv = {k: [i["code"] for i in s["issues"]["issues"] if i["severity"] == "error"]
             for k, s in (report.get("derivativesSummary") or {}).items()}
    return raw, deriv


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    root = tmp_path_factory.mktemp("layouts")
    return {name: write_layout(name, root / name, subjects=2)
            for name in ("synthrad2023", "synthrad2025", "mrspineseg", "spider", "totalsegmentator", "goldatlas")}


def bidsify(source: str, src: Path, out: Path, *extra: str) -> Path:
    assert main(["--source", source, "--in", str(src), "--out", str(out), "-j", "1", "-q", *extra]) == 0
    return out


def assert_same_world(source: Path, output: Path) -> None:
    data, affine, _ = read_volume(source)
    img = nib.load(str(output))
    assert img.shape == data.shape
    np.testing.assert_allclose(corner_world(img.shape, img.affine), corner_world(data.shape, affine), atol=1e-4)
    np.testing.assert_array_equal(np.asanyarray(img.dataobj), data)


@pytest.mark.parametrize("source,layout,extra", [
    ("synthrad2023", "synthrad2023", ()), ("synthrad2023", "synthrad2025", ("--mr-suffix", "T1w")),
    ("mrspineseg", "mrspineseg", ("--classes", "sacrum")), ("spider", "spider", ()),
    ("totalsegmentator", "totalsegmentator", ()), ("goldatlas", "goldatlas", ("--classes", "sacrum"))])
def test_layout_converts_valid_and_resumes(layouts, tmp_path, source, layout, extra):
    src = layouts[layout]
    before = tree_digest(src)
    out = bidsify(source, src, tmp_path / "bids", "--naming", "bids", *extra)
    assert tree_digest(src) == before
    plan = json.loads((out / "code" / "bidsify.json").read_text(encoding="utf-8"))
    assert plan["files"] and plan["source"] == source
    participants = (out / "participants.tsv").read_text(encoding="utf-8").splitlines()
    assert participants[0].startswith("participant_id\tsource_id")
    assert len(participants) == 3
    if VALIDATOR:
        raw, deriv = validator_errors(out)
        assert raw == []
        assert all(v == [] for v in deriv.values()), deriv
    stamp = {p: p.stat().st_mtime_ns for p in out.rglob("*.nii.gz")}
    bidsify(source, src, out, "--naming", "bids", *extra)  # resume: nothing redone
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.nii.gz")} == stamp


def test_world_geometry_kept_for_oblique_mha_and_lps_nifti(layouts, tmp_path):
    spider = bidsify("spider", layouts["spider"], tmp_path / "spider")
    src = layouts["spider"] / "images" / "2_t2_SPACE.mha"
    assert_same_world(src, spider / "sub-002/anat/sub-002_acq-SPACE_T2w.nii.gz")
    assert_same_world(layouts["spider"] / "masks" / "2_t2_SPACE.mha",
                      spider / "derivatives/labels/sub-002/anat/sub-002_acq-SPACE_T2w_label-spine_dseg.nii.gz")
    lps = nib.load(str(layouts["synthrad2023"] / "Task1/pelvis/1PA002/ct.nii.gz"))
    assert nib.aff2axcodes(lps.affine) == ("L", "P", "S")
    syn = bidsify("synthrad2023", layouts["synthrad2023"], tmp_path / "syn")
    assert_same_world(layouts["synthrad2023"] / "Task1/pelvis/1PA002/ct.nii.gz",
                      syn / "sub-1PA002/anat/sub-1PA002_CT.nii.gz")
    # MR contrast read from the overview spreadsheet
    assert (syn / "sub-1PA001/anat/sub-1PA001_T1w.nii.gz").is_file()
    assert (syn / "sub-1PA002/anat/sub-1PA002_T2w.nii.gz").is_file()
    side = json.loads((syn / "sub-1PA002/anat/sub-1PA002_CT.json").read_text(encoding="utf-8"))
    assert side["Sources"][0].endswith("Task1/pelvis/1PA002/ct.nii.gz")


def test_mrspineseg_masks_snapped_to_image_grid_and_sacrum_by_name(layouts, tmp_path):
    out = bidsify("mrspineseg", layouts["mrspineseg"], tmp_path / "b", "--classes", "sacrum")
    anat = out / "derivatives/labels/sub-001/anat"
    image = nib.load(str(out / "sub-001/anat/sub-001_T2w.nii.gz"))
    dseg = nib.load(str(anat / "sub-001_T2w_label-spine_dseg.nii.gz"))
    np.testing.assert_array_equal(dseg.affine, image.affine)
    np.testing.assert_array_equal(dseg.get_qform(), dseg.get_sform())
    table = (anat / "sub-001_T2w_label-spine_dseg.tsv").read_text(encoding="utf-8").splitlines()
    assert table[:3] == ["index\tname", "1\tsacrum", "2\tL5"]
    sacrum = np.asanyarray(nib.load(str(anat / "sub-001_T2w_label-sacrum_seg.nii.gz")).dataobj)
    np.testing.assert_array_equal(sacrum, np.asanyarray(dseg.dataobj) == 1)
    assert sacrum.sum() > 100
    side = json.loads((anat / "sub-001_T2w_label-spine_dseg.json").read_text(encoding="utf-8"))
    assert "0.300 mm" in side["GeometryCorrection"]


@pytest.mark.skipif(shutil.which("dcm2niix") is None, reason="dcm2niix not installed")
def test_goldatlas_series_split_and_rtstruct_filled_on_the_ct(layouts, tmp_path):
    """Mixed DICOM files split into CT, T1w, T2w and the deformed CT; each RTSTRUCT
    ROI filled onto the CT it references, in patient coordinates."""
    import pydicom

    from totalseg_bids.core.nifti import Grid, dice
    from totalseg_bids.testing.anatomy import phantom_grids
    from totalseg_bids.testing.layouts.common import subject

    src = layouts["goldatlas"]
    rs = pydicom.dcmread(src / "1_01_P" / "RS.consensus.dcm")
    referenced = {img.ReferencedSOPInstanceUID for roi in rs.ROIContourSequence for c in roi.ContourSequence
                  for img in c.ContourImageSequence}
    ct_uids = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in (src / "1_01_P").glob("CT.*")}
    assert referenced and referenced <= ct_uids  # each contour names the CT slice it was drawn on
    out = bidsify("goldatlas", src, tmp_path / "b")
    for i, sub in enumerate(("101", "102")):
        anat, grids = out / f"sub-{sub}/anat", phantom_grids(i, 2.0)
        for name, key in (("CT", "CT"), ("T1w", "T1w"), ("T2w", "T2w"), ("acq-deformed_CT", "T2w")):
            img = nib.load(str(anat / f"sub-{sub}_{name}.nii.gz"))
            # the same voxel centres in world space as the phantom's grid, whatever voxel order dcm2niix chose
            np.testing.assert_allclose(np.sort(corner_world(img.shape, img.affine), axis=0),
                                       np.sort(corner_world(grids[key].shape, grids[key].affine), axis=0), atol=0.01)
        ct = nib.load(str(anat / f"sub-{sub}_CT.nii.gz"))
        _, truth, _ = subject(i, 0, "CT", Grid(ct.shape, ct.affine))  # phantom anatomy on the output grid
        labels = out / f"derivatives/labels/sub-{sub}/anat"
        for roi, value in (("sacrum", 1), ("l5", 2)):
            seg = nib.load(str(labels / f"sub-{sub}_CT_label-{roi}_seg.nii.gz"))
            np.testing.assert_array_equal(seg.affine, ct.affine)
            assert dice(np.asanyarray(seg.dataobj) > 0, truth == value) > 0.98
        side = json.loads((labels / f"sub-{sub}_CT_label-sacrum_seg.json").read_text(encoding="utf-8"))
        assert side["ROIName"] == "Sacrum" and side["Sources"] == [f"bids:raw:sub-{sub}/anat/sub-{sub}_CT.nii.gz"]
    rows = (out / "participants.tsv").read_text(encoding="utf-8").splitlines()
    assert rows[1].split("\t")[:2] == ["sub-101", "1_01_P"]


def test_rtstruct_contours_fill_voxel_centres_with_holes():
    """Even-odd filling: an inner contour on the same slice is a hole, on any slice axis."""
    from totalseg_bids.bidsify.rtstruct import rasterise

    affine = np.diag([-2.0, -2.0, 3.0, 1.0])  # LPS voxel axes: world LPS = (2i, 2j, 3k)

    def square(lo, hi, k):
        return np.array([[lo, lo, k], [hi, lo, k], [hi, hi, k], [lo, hi, k]], float) * [2, 2, 3]

    mask = rasterise([square(0.5, 6.5, 2), square(2.5, 4.5, 2)], (8, 8, 4), affine, "x")
    assert mask[:, :, 2].sum() == 36 - 4 and not mask[3, 3, 2] and mask[1, 1, 2] and mask.sum() == 32
    with pytest.raises(ValueError, match="does not lie on a slice"):
        rasterise([square(0.5, 6.5, 2.5)], (8, 8, 4), affine, "x")


def test_totalsegmentator_dseg_classes_and_meta(layouts, tmp_path):
    out = bidsify("totalsegmentator", layouts["totalsegmentator"], tmp_path / "b")
    anat = out / "derivatives/labels/sub-s0000/anat"
    dseg = np.asanyarray(nib.load(str(anat / "sub-s0000_CT_label-total_dseg.nii.gz")).dataobj)
    tsv = (anat / "sub-s0000_CT_label-total_dseg.tsv").read_text(encoding="utf-8")
    table = dict(line.split("\t")[::-1] for line in tsv.splitlines()[1:])
    truth = np.asanyarray(nib.load(str(layouts["totalsegmentator"] / "s0000/segmentations/sacrum.nii.gz")).dataobj)
    np.testing.assert_array_equal(dseg == int(table["sacrum"]), truth > 0)
    rows = (out / "participants.tsv").read_text(encoding="utf-8").splitlines()
    assert rows[0].split("\t") == ["participant_id", "source_id", "age", "gender", "institute", "study_type", "split"]
    assert rows[1].split("\t")[-1] == "test"


def test_dry_run_writes_nothing(layouts, tmp_path):
    proc = run_module("bidsify", "--source", "spider", "--in", layouts["spider"], "--out", tmp_path / "b", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert {r["stage"] for r in records} == {"bidsify"} and {r["status"] for r in records} == {"planned"}
    assert {"source": str(layouts["spider"].resolve() / "images" / "2_t2_SPACE.mha"),
            "path": str((tmp_path / "b").resolve() / "sub-002/anat/sub-002_acq-SPACE_T2w.nii.gz")} in [
        {"source": r.get("source"), "path": r["path"]} for r in records]
    assert records[-1]["kind"] == "dataset" and records[-1]["files"] == len(records) - 1
    assert "2_t2_SPACE.mha\t->\tsub-002/anat/sub-002_acq-SPACE_T2w.nii.gz" in proc.stderr  # the table, for people
    assert not (tmp_path / "b").exists()


def test_bad_inputs_one_line_nothing_written(layouts, tmp_path):
    src = tmp_path / "spider"
    shutil.copytree(layouts["spider"], src)
    (src / "images" / "1_t1.mha").unlink()
    before = tree_digest(src)
    proc = run_module("bidsify", "--source", "spider", "--in", src, "--out", tmp_path / "o")
    assert_one_line_error(proc, "1_t1.mha", "mask on no image")
    assert not (tmp_path / "o").exists() and tree_digest(src) == before
    proc = run_module("bidsify", "--source", "nosuch", "--in", src, "--out", tmp_path / "o")
    assert_one_line_error(proc, "unknown --source", code=2)
    # no overview and no --mr-suffix: refused, never guessed
    proc = run_module("bidsify", "--source", "synthrad2023", "--in", layouts["synthrad2025"], "--out", tmp_path / "o")
    assert_one_line_error(proc, "--mr-suffix", code=2)
    bad = tmp_path / "ts"
    shutil.copytree(layouts["totalsegmentator"], bad)
    (bad / "s0001" / "ct.nii.gz").write_bytes(b"not a nifti")
    proc = run_module("bidsify", "--source", "totalsegmentator", "--in", bad, "--out", tmp_path / "o2", "-j", "1")
    assert_one_line_error(proc, "s0001/ct.nii.gz")
    assert not list((tmp_path / "o2").rglob("sub-s0001*.nii.gz"))
    assert not list((tmp_path / "o2").rglob(".tmp-*"))
    written = [json.loads(line) for line in proc.stdout.splitlines()]  # the good subject's files, still reported
    assert written and all(r["status"] == "written" and "sub-s0000" in r["path"] for r in written)


def test_library_batch_with_one_bad_file_raises_once_keeping_the_good_files(layouts, tmp_path):
    from totalseg_bids.bidsify import bidsify as convert
    from totalseg_bids.bidsify.options import BidsifyOptions
    from totalseg_bids.core.errors import BatchError

    bad = tmp_path / "ts"
    shutil.copytree(layouts["totalsegmentator"], bad)
    (bad / "s0001" / "ct.nii.gz").write_bytes(b"not a nifti")
    out = tmp_path / "b"
    with pytest.raises(BatchError) as caught:
        convert("totalsegmentator", bad, out, BidsifyOptions(jobs=1, naming="bids"))
    exc = caught.value
    assert "sub-s0001/anat/sub-s0001_CT.nii.gz" in [item for item, _ in exc.failures]
    assert all("sub-s0001" in item for item, _ in exc.failures) and "s0001/ct.nii.gz" in exc.failures[0][1]
    assert exc.done and all(r["status"] == "written" and "sub-s0000" in r["path"] for r in exc.done)
    assert all(Path(r["path"]).is_file() for r in exc.done)
    assert not (out / "dataset_description.json").exists()
    again = convert("totalsegmentator", layouts["totalsegmentator"], tmp_path / "c", jobs=1, naming="bids")
    assert again[-1] == {"status": "written", "path": str((tmp_path / "c").resolve()), "kind": "dataset",
                         "written": len(again) - 1, "skipped": 0}


def test_phantoms_layout_cli_and_light_import(tmp_path):
    proc = run_module("phantoms", "--layout", "mrspineseg", "--out", tmp_path / "m", "--subjects", "1")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "m/train/MR/Case1.nii.gz").is_file() and (tmp_path / "m/train/Mask/mask_case1.nii.gz").is_file()
    assert json.loads(proc.stdout) == {"stage": "phantoms", "status": "written", "path": str(tmp_path / "m"),
                                       "kind": "layout", "layout": "mrspineseg", "subjects": 1}
    assert_one_line_error(run_module("phantoms", "--layout", "nosuch", "--out", tmp_path / "x"), "--layout", code=2)
    code = ("import sys, totalseg_bids.bidsify.cli; "
            "print([m for m in ('torch', 'nnunetv2', 'SimpleITK', 'openpyxl') if m in sys.modules])")
    out = subprocess.run([__import__("sys").executable, "-c", code], capture_output=True, encoding="utf-8",
                         errors="replace", env={**__import__("os").environ, "PYTHONPATH": str(REPO)})
    assert out.stdout.strip() == "[]", out.stderr


@pytest.mark.slow
def test_bidsified_synthrad_feeds_register_config_and_nnunet(tmp_path):
    """bidsify -> register (CT body mask onto the MR) -> init_data_config -> convert --verify."""
    src = write_layout("synthrad2023", tmp_path / "src", subjects=3)
    ds = bidsify("synthrad2023", src, tmp_path / "ds")
    env = {"nnUNet_raw": str(tmp_path / "raw"), "nnUNet_preprocessed": str(tmp_path / "pre"),
           "nnUNet_results": str(tmp_path / "res"), "nnUNet_def_n_proc": "1"}
    (tmp_path / "raw").mkdir()
    steps = [
        ("register", "--path-img", ds, "--path-label", ds / "derivatives/labels", "--label", "body", "-j", "1"),
        ("init_data_config", "--bids-dir", ds, "--label-dir", "reg-labels", "--label-suffix", "_label-body_seg",
         "--type", "LABEL", "-o", tmp_path / "cfg.json", "--split-validation", "0.34", "--split-test", "0.34"),
        ("convert_config_to_nnunet", "--config", tmp_path / "cfg.json", "--path-out", tmp_path / "raw",
         "-dnum", "17", "-j", "1", "--verify"),
    ]
    for module, *args in steps:
        proc = run_module(module, *args, env=env)
        assert proc.returncode == 0, (module, proc.stderr)
    dataset = next((tmp_path / "raw").glob("Dataset017_*"))
    meta = json.loads((dataset / "dataset.json").read_text(encoding="utf-8"))
    assert meta["numTraining"] == 2 and meta["labels"]["background"] == 0
    # the MR label is the source body mask (MR and CT share the grid in SynthRAD)
    for label in (ds / "derivatives/reg-labels").rglob("*_label-body_seg.nii.gz"):
        sub = label.name.split("_")[0][4:]
        truth = np.asanyarray(nib.load(str(src / "Task1/pelvis" / sub / "mask.nii.gz")).dataobj)
        assert (np.asanyarray(nib.load(str(label)).dataobj) == truth).mean() > 0.999


PNG_PATTERN = ("--suffix", "CT", "--spacing", "2", "2", "2", "--orientation", "RAS",
               "--pattern", r"case(?P<sub>\d+)/image/(?P<slice>\d+)\.png",
               "--label-pattern", r"case(?P<sub>\d+)/mask/(?P<slice>\d+)\.png", "--label-name", "sacrum")
NPY_PATTERN = ("--suffix", "CT", "--spacing", "2", "2", "2", "--pattern", r"volumes/case(?P<sub>\d+)\.npy",
               "--label-pattern", r"masks/case(?P<sub>\d+)_mask\.npy", "--label-name", "sacrum")
#: layout -> (source, bidsify options, label folder, label suffix, convert options); "register" as
#: the label folder means the CT truth is first brought onto the MRIs by ``register``.
FEEDS = {
    "mrspineseg": ("mrspineseg", ("--classes", "sacrum"), "labels", "_label-sacrum_seg", ()),
    "spider": ("spider", (), "labels", "_label-spine_dseg", ("--labels", "vertebra_1")),
    "totalsegmentator": ("totalsegmentator", ("--classes", "sacrum"), "labels", "_label-sacrum_seg", ()),
    "dicom": ("dicom", (), "register", "_label-sacrum_seg", ()),
    "png-stack": ("pattern", PNG_PATTERN, "labels", "_label-sacrum_seg", ()),
    "npy": ("pattern", NPY_PATTERN, "labels", "_label-sacrum_seg", ()),
}


@pytest.mark.slow
@pytest.mark.parametrize("layout", sorted(FEEDS))
def test_each_source_feeds_config_and_nnunet(tmp_path, layout):
    """Every source's BIDS output goes through init_data_config and convert --verify
    (nnU-Net's own integrity check); DICOM's CT/MR pairs through register first."""
    source, options, label_dir, suffix, convert_options = FEEDS[layout]
    ds = bidsify(source, write_layout(layout, tmp_path / "src", subjects=3), tmp_path / "ds", *options)
    env = {"nnUNet_raw": str(tmp_path / "raw"), "nnUNet_preprocessed": str(tmp_path / "pre"),
           "nnUNet_results": str(tmp_path / "res"), "nnUNet_def_n_proc": "1"}
    (tmp_path / "raw").mkdir()
    steps = []
    if label_dir == "register":
        from totalseg_bids.testing.layouts.truth import write_ground_truth

        write_ground_truth(ds)  # stands in for segment_ct: the phantom's CT labels
        steps.append(("register", "--bids-dir", ds, "--path-label", ds / "derivatives/ground_truth",
                      "--label", "sacrum", "-j", "1"))
        label_dir = "reg-labels"
    steps += [
        ("init_data_config", "--bids-dir", ds, "--label-dir", label_dir, "--label-suffix", suffix, "--type", "LABEL",
         "-o", tmp_path / "cfg.json", "--split-validation", "0.34", "--split-test", "0.34"),
        ("convert_config_to_nnunet", "--config", tmp_path / "cfg.json", "-o", tmp_path / "raw", "-d", "18",
         "-j", "1", "--verify", *convert_options),
    ]
    for module, *args in steps:
        proc = run_module(module, *args, env=env)
        assert proc.returncode == 0, (module, proc.stderr[-3000:])
    dataset = next((tmp_path / "raw").glob("Dataset018_*"))
    meta = json.loads((dataset / "dataset.json").read_text(encoding="utf-8"))
    cases = json.loads((tmp_path / "cfg.json").read_text(encoding="utf-8"))
    assert meta["numTraining"] == len(cases["TRAINING"]) + len(cases["VALIDATION"]) > 0
    assert len(list((dataset / "labelsTr").glob("*.nii.gz"))) == meta["numTraining"]


@pytest.mark.skipif(shutil.which("dcm2niix") is None, reason="dcm2niix not installed")
def test_dicom_series_keep_patient_coordinates(tmp_path):
    src = write_layout("dicom", tmp_path / "dcm", subjects=2)
    before = tree_digest(src)
    out = bidsify("dicom", src, tmp_path / "b")
    assert tree_digest(src) == before
    for pid, series, name in (("PAT01", "MR_T2", "T2w"), ("PAT02", "CT", "CT")):
        data, affine = series_volume(src / pid / series)
        img = nib.load(str(out / f"sub-{pid}/anat/sub-{pid}_{name}.nii.gz"))
        assert img.shape == data.shape
        # the same set of corner positions in patient space, whatever the voxel order dcm2niix chose
        ours = np.sort(corner_world(img.shape, img.affine), axis=0)
        np.testing.assert_allclose(ours, np.sort(corner_world(data.shape, affine), axis=0), atol=1e-3)
        vox = np.rint(np.linalg.inv(img.affine) @ affine @ [3, 5, 2, 1]).astype(int)[:3]
        assert np.asanyarray(img.dataobj)[tuple(vox)] == data[3, 5, 2]
    side = json.loads((out / "sub-PAT01/anat/sub-PAT01_T2w.json").read_text(encoding="utf-8"))
    assert side["SeriesDescription"] == "t2_tse_sag" and side["Sources"][0].endswith("PAT01/MR_T2")
    assert "source_id" in (out / "participants.tsv").read_text(encoding="utf-8")
    if VALIDATOR:
        assert validator_errors(out)[0] == []
    rules = tmp_path / "rules.json"  # one description naming both series of a subject: runs, as dcm2bids numbers them
    rules.write_text(json.dumps({"descriptions": [{"datatype": "anat", "suffix": "CT",
                                                   "criteria": {"SeriesDescription": "*"}}]}))
    proc = run_module("bidsify", "--source", "dicom", "--in", src, "--out", tmp_path / "c", "--config", rules,
                      "--dry-run")
    planned = sorted(r["path"].split("/c/")[-1] for r in map(json.loads, proc.stdout.splitlines())
                     if r["kind"] == "dicom")
    assert planned[:2] == ["sub-PAT01/anat/sub-PAT01_run-01_CT.nii.gz", "sub-PAT01/anat/sub-PAT01_run-02_CT.nii.gz"]
    rules.write_text(json.dumps({"descriptions": [{"suffix": "CT", "criteria": {"PatientID": "PAT01"}}]}))
    proc = run_module("bidsify", "--source", "dicom", "--in", src, "--out", tmp_path / "c", "--config", rules)
    assert_one_line_error(proc, "description 0 has no datatype", "dcm2bids requires", code=2)
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("layout,pattern,label_pattern", [
    ("png-stack", r"case(?P<sub>\d+)/image/(?P<slice>\d+)\.png", r"case(?P<sub>\d+)/mask/(?P<slice>\d+)\.png"),
    ("npy", r"volumes/case(?P<sub>\d+)\.npy", r"masks/case(?P<sub>\d+)_mask\.npy")])
def test_pattern_stacks_and_arrays_get_the_stated_grid(tmp_path, layout, pattern, label_pattern):
    from totalseg_bids.testing.layouts.arrays import phantom_grid
    from totalseg_bids.testing.layouts.common import subject

    src = write_layout(layout, tmp_path / "src", subjects=2)
    out = bidsify("pattern", src, tmp_path / "b", "--pattern", pattern, "--label-pattern", label_pattern,
                  "--label-name", "sacrum", "--suffix", "CT", "--spacing", "2", "2", "2", "--orientation", "RAS")
    grid = phantom_grid()
    _, truth, _ = subject(1, 0, "CT", grid)
    seg = nib.load(str(out / "derivatives/labels/sub-2/anat/sub-2_CT_label-sacrum_seg.nii.gz"))
    np.testing.assert_array_equal(np.asanyarray(seg.dataobj), truth == 1)  # slice order and axes kept
    np.testing.assert_allclose(seg.affine[:3, :3], np.diag([2.0, 2.0, 2.0]))
    if layout == "npy":  # an "affine" in the sidecar beside the .npy wins over --spacing
        (src / "volumes" / "case1.json").write_text(json.dumps({"affine": grid.affine.tolist()}))
        again = bidsify("pattern", src, tmp_path / "c", "--pattern", pattern, "--suffix", "CT",
                        "--spacing", "1", "1", "1")
        np.testing.assert_allclose(nib.load(str(again / "sub-1/anat/sub-1_CT.nii.gz")).affine, grid.affine)
    proc = run_module("bidsify", "--source", "pattern", "--in", src, "--out", tmp_path / "d",
                      "--pattern", pattern, "--suffix", "CT")
    assert_one_line_error(proc, "--spacing", code=2)


@pytest.mark.skipif(shutil.which("datalad") is None or shutil.which("git-annex") is None,
                    reason="datalad/git-annex not installed")
def test_datalad_save_commits_the_conversion(layouts, tmp_path):
    subprocess.run(["datalad", "create", str(tmp_path / "ds")], check=True, capture_output=True)
    proc = run_module("bidsify", "--source", "mrspineseg", "--in", layouts["mrspineseg"],
                      "--out", tmp_path / "ds" / "bids", "--datalad-save", "-q")
    assert proc.returncode == 0, proc.stderr
    log = subprocess.run(["git", "-C", str(tmp_path / "ds"), "log", "--format=%s", "-1"],
                         capture_output=True, encoding="utf-8", errors="replace")
    assert log.stdout.strip() == "bidsify --source mrspineseg"
    status = subprocess.run(["git", "-C", str(tmp_path / "ds"), "status", "--porcelain"],
                            capture_output=True, encoding="utf-8", errors="replace")
    assert status.stdout.strip() == ""
