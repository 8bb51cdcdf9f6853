"""totalseg_bids.stats against counts computed here with numpy."""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pytest

from conftest import assert_one_line_error
from totalseg_bids import stats

GT = "ds/derivatives/ground_truth"


def test_stats_match_numpy(phantom_ds, tmp_path, capsys):
    labels = {
        "train": [f"{GT}/sub-01/anat/sub-01_acq-sag_T2w_label-phantom_dseg.nii.gz",
                  f"{GT}/sub-02/ses-01/anat/sub-02_ses-01_T1w_label-phantom_dseg.nii.gz"],
        "val": [f"{GT}/sub-02/ses-02/anat/sub-02_ses-02_acq-sag_T2w_label-sacrum_seg.nii.gz"],
        "test": [f"{GT}/sub-03/anat/sub-03_T1w_label-phantom_dseg.nii.gz"],
    }
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"TYPE": "LABEL", "DATASETS_PATH": str(phantom_ds.parent),
                               "TRAINING": labels["train"], "VALIDATION": labels["val"],
                               "TESTING": labels["test"]}))
    tsv, js = tmp_path / "stats.tsv", tmp_path / "stats.json"
    assert stats.main(["--config", str(cfg), "-o", str(tsv), "--json", str(js), "-j", "1"]) == 0
    result = json.loads(js.read_text())["ds"]
    printed = capsys.readouterr().out
    assert "| ds | train | 2 | 2 |" in printed and "sacrum" in printed

    for split, paths in labels.items():
        imgs = [nib.load(str(phantom_ds.parent / p)) for p in paths]
        arrays = [np.asarray(i.dataobj) for i in imgs]
        total = sum(a.size for a in arrays)
        g = result[split]
        assert g["cases"] == len(paths) and g["labelled_cases"] == len(paths)
        assert g["shape"]["max"] == np.max([a.shape for a in arrays], axis=0).tolist()
        assert g["spacing_mm"]["min"] == pytest.approx(
            np.min([nib.affines.voxel_sizes(i.affine) for i in imgs], axis=0), abs=1e-3)
        for value in sorted(set(np.concatenate([np.unique(a) for a in arrays]).tolist())):
            c = g["classes"][str(value)]
            assert c["voxel_percent"] == pytest.approx(100 * sum((a == value).sum() for a in arrays) / total, abs=1e-3)
            assert c["images"] == sum(bool((a == value).any()) for a in arrays)
            vols = [(a == value).sum() * abs(np.linalg.det(i.affine[:3, :3])) / 1000
                    for a, i in zip(arrays, imgs) if (a == value).any()]
            assert c["volume_ml"]["mean"] == pytest.approx(np.mean(vols), rel=1e-4)
            assert c["volume_ml"]["max"] == pytest.approx(np.max(vols), rel=1e-4)
    assert result["train"]["subjects"] == 2 and result["all"]["subjects"] == 3 and result["all"]["cases"] == 4
    assert result["train"]["classes"]["1"]["name"] == "sacrum"
    rows = list(csv.DictReader(open(tsv), delimiter="\t"))
    assert {(r["split"], r["class_index"]) for r in rows} >= {("train", "0"), ("val", "1"), ("test", "4")}


def test_missing_input_is_one_line_error(tmp_path, cli):
    missing = tmp_path / "nope.json"
    proc = cli("stats", "--config", missing)
    assert_one_line_error(proc, str(missing))
