"""totalseg_bids.predict: a tiny real nnU-Net -> BIDS derivatives."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from support import assert_one_line_error
from support.nnunet import DATASET_ID

from totalseg_bids.core.errors import BatchError, UsageError
from totalseg_bids.core.nifti import dice, qform_sform_discrepancy
from totalseg_bids.nnunet.engine import resolve_model
from totalseg_bids.nnunet.naming import find_dataset
from totalseg_bids.nnunet.postprocess import keep_largest
from totalseg_bids.predict import PredictOptions, predict

MODULE = "predict"


# ----------------------------------------------------------- unit: largest CC
def test_keep_largest_per_label_union_off():
    seg = np.zeros((12, 12, 12), np.uint8)
    seg[0:4, 0:4, 0:4] = 1        # 64 voxels, label 1
    seg[8:10, 8:10, 8:10] = 1     # 8 voxels, label 1: removed
    seg[5:7, 0:3, 0:3] = 2        # 18 voxels, label 2, kept per label
    seg[10:12, 0:1, 0:1] = 2      # 2 voxels, label 2: removed
    out, removed = keep_largest(seg, "per-label")
    assert (out == 1).sum() == 64 and (out == 2).sum() == 18 and removed == {1: 8, 2: 2}
    # union: label 2's block touches nothing of label 1 -> only the largest union component remains
    out_u, _ = keep_largest(seg, "union")
    assert (out_u == 1).sum() == 64 and (out_u == 2).sum() == 0
    seg[4, 0, 0] = 2  # bridge: label 2 now touches label 1 -> one union component keeps both labels
    out_b, _ = keep_largest(seg, "union")
    assert (out_b == 1).sum() == 64 and (out_b == 2).sum() == 19
    assert np.array_equal(keep_largest(seg, "off")[0], seg)


def test_keep_largest_26_connectivity_ties_and_empty():
    diag = np.zeros((3, 3, 3), np.uint8)
    diag[0, 0, 0] = diag[1, 1, 1] = diag[2, 2, 2] = 1  # corner-connected: one component with 26-connectivity
    assert keep_largest(diag)[0].sum() == 3
    tie = np.zeros((4, 4, 4), np.uint8)
    tie[3, 3, 3] = 1
    tie[0, 0, 0] = 1  # same size: the first in C-order raster scan wins
    out, removed = keep_largest(tie)
    assert out[0, 0, 0] == 1 and out[3, 3, 3] == 0 and removed == {1: 1}
    empty = np.zeros((5, 5, 5), np.uint8)
    out, removed = keep_largest(empty)
    assert not out.any() and removed == {}


def test_default_folds_are_every_trained_fold(tmp_path):
    from totalseg_bids.nnunet.engine import trained_folds

    folder = _unloadable_model(tmp_path)
    for fold in ("1", "all", "10"):
        (folder / f"fold_{fold}").mkdir()
        (folder / f"fold_{fold}" / "checkpoint_final.pth").write_bytes(b"x")
    (folder / "fold_2").mkdir()  # no checkpoint: not trained
    assert trained_folds(folder) == ("0", "1", "10")
    assert resolve_model(folder).folds == ("0", "1", "10") and resolve_model(folder, folds=["all"]).folds == ("all",)
    for fold in ("0", "1", "10"):
        (folder / f"fold_{fold}" / "checkpoint_final.pth").unlink()
    assert resolve_model(folder).folds == ("all",)  # nnU-Net's all-cases model when it is the only one


def test_model_resolution_errors(tmp_path):
    from totalseg_bids.core.errors import MissingFileError

    with pytest.raises(MissingFileError, match="model folder not found"):
        resolve_model(tmp_path / "nope")
    (tmp_path / "Dataset300_A").mkdir()
    with pytest.raises(MissingFileError, match=r"no Dataset301_\* folder \(found: Dataset300_A\)"):
        find_dataset(tmp_path, "301", "check -d")


# ----------------------------------------------------------- end to end
def _dataset_copy(trained, tmp_path) -> Path:
    dst = tmp_path / "bids" / "phantom"
    shutil.copytree(trained.bids, dst, symlinks=True)
    return dst


def _config(ds: Path, path: Path, images: list[Path]) -> Path:
    cfg = {"TYPE": "IMAGE", "CONTRASTS": "t1_t2", "DATASETS_PATH": "",
           "TRAINING": [], "VALIDATION": [], "TESTING": [p.relative_to(ds.parent).as_posix() for p in images]}
    path.write_text(json.dumps(cfg), encoding="utf-8")
    return path


def _mri(ds: Path, subs=None) -> list[Path]:
    out = sorted(p for p in ds.glob("sub-*/anat/*.nii.gz") if not p.name.endswith("_CT.nii.gz"))
    return [p for p in out if subs is None or any(f"sub-{s}_" in p.name for s in subs)]


def _out(ds: Path, image: Path) -> Path:
    stem = image.name[:-len(".nii.gz")]
    return ds / "derivatives" / "labels" / image.parent.relative_to(ds) / f"{stem}_label-sacrum_seg.nii.gz"


@pytest.mark.slow
def test_predict_config_end_to_end(trained_model, tmp_path, cli):  # noqa: F811
    ds = _dataset_copy(trained_model, tmp_path)
    images = _mri(ds, ["04", "05"])  # validation + testing subjects: not trained on
    cfg = _config(ds, tmp_path / "test_sacrum.json", images)
    args = ["--config", cfg, "--datasets-path", ds.parent, "--model-dir", trained_model.model_dir, "-f", "0",
            "--largest-component", "--no-tta", "--device", "cpu", "-v", "--qc", tmp_path / "qc"]
    proc = cli(MODULE, *args, env=trained_model.env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    outs = [_out(ds, i) for i in images]
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["stage"], r["status"], r["path"]) for r in records] == [("predict", "written", str(o)) for o in outs]
    entries = [json.loads(f.read_text(encoding="utf-8")) for f in (tmp_path / "qc" / "entries").glob("*.json")]
    assert sorted(Path(e["label"]) for e in entries) == sorted(outs) and {e["stage"] for e in entries} == {"predict"}
    assert {e["meta"]["postprocessing"] for e in entries} == {"largest"}
    dices = {}
    for image, out in zip(images, outs):
        img, pred = nib.load(str(image)), nib.load(str(out))
        assert pred.shape == img.shape and np.allclose(pred.affine, img.affine, atol=1e-4)
        assert pred.get_data_dtype() == np.uint8 and qform_sform_discrepancy(pred) < 1e-3
        data = np.asanyarray(pred.dataobj)
        assert set(np.unique(data).tolist()) <= {0, 1}
        truth = ds / "derivatives" / "ground_truth" / out.relative_to(ds / "derivatives" / "labels")
        dices[image.name] = dice(data, np.asanyarray(nib.load(str(truth)).dataobj))
        side = json.loads(out.with_name(out.name.replace(".nii.gz", ".json")).read_text(encoding="utf-8"))
        rel = image.relative_to(ds).as_posix()
        assert side["SpatialReference"] == f"bids:raw:{rel}" and side["Sources"] == [f"bids:raw:{rel}"]
        nn, ours = side["GeneratedBy"]
        assert nn["Name"] == "nnUNet" and nn["Dataset"] == trained_model.dataset_folder
        assert nn["Configuration"] == "3d_fullres" and nn["Trainer"] == "nnUNetTrainer_2epochs_10iters"
        assert nn["Folds"] == ["0"] and nn["Checkpoint"] == "checkpoint_final.pth" and nn["Device"] == "cpu"
        assert ours["Name"] == "totalseg_bids" and ours["PostProcessing"]["Method"] == "largest"
        assert "largest connected component of every label" in ours["PostProcessing"]["Description"]
        assert set(side.get("RemovedVoxels", {})) <= {"sacrum"} and set(side.get("RemovedFraction", {})) <= {"sacrum"}
    print("Dice vs ground truth:", {k: round(v, 3) for k, v in dices.items()})
    assert np.mean(list(dices.values())) > 0.5, dices
    desc = json.loads((ds / "derivatives" / "labels" / "dataset_description.json").read_text(encoding="utf-8"))
    assert desc["DatasetType"] == "derivative" and desc["GeneratedBy"][0]["Name"]
    # resume: nothing left to do, the model is not even loaded
    mtimes = [o.stat().st_mtime_ns for o in outs]
    again = cli(MODULE, *args, env=trained_model.env)
    assert again.returncode == 0 and "skipped 4" in again.stderr
    assert [json.loads(line)["status"] for line in again.stdout.splitlines()] == ["skipped"] * len(outs)
    assert [o.stat().st_mtime_ns for o in outs] == mtimes
    # pybids indexes the derivatives
    from bids import BIDSLayout

    layout = BIDSLayout(ds, derivatives=True, validate=False)
    found = layout.get(scope="derivatives", suffix="seg", label="sacrum", extension=".nii.gz",
                       return_type="filename")
    assert {Path(f).name for f in found} >= {o.name for o in outs if "derivatives/labels" in str(o)}


@pytest.mark.slow
def test_predict_bids_query_sharding_and_failures(trained_model, tmp_path, cli):  # noqa: F811
    ds = _dataset_copy(trained_model, tmp_path)
    # keep the query small: drop the training subjects' MRI from the copy
    for sub in ("01", "02", "03"):
        shutil.rmtree(ds / f"sub-{sub}")
    base = ["--bids-dir", ds, "--contrasts", "T1w", "T2w", "-d", str(DATASET_ID), "-tr",
            "nnUNetTrainer_2epochs_10iters", "-f", "0", "--no-tta", "--keep-largest", "union"]
    parts = []
    for part in (0, 1):
        proc = cli(MODULE, *base, "--num-parts", "2", "--part-id", str(part), env=trained_model.env, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        parts.append({json.loads(line)["path"] for line in proc.stdout.splitlines()})
    assert not parts[0] & parts[1]
    assert parts[0] | parts[1] == {str(_out(ds, i)) for i in _mri(ds)}
    # a corrupt image, in a library call: the others are still predicted, then one BatchError
    # lists it, with the good outputs' records in .done; no half-written output
    bad = _mri(ds, ["05"])[0]
    bad.write_bytes(bad.read_bytes()[:400])
    for out in (_out(ds, i) for i in _mri(ds)):
        out.unlink()
    model = resolve_model(trained_model.model_dir, folds=["0"])
    with pytest.raises(BatchError) as info:
        predict([(i,) for i in _mri(ds)], model, tta=False, postprocess="largest", largest_mode="union", device="cpu")
    assert [item for item, _msg in info.value.failures] == [str(bad)]
    good = [str(_out(ds, i)) for i in _mri(ds) if i != bad]
    assert sorted(r["path"] for r in info.value.done) == sorted(good)
    assert {r["status"] for r in info.value.done} <= {"written", "empty"}
    assert not _out(ds, bad).exists()
    assert all(Path(p).exists() for p in good)
    assert not list((ds / "derivatives" / "labels").rglob(".tmp-*"))
    # the CLI: the good outputs are printed (skipped now), the bad image in one line on stderr
    proc = cli(MODULE, *base, env=trained_model.env, timeout=900)
    assert_one_line_error(proc, bad.name)
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert sorted(r["path"] for r in records) == sorted(good) and {r["status"] for r in records} == {"skipped"}


@pytest.mark.slow
def test_predict_model_errors(trained_model, tmp_path, cli):  # noqa: F811
    ds = _dataset_copy(trained_model, tmp_path)
    cfg = _config(ds, tmp_path / "c.json", _mri(ds, ["05"]))
    proc = cli(MODULE, "--config", cfg, "--model-dir", tmp_path / "missing", env=trained_model.env)
    assert_one_line_error(proc, "model folder not found")
    proc = cli(MODULE, "--config", cfg, "-d", "999", env=trained_model.env)
    assert_one_line_error(proc, "no Dataset999_* folder")
    proc = cli(MODULE, "--config", cfg, "--model-dir", trained_model.model_dir, "-f", "3", env=trained_model.env)
    assert_one_line_error(proc, "checkpoint not found")
    # derivatives/labels holds the phantom's CT labels; no MRI prediction may appear there
    assert not [p for p in (ds / "derivatives" / "labels").rglob("*.nii.gz") if "_CT_" not in p.name]


# ----------------------------------------------- checks before the model loads
def _unloadable_model(tmp_path: Path) -> Path:
    """A model folder that passes the file checks but whose checkpoint cannot be
    loaded: a run that reaches the model load fails with "cannot load the model"."""
    folder = tmp_path / "results" / "Dataset300_X" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    (folder / "fold_0").mkdir(parents=True)
    (folder / "fold_0" / "checkpoint_final.pth").write_bytes(b"not a checkpoint")
    (folder / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "sacrum": 1},
                                                     "channel_names": {"0": "MRI"}, "file_ending": ".nii.gz"}))
    (folder / "plans.json").write_text(json.dumps({"dataset_name": "Dataset300_X"}))
    return folder


def _tiny_bids(tmp_path: Path, data: np.ndarray) -> Path:
    ds = tmp_path / "ds"
    (ds / "sub-01" / "anat").mkdir(parents=True)
    (ds / "dataset_description.json").write_text(json.dumps({"Name": "t", "BIDSVersion": "1.9.0"}))
    img = nib.Nifti1Image(data, np.eye(4))
    img.set_qform(np.eye(4), 1)
    img.set_sform(np.eye(4), 1)
    nib.save(img, str(ds / "sub-01" / "anat" / "sub-01_T1w.nii.gz"))
    return ds


@pytest.mark.parametrize("bad", ["nan", "4d", "truncated"])
def test_bad_image_found_before_model_load(tmp_path, cli, bad):
    data = np.zeros((8, 8, 8), np.float32)
    if bad == "nan":
        data[1, 1, 1] = np.nan
    elif bad == "4d":
        data = np.zeros((8, 8, 8, 2), np.float32)
    ds = _tiny_bids(tmp_path, data)
    image = ds / "sub-01" / "anat" / "sub-01_T1w.nii.gz"
    if bad == "truncated":
        image.write_bytes(image.read_bytes()[:60])
    proc = cli(MODULE, "--bids-dir", ds, "--contrasts", "T1w", "--model-dir", _unloadable_model(tmp_path),
               "--device", "cpu")
    assert_one_line_error(proc, image.name)
    assert "cannot load the model" not in proc.stderr and "model loaded" not in proc.stderr
    assert not (ds / "derivatives" / "labels" / "sub-01").exists()


def test_library_batch_error_lists_failures_and_keeps_done(tmp_path):
    """A library call with one bad image raises one BatchError after the rest: its
    ``done`` holds the good image's record (a finished output, skipped) and that
    output is untouched; options come as one PredictOptions or as keywords."""
    ds = _tiny_bids(tmp_path, np.zeros((8, 8, 8), np.float32))
    good = ds / "sub-01" / "anat" / "sub-01_T1w.nii.gz"
    bad = ds / "sub-02" / "anat" / "sub-02_T1w.nii.gz"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(good.read_bytes()[:60])
    done = _out(ds, good)
    done.parent.mkdir(parents=True)
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.uint8), np.eye(4)), str(done))
    done.with_name(done.name.replace(".nii.gz", ".json")).write_text(json.dumps({"GeneratedBy": []}))
    before = done.stat().st_mtime_ns
    model = resolve_model(_unloadable_model(tmp_path))
    for kwargs in ({"options": PredictOptions(label_name="sacrum", device="cpu")},
                   {"label_name": "sacrum", "device": "cpu"}):
        with pytest.raises(BatchError) as info:
            predict([(good,), (bad,)], model, **kwargs)
        assert [item for item, _msg in info.value.failures] == [str(bad)]
        assert info.value.done == [{"status": "skipped", "path": str(done)}]
        assert done.stat().st_mtime_ns == before and not _out(ds, bad).exists()
    with pytest.raises(UsageError, match="batch-size"):
        predict([(good,)], model, batch_size=0)


def test_unwritable_output_found_before_model_load(tmp_path, cli):
    ds = _tiny_bids(tmp_path, np.zeros((8, 8, 8), np.float32))
    (ds / "derivatives").mkdir()
    (ds / "derivatives" / "labels").write_text("a file where the output folder should be")
    proc = cli(MODULE, "--bids-dir", ds, "--contrasts", "T1w", "--model-dir", _unloadable_model(tmp_path),
               "--device", "cpu")
    assert_one_line_error(proc, "derivatives/labels", "not writable")
    assert "cannot load the model" not in proc.stderr


def test_good_image_reaches_model_load_with_mirroring_notice(tmp_path, cli):
    """The same setup with a good image does reach the model (so the checks above
    really stop before it), after one notice about CPU mirroring."""
    ds = _tiny_bids(tmp_path, np.zeros((8, 8, 8), np.float32))
    args = ["--bids-dir", ds, "--contrasts", "T1w", "--model-dir", _unloadable_model(tmp_path), "--device", "cpu"]
    proc = cli(MODULE, *args)
    assert_one_line_error(proc, "cannot load the model")
    assert proc.stderr.count("test-time mirroring is on") == 1 and "--no-tta" in proc.stderr
    quiet = cli(MODULE, *args, "--no-tta")
    assert "test-time mirroring" not in quiet.stderr


@pytest.mark.slow
def test_predict_takes_the_shared_datalad_options(trained_model, tmp_path, monkeypatch):  # noqa: F811
    """In a clone without content: refused naming --datalad-get, fetched with
    TOTALSEG_BIDS_DATALAD_GET=1, and a resumed run's --datalad-save commits the masks."""
    dl = pytest.importorskip("datalad.api")
    from support.datalad import IDENTITY, QUIET, check_shared_options

    for key, value in IDENTITY.items():
        monkeypatch.setenv(key, value)
    origin = _dataset_copy(trained_model, tmp_path)
    for sub in ("01", "02", "03"):
        shutil.rmtree(origin / f"sub-{sub}")
    dl.create(path=str(origin), force=True, cfg_proc=None, **QUIET)
    dl.save(dataset=str(origin), message="phantom", **QUIET)
    clone = tmp_path / "clone"
    dl.clone(source=str(origin), path=str(clone), **QUIET)
    saved = check_shared_options(clone, MODULE, ["--bids-dir", ".", "--contrasts", "T2w", "--model-dir",
                                                 trained_model.model_dir, "-f", "0", "--no-tta", "--device", "cpu"],
                                 ["derivatives/labels/"], extra_env=trained_model.env)
    assert sorted(f for f in saved if f.endswith(".nii.gz")) == [
        f"derivatives/labels/sub-{s}/anat/sub-{s}_acq-sag_T2w_label-sacrum_seg.nii.gz" for s in ("04", "05")]


