"""Config errors that name an image also name its dataset and the label files involved."""

from pathlib import Path

import pytest

from totalseg_bids.core.config import Case, check_cases
from totalseg_bids.core.errors import InputError


def test_image_listed_twice_names_dataset_and_both_labels(tmp_path):
    img = tmp_path / "dsA" / "sub-03" / "anat" / "sub-03_T1w.nii.gz"
    gt = tmp_path / "dsA" / "derivatives" / "ground_truth" / "sub-03" / "anat" / "sub-03_T1w_label-sacrum_seg.nii.gz"
    reg = tmp_path / "dsA" / "derivatives" / "reg-labels" / "sub-03" / "anat" / "sub-03_T1w_label-sacrum_seg.nii.gz"
    cases = [Case("TRAINING", (img,), gt), Case("TRAINING", (img,), reg)]
    with pytest.raises(InputError) as err:
        check_cases(cases, Path("cfg.json"))
    text = str(err.value)
    assert "dsA/sub-03/anat/sub-03_T1w.nii.gz" in text
    assert str(gt) in text and str(reg) in text
    assert "--label-dir" in text


def test_entry_outside_datasets_path_is_refused(tmp_path):
    import json

    from totalseg_bids.core.config import load_config

    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"TYPE": "LABEL", "DATASETS_PATH": str(tmp_path / "data"),
                               "TRAINING": ["../ds/derivatives/labels/sub-01/anat/sub-01_T2w_label-x_seg.nii.gz"]}))
    with pytest.raises(InputError) as err:
        load_config(cfg).cases()
    assert "outside DATASETS_PATH" in str(err.value) and str(cfg) in str(err.value)
