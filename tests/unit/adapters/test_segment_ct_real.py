"""segment_ct against the real TotalSegmentator on tiny local weights.

The weights (tests/support/totalseg.py) are a tiny nnU-Net trained on phantom
images and installed where the installed TotalSegmentator looks for them, so
every run here is the real TotalSegmentator: its cropping for
``--roi_subset``, resampling, multi-part models, output files and errors,
through its Python API in one long-lived process per run (segment_ct's way
with this environment's TotalSegmentator). On the phantoms the tiny model
segments the sacrum about as well as its resolution allows, so the floors
here are the quality the demo's figures rest on.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage
from support import assert_one_line_error
from support.totalseg import MIN_DICE, MIN_DICE_MR, add_oblique_ct, totalseg_env, truth

from totalseg_bids.core.bids import label_value
from totalseg_bids.core.nifti import dice
from totalseg_bids.testing.phantoms import generate

pytestmark = pytest.mark.skipif(shutil.which("TotalSegmentator") is None, reason="TotalSegmentator not installed")


@pytest.fixture(scope="module")
def ct_template(tmp_path_factory) -> Path:
    """Two 2 mm phantom CTs (sub-01 RAS, sub-02 LPS) and an oblique LPS one (sub-09)."""
    ds = generate(tmp_path_factory.mktemp("realseg") / "ds", subjects=2, ct_labels=False, ct_spacing=2.0)
    add_oblique_ct(ds)
    return ds


@pytest.fixture
def ct_ds(ct_template, tmp_path) -> Path:
    dst = tmp_path / "ds"
    shutil.copytree(ct_template, dst)
    return dst


def check_on_grid_and_dice(ds: Path, images: list[Path], classes: list[str], task: str) -> dict:
    """Each output on its image's exact grid, sidecar complete; returns Dice per image and class."""
    scores = {}
    for image in images:
        stem = image.name[: -len(".nii.gz")]
        for cls in classes:
            out = ds / "derivatives" / "labels" / image.parent.relative_to(ds) / \
                f"{stem}_label-{label_value(cls)}_seg.nii.gz"
            img, ref = nib.load(out), nib.load(image)
            assert img.shape == ref.shape[:3] and np.allclose(img.affine, ref.affine, atol=1e-5), out
            side = json.loads(out.with_name(out.name.replace(".nii.gz", ".json")).read_text(encoding="utf-8"))
            tool = side["GeneratedBy"][0]
            assert tool["Version"] == importlib.metadata.version("TotalSegmentator")
            assert tool["Task"] == task and "--roi_subset" in tool["Flags"] and "tiny" in tool["Weights"]
            from totalsegmentator.map_to_binary import class_map

            assert tool["ClassIds"][cls] == {v: k for k, v in class_map[task].items()}[cls]
            scores[f"{stem}:{cls}"] = round(dice(np.asarray(img.dataobj) > 0, truth(ds, image, cls)), 3)
    return scores


@pytest.mark.slow
def test_total_roi_subset_ras_lps_oblique(ct_ds, tiny_totalseg_home, cli, record_property):
    """Default ``total`` (1.5 mm multi-part models after the 6 mm crop model) on RAS, LPS and oblique CTs."""
    classes = ["sacrum", "vertebrae_L5", "hip_left"]
    t = time.perf_counter()
    proc = cli("segment_ct", "--bids-dir", ct_ds, "--classes", *classes, "--device", "cpu", timeout=1800,
               env=totalseg_env(tiny_totalseg_home))
    seconds = time.perf_counter() - t
    assert proc.returncode == 0, proc.stderr
    cts = sorted(ct_ds.glob("sub-*/anat/*_CT.nii.gz"))
    scores = check_on_grid_and_dice(ct_ds, cts, classes, "total")
    record_property("dice", scores)
    record_property("seconds_per_ct", round(seconds / len(cts), 1))
    print(f"total: {seconds / len(cts):.1f} s per CT; Dice {scores}")
    # the sacrum is what the demo's figures rest on: its floor is asserted, and it is one piece (no second
    # component above it, beyond islands of a few voxels); the L5 body and the hips are checked for grid and
    # sidecar, their Dice reported
    assert min(v for k, v in scores.items() if k.endswith(":sacrum")) >= MIN_DICE, scores
    for ct in cts:
        sacrum = ct_ds / "derivatives" / "labels" / ct.parent.relative_to(ct_ds) / ct.name.replace(
            "_CT.nii.gz", "_CT_label-sacrum_seg.nii.gz")
        parts, n = ndimage.label(np.asarray(nib.load(sacrum).dataobj) > 0, structure=np.ones((3, 3, 3)))
        sizes = np.bincount(parts.ravel())[1:]  # QC's 26-connectivity; islands of a few voxels at most
        assert n >= 1 and sizes.max() >= 0.99 * sizes.sum(), (sacrum, sorted(sizes.tolist()))
    config = json.loads((tiny_totalseg_home / "config.json").read_text(encoding="utf-8"))
    assert config["send_usage_stats"] is False