@pytest.mark.slow
def test_cpu_forward_pass_runs_on_every_allowed_core(trained_model, tmp_path, monkeypatch):  # noqa: F811
    """nnU-Net caps its forward pass at ``nnUNet_def_n_proc`` threads (1 here, as on small
    machines); the engine's forward pass keeps the threads the engine set, with the same mask."""
    import nnunetv2.inference.predict_from_raw_data as nnunet_predict
    import torch

    from totalseg_bids.core.parallel import default_jobs
    from totalseg_bids.nnunet.engine import Engine

    monkeypatch.setattr(nnunet_predict, "default_num_processes", 1)  # nnUNet_def_n_proc=1, read at import
    threads = torch.get_num_threads()
    try:
        engine = Engine(resolve_model(trained_model.model_dir, folds=["0"]), device="cpu", tta=False)
        seen: list[int] = []
        forward = engine.predictor.predict_sliding_window_return_logits

        def spy(data):
            seen.append(torch.get_num_threads())
            return forward(data)

        monkeypatch.setattr(engine.predictor, "predict_sliding_window_return_logits", spy)
        image = _mri(trained_model.bids, ["05"])[0]
        ours = engine.predict_one([image], tmp_path / "ours")
        capped = engine.predictor.predict_logits_from_preprocessed_data  # nnU-Net's own, for the same mask
        monkeypatch.setattr(engine, "_logits", lambda data: capped(data).cpu())
        theirs = engine.predict_one([image], tmp_path / "nnunet")
    finally:
        torch.set_num_threads(threads)
    assert seen == [default_jobs(), 1], seen
    assert np.array_equal(np.asanyarray(nib.load(ours).dataobj), np.asanyarray(nib.load(theirs).dataobj))


