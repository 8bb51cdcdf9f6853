"""bidsify --source dicom on DICOM as archives export it: de-identified, compressed (JPEG 2000, JPEG-LS,
RLE, deflate, big endian), extension-less, nested, beside RTSTRUCT/RTPLAN/RTDOSE/SR objects, a DICOMDIR,
localizers, derived reformats and strays; geometry and voxels against SimpleITK's series reader."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from support import REPO, assert_one_line_error, tree_digest
from support import series_volume as series_voxels

from totalseg_bids.bidsify import main
from totalseg_bids.bidsify.dcm2niix_run import dcm2niix_binary
from totalseg_bids.testing.layouts import write_layout
from totalseg_bids.testing.layouts.dicom_export import CT_SOP, MR_SOP, write_series

pytest.importorskip("dcm2niix")
SUBJECT = ("--subject-regex", r"^(PA\d+)/")


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    """One de-identified patient as a hospital archive exports it (see testing.layouts.dicom_export)."""
    return write_layout("dicom-export", tmp_path_factory.mktemp("export") / "EXPORT", subjects=1)


def run(capsys, *args) -> tuple[int, list[dict], str]:
    """``bidsify`` in process: exit code, JSON records, stderr."""
    code = main([*map(str, args), "-j", "1"])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def assert_same_image(path: Path, data: np.ndarray, affine: np.ndarray) -> None:
    """Every voxel of ``data`` at the same world position, with the same value, in the NIfTI ``path``."""
    img = nib.load(str(path))
    assert img.shape == data.shape
    ijk = np.indices(data.shape).reshape(3, -1)
    ours = np.linalg.inv(img.affine) @ affine @ np.vstack([ijk, np.ones(ijk.shape[1])])
    np.testing.assert_allclose(ours[:3], np.rint(ours[:3]), atol=1e-3)  # voxel centres fall on voxel centres
    idx = tuple(np.rint(ours[:3]).astype(int))
    np.testing.assert_array_equal(np.asanyarray(img.dataobj)[idx], data[tuple(ijk)])


def test_export_converts_its_image_series_exactly_and_lists_the_rest(export, tmp_path, capsys):
    before = tree_digest(export)
    out = tmp_path / "bids"
    code, records, err = run(capsys, "--source", "dicom", "--in", export, "--out", out, *SUBJECT)
    assert code == 0, err
    anat = out / "sub-PA000001" / "anat"
    assert sorted(p.name for p in anat.glob("*.nii.gz")) == [f"sub-PA000001_{s}.nii.gz" for s in ("CT", "T1w", "T2w")]
    for name, folder in (("CT", "SE000001"), ("T2w", "SE000002"), ("T1w", "SE000003")):
        assert_same_image(anat / f"sub-PA000001_{name}.nii.gz", *series_voxels(export / "PA000001/ST000001" / folder))
    side = json.loads((anat / "sub-PA000001_T2w.json").read_text(encoding="utf-8"))
    assert side["EchoTime"] == 0.089 and side["SeriesDescription"] == "t2_tse_sag" and "PatientName" not in side
    skipped = json.loads((out / "code" / "bidsify.json").read_text(encoding="utf-8"))["skipped"]
    reasons = " | ".join(s["reason"] for s in skipped)
    for needle in ("localizer", "derived image", "RTPLAN", "RTDOSE", "SR", "structure set whose image series",
                   "DICOMDIR", "not DICOM: README.txt", "no description of the configuration matches it"):
        assert needle in reasons, (needle, reasons)
    stray = next(s for s in skipped if s["SeriesNumber"] == "99")
    assert stray["folder"] == "PA000001/ST000001/SE000006" and stray["Modality"] == "MR" and stray["files"] == 1
    assert err.count("not converted:") == len(skipped)
    assert sum(r["status"] == "unconverted" for r in records) == len(skipped)
    assert tree_digest(export) == before  # the export is never touched
    code, again, _ = run(capsys, "--source", "dicom", "--in", export, "--out", out, *SUBJECT)
    assert code == 0 and {r["status"] for r in again if r.get("kind") == "dicom"} == {"skipped"}


def test_keep_derived_strict_and_the_dry_run_table(export, tmp_path, capsys):
    code, records, err = run(capsys, "--source", "dicom", "--in", export, "--out", tmp_path / "a", *SUBJECT,
                             "--keep-derived", "--dry-run")
    assert code == 0 and not (tmp_path / "a").exists()
    planned = sorted(Path(r["path"]).name for r in records if r["status"] == "planned" and r["kind"] == "dicom")
    assert planned == ["sub-PA000001_T1w.nii.gz", "sub-PA000001_T2w.nii.gz", "sub-PA000001_run-01_CT.nii.gz",
                       "sub-PA000001_run-02_CT.nii.gz", "sub-PA000001_run-03_CT.nii.gz"]  # + scout and MPR
    lines = err.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("folder"))
    assert lines[header].split() == ["folder", "SeriesDescription", "Modality", "ImageType", "SeriesNumber", "files",
                                     "result"]
    row = next(line for line in lines if "t2_tse_sag" in line)
    assert row.split()[:6] == ["PA000001/ST000001/SE000002", "t2_tse_sag", "MR", "ORIGINAL\\PRIMARY\\M\\ND", "3", "20"]
    assert row.endswith("sub-PA000001/anat/sub-PA000001_T2w.nii.gz")
    assert any("unmatched: no description" in line for line in lines)
    code, records, err = run(capsys, "--source", "dicom", "--in", export, "--out", tmp_path / "b", *SUBJECT, "--strict")
    assert code == 1
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert errors and all("not converted" in e and "--strict" in e for e in errors)
    assert any("SE000006" in e for e in errors)
    assert (tmp_path / "b/sub-PA000001/anat/sub-PA000001_CT.nii.gz").is_file()  # the others are written
    assert not (tmp_path / "b/dataset_description.json").exists()  # ... but the dataset is not claimed complete


def test_subject_needs_patient_id_or_regex_and_studies_become_sessions(export, tmp_path, capsys):
    code, _, err = run(capsys, "--source", "dicom", "--in", export, "--out", tmp_path / "a", "--dry-run")
    assert code == 1
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "--subject-regex" in errors[0] and "no CT or MR" not in errors[0]
    src = tmp_path / "src"
    rng = np.random.default_rng(3)
    for study, date in (("1.2.3.1", "20250101"), ("1.2.3.2", "20260101")):
        tags = {"SOPClassUID": CT_SOP, "Modality": "CT", "PatientID": "P-7", "StudyInstanceUID": study,
                "SeriesInstanceUID": f"{study}.1", "StudyDate": date, "SeriesNumber": 1,
                "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"], "RescaleIntercept": 0, "RescaleSlope": 1}
        write_series(rng.integers(0, 900, (8, 6, 3)).astype(np.int16), np.diag([-1.0, -1, 2, 1]), src / date, tags)
    code, records, err = run(capsys, "--source", "dicom", "--in", src, "--out", tmp_path / "b", "--dry-run")
    assert code == 0, err
    paths = sorted(r["path"].split("/b/")[1] for r in records if r["status"] == "planned" and r["kind"] == "dicom")
    assert paths == ["sub-P7/ses-01/anat/sub-P7_ses-01_CT.nii.gz", "sub-P7/ses-02/anat/sub-P7_ses-02_CT.nii.gz"]
    code, records, _ = run(capsys, "--source", "dicom", "--in", src, "--out", tmp_path / "c", "--dry-run",
                           "--session-regex", r"^\d\d(?P<ses>\d\d)")
    paths = sorted(r["path"].split("/c/")[1] for r in records if r["status"] == "planned" and r["kind"] == "dicom")
    assert paths == ["sub-P7/ses-25/anat/sub-P7_ses-25_CT.nii.gz", "sub-P7/ses-26/anat/sub-P7_ses-26_CT.nii.gz"]


def test_grouping_without_uids_agrees_with_dcm2niix_alone(export, tmp_path, capsys):
    """Every image series of the de-identified export (UIDs emptied) gives the volume dcm2niix gives
    when it converts the whole tree itself."""
    config = tmp_path / "all.json"
    config.write_text(json.dumps({"descriptions": [
        {"datatype": "anat", "suffix": "T1w", "criteria": {"SeriesNumber": {"ge": 0}}}]}), encoding="utf-8")
    code, _, err = run(capsys, "--source", "dicom", "--in", export, "--out", tmp_path / "ours", *SUBJECT,
                       "--keep-derived", "--config", config)
    assert code == 0, err
    alone = tmp_path / "alone"
    alone.mkdir()
    subprocess.run([dcm2niix_binary(), "-z", "y", "-f", "%s_%b", "-o", str(alone), str(export)], check=True,
                   capture_output=True)
    theirs = [p for p in sorted(alone.glob("*.nii.gz")) if json.loads(  # CT and MR, not the RTDOSE
        p.with_name(p.name[:-7] + ".json").read_text(encoding="utf-8")).get("Modality") in ("CT", "MR")]
    ours = sorted((tmp_path / "ours").rglob("*.nii.gz"))

    def key(path: Path) -> tuple:
        img = nib.load(str(path))
        return img.shape, np.round(img.affine, 3).tobytes(), np.asanyarray(img.dataobj).tobytes()

    assert len(theirs) == 5 and {key(p) for p in theirs} <= {key(p) for p in ours}
    assert len(ours) == 6  # and the deflated scout, which dcm2niix alone cannot read


def _small_series(folder: Path, uid: str, **tags) -> list[Path]:
    data = np.arange(10 * 8 * 6, dtype=np.int16).reshape(10, 8, 6)
    return write_series(data, np.diag([-1.0, -1, 2, 1]), folder, {
        "SOPClassUID": MR_SOP, "Modality": "MR", "PatientID": "P1", "StudyInstanceUID": "1.2.9",
        "SeriesInstanceUID": uid, "SeriesNumber": 2, "SeriesDescription": "t2_axial",
        "ImageType": ["ORIGINAL", "PRIMARY", "M", "ND"], **tags})


def test_bad_series_are_listed_or_reported_never_block_the_others(tmp_path, capsys):
    """A truncated file, a missing slice, a duplicate slice, mixed orientations, a gantry tilt and an
    unreadable file: listed with dcm2niix's own words, or converted with its warning; the rest converts."""
    src = tmp_path / "src"
    good = _small_series(src / "good", "1.2.9.1")
    truncated = _small_series(src / "truncated", "1.2.9.2", SeriesNumber=3)
    truncated[2].write_bytes(truncated[2].read_bytes()[:-100])  # cut into its pixel data
    missing = _small_series(src / "missing", "1.2.9.3", SeriesNumber=4)
    missing[3].unlink()
    duplicate = _small_series(src / "duplicate", "1.2.9.4", SeriesNumber=5)
    shutil.copyfile(duplicate[2], duplicate[2].with_name("IM00099"))
    tilt = np.diag([-1.0, -1, 2, 1])
    tilt[1, 2] = 0.5  # the slices step along y too: a tilted gantry
    write_series(np.ones((10, 8, 6), np.int16), tilt, src / "tilt", {
        "SOPClassUID": CT_SOP, "Modality": "CT", "PatientID": "P1", "StudyInstanceUID": "1.2.9",
        "SeriesInstanceUID": "1.2.9.5", "SeriesNumber": 6,
        "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"], "RescaleIntercept": 0, "RescaleSlope": 1})
    mixed = _small_series(src / "mixed", "1.2.9.6", SeriesNumber=7)
    for path in mixed[3:]:  # the last three slices turned by 90 degrees: two stacks in one series
        ds = pydicom.dcmread(path)
        ds.ImageOrientationPatient = [0, 1, 0, 1, 0, 0]
        ds.save_as(path)
    os.symlink(tmp_path / "absent", src / "good" / "IM00050")  # content not fetched (a datalad annex without it)
    before = tree_digest(src)
    code, records, err = run(capsys, "--source", "dicom", "--in", src, "--out", tmp_path / "b")
    assert code == 0, err
    assert "Traceback" not in err and tree_digest(src) == before
    anat = tmp_path / "b/sub-P1/anat"
    written = sorted(p.name for p in anat.glob("*.nii.gz"))
    assert "sub-P1_CT.nii.gz" in written and len(written) >= 3, written
    tilted = json.loads((anat / "sub-P1_CT.json").read_text(encoding="utf-8"))
    assert "gantry tilt" in tilted["GeometryCorrection"]
    warned = [w for r in records for w in r.get("warnings", [])]
    assert any("tilt" in w for w in warned) and any("Missing images" in w or "Interslice" in w for w in warned)
    assert any("DUPLICATES" in w or "duplicate" in w.lower() for w in warned + err.splitlines())
    assert any("not stacked" in w for w in warned)  # mixed orientations: dcm2niix's two stacks, both named
    assert sum("_run-" in name for name in written) >= 2
    skipped = json.loads((tmp_path / "b/code/bidsify.json").read_text(encoding="utf-8"))["skipped"]
    reasons = {s["folder"]: s["reason"] for s in skipped}
    assert "cannot be read" in reasons["good/IM00050"] and "datalad get" in reasons["good/IM00050"]
    assert "not large enough" in reasons["truncated"] and str(truncated[2]) in reasons["truncated"]
    assert not list((tmp_path / "b").rglob(".tmp*"))
    assert len(good) == 6


