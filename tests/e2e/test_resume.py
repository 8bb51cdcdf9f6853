"""A truncated or sidecar-less output is never skipped as done; derived files name the stage that re-creates them."""

import json
import logging

import nibabel as nib
import numpy as np
import pytest

from totalseg_bids.core.derivatives import output_complete
from totalseg_bids.core.errors import InputError
from totalseg_bids.core.nifti import load_nifti
from totalseg_bids.core.resume import is_done, output_problem, recreate_fix


def _derived(tmp_path, stage="crop"):
    out = tmp_path / "ds" / "derivatives" / "labels" / "sub-01" / "anat" / "sub-01_T2w_label-sacrum_seg.nii.gz"
    out.parent.mkdir(parents=True)
    nib.save(nib.Nifti1Image(np.random.default_rng(0).integers(0, 2, (40, 40, 40), dtype=np.uint8), np.eye(4)),
             str(out))
    side = out.with_name(out.name.replace(".nii.gz", ".json"))
    side.write_text(json.dumps({"Sources": ["bids::sub-01/anat/sub-01_T2w.nii.gz"],
                                "GeneratedBy": [{"Name": "totalseg_bids", "Stage": stage}]}))
    return out, side


def test_complete_output_is_done(tmp_path):
    out, _ = _derived(tmp_path)
    assert output_problem(out) is None
    assert is_done(out, ["/x/sub-01/anat/sub-01_T2w.nii.gz"])
    assert not is_done(out, overwrite=True)


def test_truncated_output_is_redone_with_warning(tmp_path, caplog):
    out, _ = _derived(tmp_path)
    data = out.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING):
        assert not output_complete(out)
    assert "truncated" in caplog.text and "redoing" in caplog.text
    with pytest.raises(InputError) as err:
        load_nifti(out)
    assert "python -m totalseg_bids.crop" in str(err.value)
    assert "datalad get" not in str(err.value)


def test_missing_sidecar_or_other_inputs_not_done(tmp_path):
    out, side = _derived(tmp_path)
    assert output_problem(out, ["sub-02_T2w.nii.gz"]) == "its sidecar names other inputs"
    side.unlink()
    assert output_problem(out) == "its sidecar is missing"
    assert output_problem(tmp_path / "nope.nii.gz") == "missing"


def test_raw_file_fix_is_recopy(tmp_path):
    assert "datalad get" in recreate_fix(tmp_path / "sub-01" / "anat" / "sub-01_T2w.nii.gz")
