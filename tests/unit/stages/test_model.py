"""totalseg_bids.model: export a trained nnU-Net, install it elsewhere, predict with it."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from support import REPO, assert_one_line_error
from support.nnunet import DATASET_ID

from totalseg_bids.model import CARD
from totalseg_bids.nnunet.model_zip import REGISTRY, model_folders

MODULE = "model"


def _env(tmp_path: Path, **extra) -> dict:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("nnUNet_") and k != "TOTALSEG_BIDS_MODELS"}
    env.update({"TOTALSEG_BIDS_NO_PROGRESS": "1", "nnUNet_def_n_proc": "1",
                "PYTHONPATH": str(REPO) + os.pathsep + env.get("PYTHONPATH", "")})
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _fake_export(path: Path, dataset: str, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(f"{dataset}/T__P__3d_fullres/{name}", text)
    return path


def test_install_bad_inputs(tmp_path, cli):
    env = _env(tmp_path, TOTALSEG_BIDS_MODELS=tmp_path / "models")
    proc = cli(MODULE, "install", tmp_path / "missing.zip", env=env)
    assert_one_line_error(proc, "model zip not found")
    (tmp_path / "notzip.zip").write_text("hello")
    assert_one_line_error(cli(MODULE, "install", tmp_path / "notzip.zip", env=env), "not a zip file")
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("README.txt", "no model here")
    assert_one_line_error(cli(MODULE, "install", other, env=env), "not an nnU-Net model export")
    # the dataset id is taken by another dataset name
    (tmp_path / "models" / f"Dataset{DATASET_ID}_Sacrum").mkdir(parents=True)
    clash = _fake_export(tmp_path / "clash.zip", f"Dataset{DATASET_ID}_Other",
                         {"plans.json": "{}", "dataset.json": "{}"})
    assert_one_line_error(cli(MODULE, "install", clash, env=env), f"dataset id {DATASET_ID} is already installed")
    assert not (tmp_path / "models" / f"Dataset{DATASET_ID}_Other").exists()
    assert not (tmp_path / "models" / REGISTRY).exists()
    proc = cli(MODULE, "list", env=_env(tmp_path))
    assert_one_line_error(proc, "no model folder configured", code=2)


def test_model_folders_ignores_incomplete():
    assert model_folders(["Dataset1_A/T__P__2d/plans.json", "x/y"]) == []


def _predict(cli, env, ds, cfg, deriv, *model_args):
    proc = cli("predict", "--config", cfg, "--datasets-path", ds.parent, *model_args, "-f", "0", "--postprocess",
               "none", "--no-tta", "--device", "cpu", "--derivatives", deriv, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (rec,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert rec["stage"] == "predict" and rec["status"] == "written"
    return Path(rec["path"])


@pytest.mark.slow
def test_export_install_predict(trained_model, tmp_path, cli):  # noqa: F811
    tm = trained_model
    zip_path = tmp_path / "sacrum_model.zip"
    proc = cli(MODULE, "export", "-d", str(DATASET_ID), "-c", "3d_fullres", "-f", "0",
               "-tr", tm.model_dir.name.split("__")[0], "-o", zip_path, env=tm.env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (rec,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert rec == {"stage": "model", "status": "written", "path": str(zip_path), "dataset": str(DATASET_ID),
                   "configuration": "3d_fullres"}
    prefix = f"{tm.dataset_folder}/{tm.model_dir.name}"
    with zipfile.ZipFile(zip_path) as zf:
        names = set(zf.namelist())
        card = json.loads(zf.read(f"{prefix}/{CARD}"))
    assert {f"{prefix}/fold_0/checkpoint_final.pth", f"{prefix}/plans.json", f"{prefix}/dataset.json",
            f"{prefix}/case_mapping.tsv"} <= names
    assert card["DatasetId"] == DATASET_ID and card["Labels"] == {"background": 0, "sacrum": 1}
    assert card["Split"]["TRAINING"] and card["Split"]["VALIDATION"] and card["SourceDatasets"] == ["phantom"]
    assert card["Versions"]["nnunetv2"] and card["TrainingCommand"][0].startswith(f"nnUNetv2_train {DATASET_ID} ")
    assert isinstance(card["ValidationDice"]["fold_0"]["ForegroundMean"], float)

    clean = tmp_path / "clean_results"
    env = _env(tmp_path, nnUNet_results=clean)
    proc = cli(MODULE, "install", zip_path, "--name", "sacrum", env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (clean / prefix / "fold_0" / "checkpoint_final.pth").is_file()
    again = cli(MODULE, "install", zip_path, "--name", "sacrum", env=env, timeout=300)  # same zip: a no-op
    assert again.returncode == 0, again.stderr[-3000:]
    (listed,) = [json.loads(line) for line in cli(MODULE, "list", env=env).stdout.splitlines()]
    assert listed["name"] == "sacrum" and listed["card"]["Dataset"] == tm.dataset_folder
    assert listed["status"] == "installed" and listed["path"] == str(clean / prefix)
    sha = listed["sha256"]

    # a different model under the same dataset id is refused
    changed = tmp_path / "changed.zip"
    with zipfile.ZipFile(zip_path) as src, zipfile.ZipFile(changed, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, data + b" " if info.filename.endswith("/plans.json") else data)
    assert_one_line_error(cli(MODULE, "install", changed, "--name", "other", env=env), "a different model")
    assert "other" not in json.loads((clean / REGISTRY).read_text(encoding="utf-8"))

    ds = tmp_path / "bids" / "phantom"
    shutil.copytree(tm.bids, ds, symlinks=True)
    image = ds / "sub-05" / "anat" / "sub-05_T1w.nii.gz"
    cfg = tmp_path / "one.json"
    cfg.write_text(json.dumps({"TYPE": "IMAGE", "CONTRASTS": "t1_t2", "DATASETS_PATH": "", "TRAINING": [],
                               "VALIDATION": [], "TESTING": [image.relative_to(ds.parent).as_posix()]}))
    ref = _predict(cli, tm.env, ds, cfg, "from_training", "--model-dir", tm.model_dir)
    by_name = _predict(cli, env, ds, cfg, "from_name", "--model", "sacrum")
    by_zip = _predict(cli, _env(tmp_path), ds, cfg, "from_zip", "--model-zip", zip_path)
    r = nib.load(str(ref))
    for out, name in ((by_name, "sacrum"), (by_zip, "sacrum_model.zip")):
        img = nib.load(str(out))
        assert np.array_equal(np.asanyarray(img.dataobj), np.asanyarray(r.dataobj))
        assert np.array_equal(img.affine, r.affine)
        side = json.loads(out.with_name(out.name.replace(".nii.gz", ".json")).read_text(encoding="utf-8"))
        assert side["GeneratedBy"][0]["Model"] == {"Name": name, "SHA256": sha}
    assert np.asanyarray(r.dataobj).any()
    proc = cli("predict", "--config", cfg, "--datasets-path", ds.parent, "--model", "nope", env=env)
    assert_one_line_error(proc, "no installed model named 'nope'")