def test_no_dicom_and_bad_config_answer_in_one_line(tmp_path):
    from support import run_module

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "notes.txt").write_text("no images here", encoding="utf-8")
    proc = run_module("bidsify", "--source", "dicom", "--in", tmp_path / "src", "--out", tmp_path / "o")
    assert_one_line_error(proc, "no DICOM files", "pass the folder")
    _small_series(tmp_path / "dcm", "1.2.9.1")
    bad = tmp_path / "old.json"
    bad.write_text(json.dumps({"descriptions": [{"dataType": "anat", "modalityLabel": "T2w",
                                                 "criteria": {"SeriesDescription": "*"}}]}), encoding="utf-8")
    proc = run_module("bidsify", "--source", "dicom", "--in", tmp_path / "dcm", "--out", tmp_path / "o",
                      "--config", bad)
    assert_one_line_error(proc, "dcm2bids 2 keys", "dataType", code=2)
    assert not (tmp_path / "o").exists()


ORACLE_SERIES = [  # SeriesDescription, SeriesNumber, AcquisitionTime, EchoTime (ms), RepetitionTime (ms), ImageType
    ("t1_mprage_sag", 2, "100000", 2.9, 2300, ["ORIGINAL", "PRIMARY", "M", "ND"]),
    ("t2_tse_tra", 3, "100500", 89, 4000, ["ORIGINAL", "PRIMARY", "M", "ND"]),
    ("t2_tse_tra", 4, "101000", 89, 4000, ["ORIGINAL", "PRIMARY", "M", "ND"]),
    ("flair_rec-norm_tra", 5, "101500", 120, 9000, ["ORIGINAL", "PRIMARY", "M", "ND"]),
    ("pd_t2_tse", 6, "102000", 89, 3000, ["ORIGINAL", "PRIMARY", "M", "ND"]),
    ("dwi_tra", 7, "102500", 70, 5000, ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]),
    ("gre_tra", 60, "103000", 5, 30, ["ORIGINAL", "PRIMARY", "M", "ND"]),
]
#: a dcm2bids 3 configuration using what its documentation shows, used as it is by both tools
ORACLE_CONFIG = {
    "dcm2niixOptions": "-b y -ba y -z y -f '%3s_%f_%p_%t'",
    "case_sensitive": False,
    "extractors": {"SeriesDescription": ["rec-(?P<rec>[a-zA-Z0-9]+)"]},
    "descriptions": [
        {"id": "t1", "datatype": "anat", "suffix": "T1w", "custom_entities": ["acq-mprage"],
         "criteria": {"SeriesDescription": "*MPRAGE*", "ImageType": ["ORIGINAL", "PRIMARY", "*", "ND", "*"]}},
        {"datatype": "anat", "suffix": "T2w", "custom_entities": "acq-tse",
         "criteria": {"SeriesDescription": {"any": ["*tse*", "*TSE_COR*"]}, "EchoTime": {"btw": [0.05, 0.2]}},
         "sidecar_changes": {"IntendedFor": "t1", "ProtocolName": ""}},
        {"datatype": "anat", "suffix": "FLAIR", "custom_entities": ["rec"],
         "criteria": {"SeriesDescription": "flair*", "RepetitionTime": {"gt": 5}}},
        {"datatype": "anat", "suffix": "PDw", "criteria": {"SeriesDescription": "pd_*"}},
        {"datatype": "anat", "suffix": "T2starw", "criteria": {"SeriesNumber": {"ge": 50}, "EchoTime": {"lt": 0.03}}},
    ],
}