# ----------------------------------------------------------- post-processing
def _parse_post(*argv):
    from totalseg_bids.predict.cli import get_parser, postprocess_from_cli

    return postprocess_from_cli(get_parser().parse_args(["--bids-dir", "ds", "-d", "1", *argv]))


def test_postprocess_flags_and_the_legacy_spelling():
    assert _parse_post() == {"postprocess": "auto"}
    assert _parse_post("--largest-component") == {"postprocess": "largest", "largest_labels": None}
    assert _parse_post("--largest-component", "sacrum", "2") == {"postprocess": "largest",
                                                                 "largest_labels": ("sacrum", "2")}
    assert _parse_post("--postprocess", "largest", "--largest-component", "a")["largest_labels"] == ("a",)
    assert _parse_post("--keep-largest", "per-label") == {"postprocess": "largest", "largest_mode": "per-label"}
    assert _parse_post("--keep-largest", "union") == {"postprocess": "largest", "largest_mode": "union"}
    assert _parse_post("--keep-largest", "off") == {"postprocess": "none"}
    with pytest.raises(UsageError, match="exclude each other"):
        _parse_post("--postprocess", "nnunet", "--largest-component")
    with pytest.raises(UsageError, match="not largest"):
        PredictOptions(postprocess="none", largest_labels=("sacrum",)).check()