@pytest.mark.slow
def test_fast_combine(ct_ds, tiny_totalseg_home, cli):
    """``--fast`` (3 mm model) with ``--combine``: one dseg with TotalSegmentator's ids, on the CT grid."""
    from totalsegmentator.map_to_binary import class_map

    for ct in sorted(ct_ds.glob("sub-0[2-9]/anat/*_CT.nii.gz")):
        shutil.rmtree(ct.parents[1])  # one CT is enough here
    proc = cli("segment_ct", "--bids-dir", ct_ds, "--classes", "sacrum", "hip_left", "hip_right", "--fast",
               "--combine", "pelvis", "--device", "cpu", timeout=900, env=totalseg_env(tiny_totalseg_home))
    assert proc.returncode == 0, proc.stderr
    ct = ct_ds / "sub-01" / "anat" / "sub-01_CT.nii.gz"
    out = ct_ds / "derivatives" / "labels" / "sub-01" / "anat" / "sub-01_CT_label-pelvis_dseg.nii.gz"
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["stage"], r["status"], r["path"], r["label"]) for r in records] == [
        ("segment_ct", "written", str(out), "pelvis")]
    img = nib.load(out)
    assert img.shape == nib.load(ct).shape and np.allclose(img.affine, nib.load(ct).affine)
    ids = {v: k for k, v in class_map["total"].items()}
    data = np.asarray(img.dataobj)
    assert set(np.unique(data)) <= {0, ids["sacrum"], ids["hip_left"], ids["hip_right"]}
    assert dice(data == ids["sacrum"], truth(ct_ds, ct, "sacrum")) >= MIN_DICE
    side = json.loads(out.with_name("sub-01_CT_label-pelvis_dseg.json").read_text(encoding="utf-8"))
    assert side["GeneratedBy"][0]["Fast"] is True and "--fast" in side["GeneratedBy"][0]["Flags"]


@pytest.mark.slow
def test_total_mr_on_mri(tmp_path, tiny_totalseg_home, cli):
    """``--task total_mr`` labels the MRI itself (an oblique T1w), no CT involved."""
    ds = generate(tmp_path / "ds", subjects=1, ct_labels=False)
    for other in [*ds.glob("sub-*/anat/*_CT.*"), *ds.glob("sub-*/anat/*_T2w.*")]:
        other.unlink()  # the oblique T1w only: each MRI costs minutes on 2 cores
    proc = cli("segment_ct", "--bids-dir", ds, "--task", "total_mr", "--classes", "sacrum", "hip_left",
               "--device", "cpu", timeout=900, env=totalseg_env(tiny_totalseg_home))
    assert proc.returncode == 0, proc.stderr
    mris = sorted(ds.glob("sub-*/anat/*_T1w.nii.gz"))
    assert len(mris) == 1
    scores = check_on_grid_and_dice(ds, mris, ["sacrum", "hip_left"], "total_mr")
    print(f"total_mr Dice {scores}")
    assert min(v for k, v in scores.items() if k.endswith(":sacrum")) >= MIN_DICE_MR, scores


@pytest.mark.slow
def test_api_process_reports_a_failure_and_serves_the_next_image(ct_ds, tiny_totalseg_home, tmp_path, monkeypatch):
    """segment_ct's TotalSegmentator process: an image TotalSegmentator fails on comes back as one error
    naming it, and the same process labels the next image."""
    from totalseg_bids.core.errors import ExternalToolError
    from totalseg_bids.totalsegmentator import ApiRunner, api_arguments

    for key, value in totalseg_env(tiny_totalseg_home).items():
        monkeypatch.setenv(key, value)
    runner = ApiRunner()
    try:
        bad = tmp_path / "sub-99_CT.nii.gz"
        bad.write_bytes(b"not a NIfTI image")
        with pytest.raises(ExternalToolError, match="TotalSegmentator failed") as info:
            runner.run(api_arguments(bad, tmp_path / "bad", "total", ["sacrum"], "cpu", True), bad, "total", True)
        assert str(bad) in str(info.value)
        pid = runner.pid
        ct = ct_ds / "sub-01" / "anat" / "sub-01_CT.nii.gz"
        runner.run(api_arguments(ct, tmp_path / "good", "total", ["sacrum"], "cpu", True), ct, "total", True)
        assert (tmp_path / "good" / "sacrum.nii.gz").is_file() and runner.pid == pid is not None
    finally:
        runner.close()
    assert runner.pid is None