@pytest.mark.skipif(shutil.which("dcm2bids") is None, reason="dcm2bids (the oracle) not installed")
def test_dcm2bids_configuration_gives_the_names_dcm2bids_gives(tmp_path, capsys):
    """The same DICOM and the same configuration through dcm2bids 3 itself and through bidsify: the same
    files (wildcards, lists, any, btw/gt/lt, case_sensitive, extractors, id, sidecar_changes, runs),
    the same sidecar changes, and the series several descriptions match converted by neither."""
    src = tmp_path / "dicom"
    rng = np.random.default_rng(5)
    for desc, number, time, te, tr, image_type in ORACLE_SERIES:
        data = rng.integers(0, 1000, (10, 8, 4)).astype(np.int16)
        write_series(data, np.diag([-1.0, -1, 2, 1]), src / desc / str(number), {
            "SOPClassUID": MR_SOP, "Modality": "MR", "PatientID": "01", "PatientName": "01",
            "StudyInstanceUID": "1.2.7", "SeriesInstanceUID": f"1.2.7.{number}", "SeriesNumber": number,
            "SeriesDescription": desc, "ProtocolName": desc, "AcquisitionTime": time, "EchoTime": te,
            "RepetitionTime": tr, "ImageType": image_type, "Manufacturer": "SIEMENS", "MagneticFieldStrength": 3})
    config = tmp_path / "dcm2bids_config.json"
    config.write_text(json.dumps(ORACLE_CONFIG), encoding="utf-8")
    oracle = tmp_path / "dcm2bids"
    proc = subprocess.run(["dcm2bids", "-d", str(src), "-p", "01", "-c", str(config), "-o", str(oracle)],
                          capture_output=True, encoding="utf-8", errors="replace", timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    theirs = sorted(p.relative_to(oracle).as_posix() for p in (oracle / "sub-01").rglob("*.nii.gz"))
    code, _, err = run(capsys, "--source", "dicom", "--in", src, "--out", tmp_path / "ours", "--config", config)
    assert code == 0, err
    ours = sorted(p.relative_to(tmp_path / "ours").as_posix() for p in (tmp_path / "ours/sub-01").rglob("*.nii.gz"))
    assert ours == theirs  # dcm2niix lists ImageType with a fifth element, MAGNITUDE: lists match element by element
    assert ours == [f"sub-01/anat/sub-01_{n}.nii.gz" for n in ("T2starw", "acq-mprage_T1w", "acq-tse_run-01_T2w",
                                                               "acq-tse_run-02_T2w", "rec-norm_FLAIR")]
    for name in ours:
        mine = json.loads((tmp_path / "ours" / name.replace(".nii.gz", ".json")).read_text(encoding="utf-8"))
        their = json.loads((oracle / name.replace(".nii.gz", ".json")).read_text(encoding="utf-8"))
        for key in ("IntendedFor", "ProtocolName", "SeriesDescription", "EchoTime"):
            assert mine.get(key) == their.get(key), (name, key)
        np.testing.assert_array_equal(nib.load(str(tmp_path / "ours" / name)).get_fdata(),
                                      nib.load(str(oracle / name)).get_fdata())
    assert "dcm2niixOptions not supported" in err  # unsupported keys named, never silence
    skipped = json.loads((tmp_path / "ours/code/bidsify.json").read_text(encoding="utf-8"))["skipped"]
    assert {s["SeriesDescription"]: s["reason"].split(" (")[0] for s in skipped} == {
        "pd_t2_tse": "several descriptions match it", "dwi_tra": "no description of the configuration matches it"}


SIDECAR = {"SeriesDescription": "T2_TSE_sag", "ImageType": ["ORIGINAL", "PRIMARY", "M", "ND", "NORM"],
           "EchoTime": 0.089, "RepetitionTime": 3.5, "SeriesNumber": 4, "ProtocolName": "", "FlipAngle": 150,
           "SidecarFilename": "004_x.json"}
CRITERIA = [
    {"SeriesDescription": "*TSE*"}, {"SeriesDescription": "*tse*"}, {"SeriesDescription": "T2_TSE_[st]ag"},
    {"SeriesDescription": "T2?TSE*"}, {"ImageType": ["ORIGINAL", "PRIMARY", "*", "*", "*"]},
    {"ImageType": ["ORIGINAL", "PRIMARY", "*", "*"]}, {"ImageType": "ORIGINAL"}, {"ImageType": {"any": [
        ["ORIGINAL", "PRIMARY", "M", "ND", "NORM"], ["DERIVED", "*", "*", "*", "*"]]}},
    {"SeriesDescription": {"any": ["*flair*", "*TSE*"]}}, {"SeriesDescription": {"any": ["*flair*"]}},
    {"EchoTime": {"btw": [0.05, 0.2]}}, {"EchoTime": {"btw": [0.089, 0.2]}}, {"EchoTime": {"btwe": [0.089, 0.2]}},
    {"EchoTime": {"gt": 0.05}}, {"EchoTime": {"lt": [0.05]}}, {"RepetitionTime": {"ge": 3.5}},
    {"RepetitionTime": {"le": "3.4"}}, {"EchoTime": {"btw": [0.05]}}, {"SeriesNumber": 4}, {"SeriesNumber": "4"},
    {"SeriesNumber": "*"}, {"ProtocolName": ""}, {"ProtocolName": "*"}, {"Missing": ""}, {"Missing": "x"},
    {"FlipAngle": {"gt": 90}, "SeriesDescription": "*TSE*"}, {"SidecarFilename": "004_*"},
    {"SeriesDescription": {"nope": 1}}, {"EchoTime": {"gt": "not a number"}},
]


@pytest.mark.parametrize("settings", [{}, {"case_sensitive": False}, {"search_method": "re"}])
def test_criteria_match_as_dcm2bids_matches(settings):
    """Each criterion against one sidecar, in dcm2bids' own SidecarPairing.isLink and in ours."""
    sidecar_module = pytest.importorskip("dcm2bids.sidecar")
    from totalseg_bids.bidsify.dcm2bids_config import criteria_match, rules_from_dict

    theirs = sidecar_module.SidecarPairing([], [], **settings)
    rules = rules_from_dict({"descriptions": [], **settings})
    criteria = CRITERIA if settings.get("search_method") != "re" else [
        {"SeriesDescription": "T2_.*"}, {"SeriesDescription": "tse"},
        {"ImageType": ["ORIG.*", "PRIMARY", ".*", "ND", ".*"]}]
    for criterion in criteria:
        assert criteria_match(SIDECAR, criterion, rules) == theirs.isLink(SIDECAR, criterion), criterion


def test_rtstruct_beside_its_image_series_becomes_masks(tmp_path, capsys):
    """An RTSTRUCT whose CT is in the export: one mask per ROI on the converted CT (as the Gold Atlas reader)."""
    src = write_layout("goldatlas", tmp_path / "atlas", subjects=1)
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"descriptions": [
        {"datatype": "anat", "suffix": "CT", "criteria": {"Modality": "CT", "SeriesDescription": "CT pelvis"}},
        {"datatype": "anat", "suffix": "T2w", "criteria": {"Modality": "MR", "SeriesDescription": "*[Tt]2*"}}]}))
    code, records, err = run(capsys, "--source", "dicom", "--in", src, "--out", tmp_path / "b", "--config", config,
                             "--classes", "sacrum")
    assert code == 0, err
    masks = [Path(r["path"]) for r in records if r.get("kind") == "rtstruct"]
    assert masks and all(m.is_file() and "_CT_label-sacrum_seg" in m.name for m in masks)
    ct = nib.load(str(next((tmp_path / "b").rglob("*_CT.nii.gz"))))
    np.testing.assert_array_equal(nib.load(str(masks[0])).affine, ct.affine)
    assert nib.load(str(masks[0])).get_fdata().sum() > 50