def _prediction_case(tmp_path: Path):
    """An image, and a scratch prediction of it: label 1 in a block of 27 voxels and a stray one of 3
    (10 % of the label), label 2 in one block of 8."""
    from totalseg_bids.predict import Item

    ds = _tiny_bids(tmp_path, np.zeros((12, 12, 12), np.float32))
    image = ds / "sub-01" / "anat" / "sub-01_T1w.nii.gz"
    pred = np.zeros((12, 12, 12), np.uint8)
    pred[1:4, 1:4, 1:4] = 1
    pred[8, 8, 8:11] = 1
    pred[8:10, 1:3, 1:3] = 2
    scratch = tmp_path / "case000000.nii.gz"
    nib.save(nib.Nifti1Image(pred, np.eye(4)), str(scratch))
    out = ds / "derivatives" / "labels" / "sub-01" / "anat" / "sub-01_T1w_desc-x_dseg.nii.gz"
    return Item((image,), out, ds, ds / "derivatives" / "labels"), scratch, pred


@pytest.mark.parametrize("threshold,flagged", [(0.05, True), (0.2, False)])
def test_sidecar_says_what_postprocessing_removed_and_flags_large_removals(tmp_path, threshold, flagged):
    from totalseg_bids.nnunet.postprocess import Postprocessing
    from totalseg_bids.predict import PostOptions, finalize

    item, scratch, _pred = _prediction_case(tmp_path)
    post = Postprocessing("largest", (1,), threshold=threshold)
    classes = {1: "sacrum", 2: "hip"}
    meta = finalize(item, scratch, PostOptions(post, "dseg", classes, [{"Name": "totalseg_bids",
                                                                        "PostProcessing": post.describe(classes)}]))
    out = np.asanyarray(nib.load(str(item.output)).dataobj)
    assert (out == 1).sum() == 27 and (out == 2).sum() == 8 and not out[8, 8, 8:11].any()
    side = json.loads(item.output.with_name(item.output.name.replace(".nii.gz", ".json")).read_text())
    assert side["RemovedVoxels"] == {"sacrum": 3} and side["RemovedFraction"] == {"sacrum": 0.1}
    assert side["GeneratedBy"][0]["PostProcessing"]["Description"].startswith("largest connected component of sacrum")
    assert side.get("PostProcessingRemovedMuch", False) is flagged
    assert (side.get("RemovedAboveThreshold"), "postprocessing_flag" in meta) == (["sacrum"] if flagged else None,
                                                                                  flagged)
    assert meta["removed_voxels"] == {"sacrum": 3} and meta["postprocessing"] == "largest"