# ------------------------------------------------------------------ refused before TotalSegmentator runs
def test_missing_weights_detected_once_before_any_ct(ct_ds, tmp_path, cli):
    """Empty TOTALSEG_HOME_DIR: one line naming the fix, in well under one CT's worth of time."""
    home = tmp_path / "empty_home"
    home.mkdir()
    t = time.perf_counter()
    proc = cli("segment_ct", "--bids-dir", ct_ds, "--fast", "--device", "cpu", env={"TOTALSEG_HOME_DIR": str(home)})
    assert time.perf_counter() - t < 20
    assert_one_line_error(proc, "TOTALSEG_HOME_DIR", "totalseg_download_weights", "297")
    assert not (ct_ds / "derivatives" / "labels").exists()
    assert not list(home.rglob("*.pth"))


def _bad(ds: Path, kind: str) -> Path:
    ct = ds / "sub-01" / "anat" / "sub-01_CT.nii.gz"
    img = nib.load(ct)
    data = np.asarray(img.dataobj).astype(np.float32)
    if kind == "nan":
        data[5, 5, 5] = np.nan
    elif kind == "4d":
        data = np.stack([data, data], axis=-1)
    else:
        data = data[:, :, :2]
    nib.save(nib.Nifti1Image(data, img.affine), ct)
    return ct


@pytest.mark.parametrize("kind,needle", [("nan", "NaN"), ("4d", "3D"), ("small", "too small")])
def test_bad_ct_refused_with_from_existing(ct_ds, tmp_path, cli, kind, needle):
    """Refused by segment_ct itself (one line), also when importing existing outputs."""
    ct = _bad(ct_ds, kind)
    existing = tmp_path / "existing" / "sub-01_CT"
    existing.mkdir(parents=True)
    img = nib.load(ct)
    nib.save(nib.Nifti1Image(np.zeros(img.shape[:3], np.uint8), img.affine), existing / "sacrum.nii.gz")
    for other in ct_ds.glob("sub-0[2-9]"):
        shutil.rmtree(other)
    proc = cli("segment_ct", "--bids-dir", ct_ds, "--from-existing", existing.parent)
    assert_one_line_error(proc, str(ct), needle)


def test_weight_folders_read_from_the_installed_package(tmp_path, monkeypatch):
    """The builder and the up-front check agree with TotalSegmentator's own tables."""
    from totalsegmentator.map_tasks_config import TASK_CONFIGS, TASK_ID_WEIGHTS_CONFIGS

    from totalseg_bids.totalsegmentator.tasks import missing_models, needed_models, task_models

    models = {m.task_id: m for m in task_models("total")}
    modes = TASK_CONFIGS["total"]["sub_modes"]
    assert set(models) == {*modes["default"]["task_id"], modes["fast"]["task_id"], modes["fastest"]["task_id"]}
    fast = models[modes["fast"]["task_id"]]
    assert fast.folder == TASK_ID_WEIGHTS_CONFIGS[fast.task_id]["foldername"]
    assert fast.trainer == modes["fast"]["trainer"] and "sacrum" in fast.labels.values()
    monkeypatch.setenv("TOTALSEG_HOME_DIR", str(tmp_path))
    monkeypatch.delenv("TOTALSEG_WEIGHTS_PATH", raising=False)
    # --fast with --roi_subset: the 3 mm model and the 6 mm cropping model
    assert {m.task_id for m in needed_models("total", True, ["sacrum"])} == {
        modes["fast"]["task_id"], modes["fastest"]["task_id"]}
    # default: only the part models holding the classes, plus the cropping model
    need = {m.task_id for m in missing_models("total", False, ["sacrum", "hip_left"])}
    from totalsegmentator.map_to_binary import class_map_5_parts, map_taskid_to_partname_ct

    parts = {t for t, part in map_taskid_to_partname_ct.items() if part in class_map_5_parts
             and {"sacrum", "hip_left"} & set(class_map_5_parts[part].values())}
    assert len(parts) == 2 and need == parts | {modes["fastest"]["task_id"]}
    mr = {m.task_id for m in needed_models("total_mr", False, ["sacrum"])}
    assert TASK_CONFIGS["total_mr"]["sub_modes"]["fast"]["task_id"] in mr