@pytest.mark.slow
def test_readme_dicom_export_block_runs_as_written(tmp_path):
    """The README's DICOM export block (phantom export, dry-run table, dcm2bids configuration) runs as
    written, its /tmp paths moved into a private folder, and the table it shows is the one printed."""
    import re

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```bash\n(.*?)```", readme, flags=re.S) if "dicom-export" in b)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(["bash", "-e", "-c", block.replace("/tmp/", f"{tmp_path}/")], capture_output=True,
                          encoding="utf-8", errors="replace", env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "export_bids").rglob("*.nii.gz")) == sorted(
        f"sub-PA00000{n}_{s}.nii.gz" for n in (1, 2) for s in ("CT", "acq-sag_T1w", "acq-sag_T2w"))
    shown = readme.split("The table of the last dry run")[1].split("```text\n")[1].split("\n...")[0]
    assert all(line in proc.stderr for line in shown.splitlines())


def test_pydicom_shipped_files(tmp_path, capsys):
    """Real files pydicom ships: CT_small converts to its own values (rescale included); MR_small's JPEG 2000
    and RLE copies (one SeriesInstanceUID, the same instance) give one slice, dcm2niix's duplicate removal
    reported; MR_truncated is refused, the file named in dcm2niix's words."""
    from pydicom.data import get_testdata_file
    from pydicom.pixels import apply_modality_lut

    src, broken = tmp_path / "src", tmp_path / "broken"
    for folder, name in ((src / "ct", "CT_small.dcm"), (src / "mr1", "MR_small_jp2klossless.dcm"),
                         (src / "mr2", "MR_small_RLE.dcm"), (broken / "mr", "MR_truncated.dcm")):
        folder.mkdir(parents=True)
        shutil.copyfile(get_testdata_file(name, download=False), folder / "IM1")
    code, records, err = run(capsys, "--source", "dicom", "--in", src, "--out", tmp_path / "b", "--keep-derived",
                             "--config", _catch_all(tmp_path))
    assert code == 0, err
    ct = pydicom.dcmread(src / "ct" / "IM1")
    written = {Path(r["path"]).name: r for r in records if r.get("kind") == "dicom"}
    assert sorted(written) == [f"sub-{ct.PatientID}_T1w.nii.gz", "sub-4MR1_T1w.nii.gz"]
    assert any("DUPLICATES REMOVED" in w for w in written["sub-4MR1_T1w.nii.gz"]["warnings"])
    img = nib.load(written[f"sub-{ct.PatientID}_T1w.nii.gz"]["path"])
    values = np.asarray(apply_modality_lut(ct.pixel_array, ct), float)
    assert img.shape[:2] == (ct.Columns, ct.Rows)
    np.testing.assert_array_equal(np.sort(img.get_fdata().ravel()), np.sort(values.ravel()))
    code, records, err = run(capsys, "--source", "dicom", "--in", broken, "--out", tmp_path / "c", "--keep-derived")
    assert code == 0, err
    (skip,) = [r for r in records if r["status"] == "unconverted"]
    assert "not large enough" in skip["reason"] and str(broken / "mr" / "IM1") in skip["reason"]


def _catch_all(tmp_path: Path) -> Path:
    config = tmp_path / "all.json"
    config.write_text(json.dumps({"descriptions": [
        {"datatype": "anat", "suffix": "T1w", "criteria": {"SeriesNumber": {"ge": 0}}}]}), encoding="utf-8")
    return config