def test_no_postprocessing_removes_nothing(tmp_path):
    from totalseg_bids.nnunet.postprocess import Postprocessing
    from totalseg_bids.predict import PostOptions, finalize

    item, scratch, pred = _prediction_case(tmp_path)
    finalize(item, scratch, PostOptions(Postprocessing("none"), "dseg", {1: "sacrum", 2: "hip"}))
    assert np.array_equal(np.asanyarray(nib.load(str(item.output)).dataobj), pred)
    side = json.loads(item.output.with_name(item.output.name.replace(".nii.gz", ".json")).read_text())
    assert "RemovedVoxels" not in side and "PostProcessingRemovedMuch" not in side


def test_nnunet_postprocessing_file_is_found_and_checked(tmp_path):
    """``auto`` takes the postprocessing.pkl of these folds' cross-validation, else the widest one, else
    none; ``nnunet`` requires one; a pickle naming anything but nnU-Net's functions is refused."""
    import pickle

    from totalseg_bids.core.errors import InputError
    from totalseg_bids.nnunet.postprocess import find_postprocessing_file, resolve_postprocessing

    model = tmp_path / "T__P__3d_fullres"
    model.mkdir()
    labels = {"background": 0, "sacrum": 1}
    assert resolve_postprocessing("auto", model, ["0"], labels).method == "none"
    with pytest.raises(InputError, match="no postprocessing.pkl"):
        resolve_postprocessing("nnunet", model, ["0"], labels)
    for folds in ("0_1", "0_1_2"):
        (model / f"crossval_results_folds_{folds}").mkdir()
        (model / f"crossval_results_folds_{folds}" / "postprocessing.pkl").write_bytes(pickle.dumps(([], [])))
    assert find_postprocessing_file(model, ["0", "1"]).parent.name == "crossval_results_folds_0_1"
    assert find_postprocessing_file(model, ["0"]).parent.name == "crossval_results_folds_0_1_2"
    post = resolve_postprocessing("auto", model, ["0", "1"], labels)  # nnU-Net decided: nothing helps
    assert (post.method, post.functions, post.describe({1: "sacrum"})["Steps"]) == ("nnunet", (), [])
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(([os.system], [{"command": "true"}])))
    with pytest.raises(InputError, match="not nnU-Net's post-processing"):
        resolve_postprocessing("nnunet", model, ["0"], labels, source=evil)
    with pytest.raises(UsageError, match="not a label of the model"):
        resolve_postprocessing("largest", model, ["0"], labels, largest=["hip"])
    assert resolve_postprocessing("largest", model, ["0"], labels, largest=["sacrum"]).labels == (1,)


def test_missing_nnunet_postprocessing_is_found_before_model_load(tmp_path, cli):
    ds = _tiny_bids(tmp_path, np.zeros((8, 8, 8), np.float32))
    proc = cli(MODULE, "--bids-dir", ds, "--contrasts", "T1w", "--model-dir", _unloadable_model(tmp_path),
               "--postprocess", "nnunet", "--device", "cpu")
    assert_one_line_error(proc, "no postprocessing.pkl")
    assert "cannot load the model" not in proc.stderr
