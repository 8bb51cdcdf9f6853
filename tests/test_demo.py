"""The main job, reduced: the demo end to end on 4 phantom subjects,
exactly as ``bash scripts/demo.sh`` runs it, with its summary checked."""

from __future__ import annotations

import json

import pytest

from conftest import run_module


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    proc = run_module("demo", "--out", out, "--subjects", "4", "--device", "cpu", timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| Dice prediction vs ground truth" in proc.stderr  # the table, for people
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    record = json.loads(proc.stdout)  # stdout: the one JSON record, with the same figures
    assert (record["stage"], record["status"], record["path"]) == ("demo", "written", str(out / "summary.json"))
    assert {k: record[k] for k in summary} == summary
    steps = [s["name"] for s in summary["steps"] if s["name"] != "totalseg_weights"]  # tiny weights, built once
    assert steps == ["phantoms", "segment_ct", "register", "init_data_config",
                     "convert_config_to_nnunet", "nnunet_train", "predict", "qc"]
    assert "TotalSegmentator" in summary["ct_labels_from"]
    assert summary["transferred_labels"] == 8  # 4 subjects x (T1w, T2w)
    # the CT labels come from the tiny local TotalSegmentator model (sacrum Dice 0.65-0.88 on the CT), so the
    # transferred Dice is bounded by that model, not by the registration; chance level is ~0.05
    assert summary["transfer_dice_min"] >= 0.5, summary
    assert summary["predictions"] == summary["split_counts"]["TESTING"] >= 2
    assert summary["prediction_dice_mean"] > 0.4, summary  # trained on the tiny model's labels; chance ~0.05
    assert (out / "qc" / "index.html").is_file()
    assert len(list((out / "qc" / "entries").glob("*.json"))) == 8 + summary["predictions"]


@pytest.mark.slow
def test_demo_from_a_gold_atlas_download_up_to_the_nnunet_dataset(tmp_path):
    """``--source goldatlas``: DICOM + RTSTRUCT as published -> bidsify -> register -> nnU-Net raw
    dataset; the shipped CT contours stand for TotalSegmentator (about 45 s on 2 cores)."""
    import nibabel as nib
    import numpy as np

    out = tmp_path / "demo"
    proc = run_module("demo", "--out", out, "--subjects", "4", "--device", "cpu", "--source", "goldatlas",
                      "--stop-after", "convert_config_to_nnunet", timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert [s["name"] for s in summary["steps"]] == ["phantoms", "bidsify", "segment_ct", "register",
                                                     "init_data_config", "convert_config_to_nnunet"]
    assert summary["source"] == "goldatlas" and "RTSTRUCT" in summary["ct_labels_from"]
    assert summary["transferred_labels"] == 8  # 4 subjects x (T1w, T2w)
    assert summary["transfer_dice_min"] > 0.85, summary  # rigid transfer of exact contours; chance ~0.05
    ds = out / "data" / "phantom"
    contour = ds / "derivatives/labels/sub-101/anat/sub-101_CT_label-sacrum_seg.nii.gz"
    truth = ds / "derivatives/ground_truth/sub-101/anat/sub-101_CT_label-sacrum_seg.nii.gz"
    a, b = (np.asanyarray(nib.load(str(p)).dataobj) > 0 for p in (contour, truth))
    assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.98  # the RTSTRUCT is the phantom's sacrum
    meta = json.loads(next((out / "nnUNet_raw").glob("Dataset501_*/dataset.json")).read_text(encoding="utf-8"))
    assert meta["numTraining"] == summary["split_counts"]["TRAINING"] + summary["split_counts"]["VALIDATION"]
