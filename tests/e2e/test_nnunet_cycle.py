"""The nnU-Net cycle from our commands, on the session's tiny model (two folds drawn by subject):
train_nnunet -> nnUNetv2_find_best_configuration -> predict with both folds -> nnU-Net's post-processing,
checked against nnU-Net's own nnUNetv2_predict + nnUNetv2_apply_postprocessing on the same image."""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from support.nnunet import DATASET_ID, TRAINER, _run

from totalseg_bids.nnunet.postprocess import resolve_postprocessing


@pytest.mark.slow
def test_train_find_best_ensemble_postprocess(trained_model, tmp_path, cli):  # noqa: F811
    tm = trained_model
    model_rec, best = tm.train_records
    assert (model_rec["status"], model_rec["folds"], model_rec["trained"]) == ("written", [0, 1], [0, 1])
    assert best["kind"] == "best_configuration" and best["best"] == tm.model_dir.name and best["folds"] == [0, 1]
    pkl = tm.model_dir / "crossval_results_folds_0_1" / "postprocessing.pkl"
    assert best["postprocessing_file"] == str(pkl) and pkl.is_file()
    assert Path(best["path"]) == tm.results / tm.dataset_folder / "inference_information.json"
    assert "nnU-Net's choice: " in tm.plan_output
    # predict's default post-processing is the one find_best_configuration decided for this model
    labels = json.loads((tm.model_dir / "dataset.json").read_text())["labels"]
    auto = resolve_postprocessing("auto", tm.model_dir, ("0", "1"), labels)
    assert (auto.method, auto.source) == ("nnunet", pkl)

    # a rerun has nothing to train and reuses nnU-Net's choice
    again = cli("train_nnunet", "-d", str(DATASET_ID), "-f", "all", "-tr", TRAINER, "--device", "cpu",
                env=tm.env, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert [json.loads(line)["status"] for line in again.stdout.splitlines()] == ["skipped", "skipped"]
    assert "nnUNetv2_" not in again.stderr

    # both folds ensembled and nnU-Net's post-processing (here one that keeps the largest sacrum
    # component, in nnU-Net's own pickle format), against nnU-Net's own commands on the same image
    from nnunetv2.postprocessing.remove_connected_components import (
        remove_all_but_largest_component_from_segmentation as keep_largest_fn,
    )

    custom = tmp_path / "postprocessing.pkl"
    custom.write_bytes(pickle.dumps(([keep_largest_fn], [{"labels_or_regions": [1]}])))
    image = tm.bids / "sub-05" / "anat" / "sub-05_acq-sag_T2w.nii.gz"
    cfg = tmp_path / "test.json"
    cfg.write_text(json.dumps({"TYPE": "IMAGE", "CONTRASTS": "t2", "DATASETS_PATH": str(tm.bids.parent),
                               "TRAINING": [], "VALIDATION": [],
                               "TESTING": [image.relative_to(tm.bids.parent).as_posix()]}))
    proc = cli("predict", "--config", cfg, "-d", str(DATASET_ID), "-tr", TRAINER, "-f", "0", "1",
               "--postprocess", "nnunet", "--postprocessing-file", custom, "--no-tta", "--device", "cpu",
               "--derivatives", "ensemble", "--qc", tmp_path / "qc", env=tm.env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (rec,) = [json.loads(line) for line in proc.stdout.splitlines()]
    ours = np.asanyarray(nib.load(rec["path"]).dataobj)

    nn_in, nn_out, nn_pp = (tmp_path / n for n in ("nn_in", "nn_out", "nn_pp"))
    nn_in.mkdir()
    (nn_in / "case_0000.nii.gz").symlink_to(image)
    _run(["nnUNetv2_predict", "-i", str(nn_in), "-o", str(nn_out), "-d", str(DATASET_ID), "-c", "3d_fullres",
          "-tr", TRAINER, "-f", "0", "1", "--disable_tta", "-device", "cpu", "-npp", "1", "-nps", "1"], tm.env, 900)
    _run(["nnUNetv2_apply_postprocessing", "-i", str(nn_out), "-o", str(nn_pp), "-pp_pkl_file", str(custom),
          "-np", "1", "-plans_json", str(tm.model_dir / "plans.json"),
          "-dataset_json", str(tm.model_dir / "dataset.json")], tm.env, 600)
    raw = np.asanyarray(nib.load(str(nn_out / "case.nii.gz")).dataobj)
    theirs = np.asanyarray(nib.load(str(nn_pp / "case.nii.gz")).dataobj)
    assert ours.shape == theirs.shape and np.array_equal(ours, theirs)
    removed = int(((raw == 1) & (theirs == 0)).sum())
    side = json.loads(Path(rec["path"].replace(".nii.gz", ".json")).read_text(encoding="utf-8"))
    nn, post = side["GeneratedBy"][0], side["GeneratedBy"][1]["PostProcessing"]
    assert nn["Folds"] == ["0", "1"] and post["Method"] == "nnunet" and post["File"] == str(custom)
    assert post["Steps"] == ["remove_all_but_largest_component_from_segmentation(labels_or_regions=[1])"]
    assert side.get("RemovedVoxels", {}).get("sacrum", 0) == removed
    fraction = removed / max(int((raw == 1).sum()), 1)
    assert side.get("PostProcessingRemovedMuch", False) is (fraction > 0.1)
    (entry,) = [json.loads(p.read_text()) for p in (tmp_path / "qc" / "entries").glob("*.json")]
    assert entry["meta"]["postprocessing"] == "nnunet"
    print(f"ensemble of folds 0 1 with nnU-Net's post-processing: identical to nnUNetv2_predict + "
          f"nnUNetv2_apply_postprocessing; {removed} voxel(s) removed ({fraction:.1%})", file=sys.stderr)
