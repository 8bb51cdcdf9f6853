"""The evaluate stage as users run it: folders, a data config, its outputs, its refusals, QC figures.

The figures themselves are checked against nnU-Net and MONAI in test_evaluate_oracles.py.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from support.evaluate import grid_affine, label_pair, write_pair

from totalseg_bids.core.nifti import save_mask
from totalseg_bids.evaluate import COLUMNS, EvaluateOptions, evaluate_folders, evaluate_pair, main


@pytest.fixture
def folders(tmp_path) -> Path:
    """nnU-Net's layout: pred/ and ref/ with three cases (one with an empty reference class)."""
    affine = grid_affine("anisotropic")
    for seed in range(3):
        pred, ref = label_pair(seed)
        if seed == 2:
            ref[ref == 1] = 0  # class 1 absent from this reference: an empty reference
        write_pair(tmp_path, f"case_{seed:03d}.nii.gz", pred, ref, affine)
    return tmp_path


def _run(capsys, *argv) -> tuple[int, list[dict], str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def _one_error(err: str, *needles: str) -> str:
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def test_folders_table_json_and_summary(folders, capsys):
    out, summary = folders / "metrics.tsv", folders / "summary.md"
    code, records, err = _run(capsys, "--pred", folders / "pred", "--ref", folders / "ref", "-o", out,
                              "--summary", summary, "--labels", "1=sacrum", "2", "3", "-j", "1")
    assert code == 0, err
    assert [r["case"] for r in records] == ["case_000", "case_001", "case_002"]
    assert all(r["stage"] == "evaluate" and r["status"] == "evaluated" for r in records)
    assert list(records[0]["labels"]) == ["sacrum", "2", "3"]
    empty_ref = records[2]["labels"]["sacrum"]
    assert empty_ref["flags"] == ["empty_ref"] and empty_ref["dice"] == 0 and empty_ref["hd95_mm"] is None  # inf
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t") == list(COLUMNS) and len(lines) == 1 + 3 * 3
    row = dict(zip(COLUMNS, lines[-3].split("\t")))  # case_002, sacrum
    assert row["hd95_mm"] == "inf" and row["rvd"] == "inf" and row["flags"] == "empty_ref"
    text = summary.read_text(encoding="utf-8")
    assert "## sacrum (label 1)" in text and "| Dice | 3 |" in text and "(+1 inf)" in text and text in err
    assert "empty reference: 1 case(s) (case_002)" in text


def test_default_classes_cover_every_case(folders):
    """Without --labels every class any case holds is reported for every case (both empty: Dice 1)."""
    ref = folders / "ref" / "case_001.nii.gz"
    save_mask(np.zeros(nib.load(ref).shape, np.uint8), nib.load(ref).affine, folders / "pred" / "case_001.nii.gz")
    save_mask(np.zeros(nib.load(ref).shape, np.uint8), nib.load(ref).affine, ref)
    records = evaluate_folders(folders / "pred", folders / "ref", jobs=2)  # a process pool
    assert all(sorted(m["value"] for m in r["labels"].values()) == [1, 2, 3] for r in records)
    empty = records[1]["labels"]["1"]
    assert empty["dice"] == 1.0 and empty["flags"] == ["both_empty"] and math.isnan(empty["hd95_mm"])


def test_dseg_names_from_tsv_and_labels_by_name(tmp_path):
    pred, ref = label_pair(1)
    affine = grid_affine("oblique")
    p = save_mask(pred, affine, tmp_path / "sub-01_T2w_label-pelvis_dseg.nii.gz")
    r = save_mask(ref, affine, tmp_path / "truth" / "sub-01_T2w_label-pelvis_dseg.nii.gz")
    r.with_name("sub-01_T2w_label-pelvis_dseg.tsv").write_text("index\tname\n1\tsacrum\n2\tL5\n3\tL4\n")
    record = evaluate_pair(p, r)
    assert list(record["labels"]) == ["sacrum", "L5", "L4"]
    only = evaluate_pair(p, r, labels=["L5"])
    assert list(only["labels"]) == ["L5"] and only["labels"]["L5"]["flags"] == ["empty_pred"]
    with pytest.raises(ValueError, match="no class named 'femur'"):
        evaluate_pair(p, r, EvaluateOptions(labels=["femur"]))


def test_resample_to_ref(tmp_path, capsys):
    """A prediction on another grid: refused in one line naming --resample-to, measured with it."""
    pred, ref = label_pair(0)
    affine = grid_affine("anisotropic")
    coarse = affine.copy()
    coarse[:3, :3] *= 2  # half the resolution, same origin
    save_mask(pred[::2, ::2, ::2], coarse, tmp_path / "pred" / "c.nii.gz")
    save_mask(ref, affine, tmp_path / "ref" / "c.nii.gz")
    code, records, err = _run(capsys, "--pred", tmp_path / "pred", "--ref", tmp_path / "ref", "-o", tmp_path / "m.tsv")
    assert code == 1 and records == [] and not (tmp_path / "m.tsv").exists()
    _one_error(err, "c.nii.gz", "grids differ", "--resample-to ref")
    code, records, err = _run(capsys, "--pred", tmp_path / "pred", "--ref", tmp_path / "ref", "--resample-to", "ref")
    assert code == 0 and records[0]["resampled"] is True
    assert 0.7 < records[0]["labels"]["1"]["dice"] < 1


@pytest.mark.parametrize("damage, needle", [
    ("missing_pred", "1 reference(s) without a prediction of the same name: case_001"),
    ("extra_pred", "1 prediction(s) without a reference of the same name: case_009"),
    ("truncated", "truncated or corrupt"),
    ("soft", "non-integer values"),
    ("binary_values", "unexpected values [2]"),
    ("not_a_folder", "prediction folder not found"),
])
def test_bad_input_one_line_exit_1_nothing_written(folders, capsys, damage, needle):
    pred_dir = folders / "pred"
    target = pred_dir / "case_001.nii.gz"
    if damage == "missing_pred":
        target.unlink()
    elif damage == "extra_pred":
        shutil.copyfile(target, pred_dir / "case_009.nii.gz")
    elif damage == "truncated":
        target.write_bytes(target.read_bytes()[:200])
    elif damage == "soft":
        nib.save(nib.Nifti1Image(np.full((4, 4, 4), 0.5, np.float32), np.eye(4)), target)
    elif damage == "binary_values":  # a _seg must hold 0 and 1 only
        for folder in ("pred", "ref"):
            src = folders / folder / "case_001.nii.gz"
            src.rename(src.with_name("sub-01_T2w_label-sacrum_seg.nii.gz"))
    elif damage == "not_a_folder":
        pred_dir = folders / "nowhere"
    out = folders / "m.tsv"
    code, records, err = _run(capsys, "--pred", pred_dir, "--ref", folders / "ref", "-o", out, "-j", "1")
    assert code == 1 and records == [] and not out.exists(), err
    _one_error(err, needle)


@pytest.mark.parametrize("argv, needle", [
    (["--pred", "p"], "--ref is required without --config"),
    (["--pred", "p", "--ref", "r", "--tolerance-mm", "-1"], "--tolerance-mm must be >= 0"),
    (["--pred", "p", "--ref", "r", "--labels", "0"], "0 is the background"),
])
def test_usage_errors_exit_2(capsys, argv, needle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p").mkdir()
    (tmp_path / "r").mkdir()
    save_mask(np.ones((2, 2, 2), np.uint8), np.eye(4), tmp_path / "p" / "a.nii.gz")
    save_mask(np.ones((2, 2, 2), np.uint8), np.eye(4), tmp_path / "r" / "a.nii.gz")
    code, records, err = _run(capsys, *argv)
    assert code == 2 and records == []
    _one_error(err, needle)


# ------------------------------------------------------------------ config mode
def _config(ds: Path, labels: list[Path], path: Path) -> Path:
    path.write_text(json.dumps({"TYPE": "LABEL", "DATASETS_PATH": str(ds.parent), "TRAINING": [],
                                "TESTING": [str(p.relative_to(ds.parent)) for p in labels]}), encoding="utf-8")
    return path


def _predictions(ds: Path, truths: list[Path]) -> list[Path]:
    """Ground truth eroded once, written with the BIDS naming into derivatives/pred."""
    from scipy import ndimage

    from totalseg_bids.core.bids import BidsName

    out = []
    for truth in truths:
        img = nib.load(truth)
        name = BidsName.parse(truth).source().derivative("sacrum", naming="bids")
        rel = truth.parent.relative_to(ds / "derivatives" / "ground_truth")
        eroded = ndimage.binary_erosion(np.asarray(img.dataobj) > 0)
        out.append(save_mask(eroded, img.affine, ds / "derivatives" / "pred" / rel / name.filename))
    return out


def test_config_pairs_by_entities_across_namings(phantom_ds, tmp_path, capsys):
    truths = sorted(p for p in (phantom_ds / "derivatives" / "ground_truth").rglob("*_label-sacrum_seg.nii.gz")
                    if "_CT_" not in p.name)
    preds = _predictions(phantom_ds, truths)
    config = _config(phantom_ds, truths, tmp_path / "test.json")
    code, records, err = _run(capsys, "--config", config, "--pred", "pred", "-o", tmp_path / "m.tsv", "-q")
    assert code == 0, err
    assert sorted(Path(r["path"]) for r in records) == sorted(preds)
    assert all(Path(r["reference"]).name.replace("_label-sacrum_seg", "").replace("_acq-sag", "")
               .split("_")[0] == Path(r["path"]).name.split("_")[0] for r in records)
    assert all(0.3 < r["labels"]["sacrum"]["dice"] < 1 and r["image"] for r in records)
    preds[0].unlink()  # a case without its prediction: one line, nothing written
    code, records, err = _run(capsys, "--config", config, "--pred", phantom_ds / "derivatives" / "pred",
                              "-o", tmp_path / "m2.tsv")
    assert code == 1 and records == [] and not (tmp_path / "m2.tsv").exists()
    _one_error(err, "cannot be paired", "no prediction(s) of sacrum for")


def test_config_qc_figures_beside_each_prediction(phantom_ds, tmp_path, capsys):
    """An entry that predict wrote gets the figures in its meta; a prediction without one gets an
    entry of its own (image, prediction, reference as the contour)."""
    from totalseg_bids.core.qc_hook import qc_entry

    truths = sorted((phantom_ds / "derivatives" / "ground_truth").rglob("sub-01_*T2w_label-sacrum_seg.nii.gz"))
    truths += sorted((phantom_ds / "derivatives" / "ground_truth").rglob("sub-01_T1w_label-sacrum_seg.nii.gz"))
    preds = _predictions(phantom_ds, truths)
    qc = tmp_path / "qc"
    image = next((phantom_ds / "sub-01" / "anat").glob("*_T2w.nii.gz"))
    qc_entry(qc, image, preds[0], "predict", meta={"removed_voxels": {}})
    config = _config(phantom_ds, truths, tmp_path / "test.json")
    code, records, err = _run(capsys, "--config", config, "--pred", "pred", "--qc", qc, "-q")
    assert code == 0, err
    entries = [json.loads(p.read_text()) for p in sorted((qc / "entries").glob("*.json"))]
    assert len(entries) == 2
    by_label = {Path(e["label"]).name: e for e in entries}
    kept = by_label[preds[0].name]
    assert kept["stage"] == "predict" and "removed_voxels" in kept["meta"]
    assert kept["meta"]["Dice vs reference"] == round(records[0]["labels"]["sacrum"]["dice"], 4)
    added = by_label[preds[1].name]
    assert added["stage"] == "evaluate" and added["compare_label"] == str(truths[1].absolute())
    assert "HD95 (mm)" in added["meta"] and (qc / "index.html").is_file()


def test_chill_leaves_out_references_without_prediction(folders, capsys):
    """nnU-Net's -chill: a fold's validation predictions against the whole labelsTr."""
    (folders / "pred" / "case_001.nii.gz").unlink()
    code, records, err = _run(capsys, "--pred", folders / "pred", "--ref", folders / "ref", "--chill", "-j", "1")
    assert code == 0 and [r["case"] for r in records] == ["case_000", "case_002"]
    assert "1 reference(s) without a prediction left out (--chill): case_001" in err
