"""The main job, reduced: the demo end to end on 4 phantom subjects,
exactly as ``bash scripts/demo.sh`` runs it, with its summary checked."""

from __future__ import annotations

import json

import pytest
from support import run_module

from totalseg_bids.testing.demo_summary import format_summary


# the main job end to end (3 minutes alone on 2 cores): over the 180 s budget when another test shares the cores
@pytest.mark.timeout(600)
@pytest.mark.slow
def test_demo_end_to_end(tmp_path, tiny_totalseg_home):
    """The real TotalSegmentator on the tiny weights (the session's build, as the demo's own step reuses it),
    a real nnU-Net training and prediction; each step's Dice against the phantom's ground truth."""
    out = tmp_path / "demo"
    proc = run_module("demo", "--out", out, "--subjects", "4", "--device", "cpu", timeout=1800,
                      env={"TOTALSEG_BIDS_TINY_WEIGHTS": str(tiny_totalseg_home)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| Dice prediction vs ground truth" in proc.stderr  # the table, for people
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    record = json.loads(proc.stdout)  # stdout: the one JSON record, with the same figures
    assert (record["stage"], record["status"], record["path"]) == ("demo", "written", str(out / "summary.json"))
    assert {k: record[k] for k in summary} == summary
    assert [s["name"] for s in summary["steps"]] == ["phantoms", "totalseg_weights", "segment_ct", "register",
                                                     "init_data_config", "convert_config_to_nnunet",
                                                     "nnunet_train", "predict", "qc"]
    assert "TotalSegmentator" in summary["ct_labels_from"] and "tiny" in summary["ct_labels_from"]
    # what each step contributes: the CT label, its transfer beside the ceiling, the prediction (chance ~0.05)
    assert summary["ct_labels"] == 4 and summary["ct_label_dice_min"] >= 0.9, summary
    assert summary["transferred_labels"] == 8  # 4 subjects x (T1w, T2w)
    assert summary["transfer_ceiling_min"] >= 0.95, summary  # the truth moved by the registration's transform
    assert summary["transfer_dice_min"] >= 0.88 and summary["transfer_dice_mean"] >= 0.9, summary
    assert summary["predictions"] == summary["split_counts"]["TESTING"] >= 2
    assert summary["prediction_dice_mean"] > 0.7, summary
    assert (out / "qc" / "index.html").is_file()
    assert summary["qc_entries"] == 8 + summary["predictions"]
    assert summary["qc_flagged"] <= summary["qc_entries"] // 4, summary  # no longer mostly warnings


def test_summary_table_separates_the_steps():
    """The table names each step's Dice, the ceiling beside the transfer Dice, and says n/a for a step not run."""
    summary = {"subjects": 4, "source": "phantoms", "ct_labels_from": "TotalSegmentator", "misaligned_subjects": ["01"],
               "ct_label_dice_mean": 0.93, "ct_label_dice_min": 0.91, "transferred_labels": 8,
               "transfer_dice_mean": 0.92, "transfer_dice_min": 0.9, "transfer_ceiling_mean": 0.98,
               "transfer_ceiling_min": 0.97, "split_counts": {"TRAINING": 4, "VALIDATION": 2, "TESTING": 2},
               "predictions": 0, "prediction_dice_mean": None, "prediction_dice_min": None, "qc_entries": 8,
               "qc_flagged": 1, "steps": [{"name": "phantoms", "seconds": 3.0, "detail": ""}], "total_seconds": 3.0,
               "outputs": {"dataset": "ds"}}
    table = format_summary(summary)
    assert "| Dice CT label vs ground truth, on the CT (mean / min) | 0.930 / 0.910 |" in table
    assert "| Dice transferred vs ground truth (mean / min) | 0.920 / 0.900 |" in table
    assert "| ceiling: ground truth moved the same way (mean / min) | 0.980 / 0.970 |" in table
    assert "| Dice prediction vs ground truth (mean / min) | n/a / n/a |" in table
    assert "| QC entries (with a warning) | 8 (1) |" in table
    assert "| phantoms | 3.0 | 0.0 |  |" in table


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
    assert summary["ct_label_dice_min"] > 0.98, summary  # the RTSTRUCT is the phantom's sacrum
    assert summary["transferred_labels"] == 8  # 4 subjects x (T1w, T2w)
    assert summary["transfer_dice_min"] > 0.85, summary  # rigid transfer of exact contours; chance ~0.05
    assert summary["transfer_ceiling_min"] > 0.85, summary
    ds = out / "data" / "phantom"
    contour = ds / "derivatives/labels/sub-101/anat/sub-101_CT_label-sacrum_seg.nii.gz"
    truth = ds / "derivatives/ground_truth/sub-101/anat/sub-101_CT_label-sacrum_seg.nii.gz"
    a, b = (np.asanyarray(nib.load(str(p)).dataobj) > 0 for p in (contour, truth))
    assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.98  # the RTSTRUCT is the phantom's sacrum
    meta = json.loads(next((out / "nnUNet_raw").glob("Dataset501_*/dataset.json")).read_text(encoding="utf-8"))
    assert meta["numTraining"] == summary["split_counts"]["TRAINING"] + summary["split_counts"]["VALIDATION"]
