"""totalseg_bids.slices on phantoms: shapes, splits, masks matching images, nnU-Net 2D."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from support import assert_one_line_error, read_png, read_tsv

from totalseg_bids import slices

GT = "ds/derivatives/ground_truth"


def write_config(path: Path, ds: Path, **splits) -> Path:
    path.write_text(json.dumps({"TYPE": "LABEL", "CONTRASTS": "", "DATASETS_PATH": str(ds.parent), **splits}))
    return path


def canonical(path: Path) -> np.ndarray:
    return np.asarray(nib.as_closest_canonical(nib.load(str(path))).dataobj)


def test_mmseg_export_shapes_splits_masks(phantom_ds, tmp_path):
    t2 = lambda s: f"{GT}/{s}/anat/{s.replace('/', '_')}_acq-sag_T2w_label-phantom_dseg.nii.gz"  # noqa: E731
    cfg = write_config(tmp_path / "cfg.json", phantom_ds, TRAINING=[t2("sub-01")],
                       VALIDATION=[t2("sub-02/ses-01"), t2("sub-02/ses-02")], TESTING=[t2("sub-03")])
    out = tmp_path / "mmseg"
    assert slices.main(["--config", str(cfg), "--out", str(out), "--axis", "axial", "--only-labelled",
                        "--empty-fraction", "0", "--percentile", "1", "99", "-q", "-j", "2"]) == 0
    rows = read_tsv(out / "slices.tsv")
    by_split = {s: {r["subject"] for r in rows if r["split"] == s} for s in ("train", "val", "test")}
    assert by_split == {"train": {"ds/sub-01"}, "val": {"ds/sub-02"}, "test": {"ds/sub-03"}}
    for split in ("train", "val", "test"):
        files = sorted((out / "images" / split).glob("*.png"))
        assert files and [f.name for f in files] == sorted(f.name for f in (out / "masks" / split).glob("*.png"))
    for row in rows:
        label_path = Path(row["label"])
        lab = canonical(label_path)  # independent reorientation with nibabel
        k = int(row["index"])
        expected_mask = np.flipud(lab[:, :, k].T)
        img = read_png(out / row["file"])
        mask = read_png(out / row["mask"])
        assert img.shape == mask.shape == expected_mask.shape == (lab.shape[1], lab.shape[0])
        assert img.dtype == mask.dtype == np.uint8
        assert np.array_equal(mask, expected_mask) and mask.any() and row["has_label"] == "1"
        assert row["file"].startswith(f"images/{row['split']}/") and f"_T2w_axial-{k:03d}" in row["file"]
    # every labelled axial slice of every case is there (empty-fraction 0)
    n_labelled = sum(int(canonical(Path(p)).any(axis=(0, 1)).sum()) for p in {r["label"] for r in rows})
    assert len(rows) == n_labelled


def test_nnunet2d_multichannel_ct_bone(phantom_ds, tmp_path):
    def entry(s: str) -> dict:
        ct = f"ds/{s}/anat/{s}_CT.nii.gz"
        return {"IMAGE": [ct, ct], "LABEL": f"{GT}/{s}/anat/{s}_CT_label-phantom_dseg.nii.gz"}

    cfg = write_config(tmp_path / "cfg.json", phantom_ds, TRAINING=[entry("sub-01")], TESTING=[entry("sub-03")])
    raw = tmp_path / "nnUNet_raw"
    assert slices.main(["--config", str(cfg), "--out", str(raw), "--layout", "nnunet2d", "-dnum", "501",
                        "-dname", "Slices", "--axis", "sagittal", "--only-labelled", "--empty-fraction", "0.05",
                        "--window", "bone", "-q", "-j", "2"]) == 0
    ds = raw / "Dataset501_Slices"
    meta = json.loads((ds / "dataset.json").read_text(encoding="utf-8"))
    assert meta["file_ending"] == ".png" and meta["overwrite_image_reader_writer"] == "NaturalImage2DIO"
    assert set(meta["channel_names"]) == {"0", "1"} and meta["channel_names"]["0"] != "CT"
    assert meta["labels"] == {"background": 0, "sacrum": 1, "vertebrae_L5": 2, "hip_left": 3, "hip_right": 4}
    labels_tr = sorted((ds / "labelsTr").glob("*.png"))
    assert meta["numTraining"] == len(labels_tr) > 0 and list((ds / "imagesTs").glob("*_0001.png"))
    assert json.loads((ds / "splits_final.json").read_text(encoding="utf-8"))[0]["train"]

    from nnunetv2.imageio.natural_image_reader_writer import NaturalImage2DIO

    io = NaturalImage2DIO()
    bone, soft = [], []
    for lab in labels_tr[::10]:
        case = lab.name[:-4]
        img, _ = io.read_images([str(ds / "imagesTr" / f"{case}_{c:04d}.png") for c in (0, 1)])
        seg, _ = io.read_seg(str(lab))
        assert img.shape[0] == 2 and img.shape[1:] == seg.shape[1:]
        inside = seg[0] > 0
        if inside.any():
            bone.append(img[0][inside].mean())
            soft.append(img[0][~inside & (img[0] > 40)].mean())  # body outside the bones
    # W2000/L500: bone (~500 HU) maps near 128, soft tissue (~40 HU) near 69
    assert bone and min(bone) > 110 and max(soft) < 95


def test_subject_in_two_splits_is_refused(phantom_ds, tmp_path, cli):
    lab = lambda ses: f"{GT}/sub-02/{ses}/anat/sub-02_{ses}_acq-sag_T2w_label-phantom_dseg.nii.gz"  # noqa: E731
    cfg = write_config(tmp_path / "cfg.json", phantom_ds, TRAINING=[lab("ses-01")], VALIDATION=[lab("ses-02")])
    proc = cli("slices", "--config", cfg, "--out", tmp_path / "out")
    assert_one_line_error(proc, str(cfg), "sub-02")
    assert not (tmp_path / "out").exists()


def test_missing_input_is_one_line_error(tmp_path, cli):
    missing = tmp_path / "nope.json"
    proc = cli("slices", "--config", missing, "--out", tmp_path / "out")
    assert_one_line_error(proc, str(missing))


def _t2(subject: str, ds: str = "ds") -> str:
    return f"{ds}/derivatives/ground_truth/{subject}/anat/{subject}_acq-sag_T2w_label-phantom_dseg.nii.gz"


def test_rerun_is_a_noop_and_a_changed_request_is_named(phantom_ds, tmp_path, capsys):
    cfg = write_config(tmp_path / "cfg.json", phantom_ds, TRAINING=[_t2("sub-01")], TESTING=[_t2("sub-03")])
    out = tmp_path / "out"
    argv = ["--config", str(cfg), "--out", str(out), "--only-labelled", "--empty-fraction", "0", "-j", "1"]
    assert slices.main(argv) == 0
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    (first,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    n_rows = len((out / "slices.tsv").read_text(encoding="utf-8").splitlines()) - 1
    assert first == {"stage": "slices", "status": "written", "path": str(out / "slices.tsv"), "cases": 2,
                     "slices": n_rows} and n_rows > 0
    assert slices.main([*argv, "-v"]) == 0
    printed = capsys.readouterr()
    assert "up to date" in printed.err and json.loads(printed.out) == first | {"status": "skipped"}
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
    assert slices.main([*argv, "--axis", "sagittal"]) == 1
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ": error: " in ln]
    assert len(errors) == 1 and "option axis axial -> sagittal" in errors[0] and "--overwrite" in errors[0], errors
    assert slices.main([*argv, "--axis", "sagittal", "--overwrite"]) == 0
    rows = read_tsv(out / "slices.tsv")
    assert rows and all("_sagittal-" in r["file"] for r in rows)
    assert all(Path(out / r["file"]).exists() for r in rows)


def test_clashing_subjects_of_two_datasets_get_the_dataset_in_the_slice_name(phantom_ds, tmp_path):
    import shutil

    shutil.copytree(phantom_ds, phantom_ds.parent / "other", symlinks=True)
    cfg = write_config(tmp_path / "cfg.json", phantom_ds, TRAINING=[_t2("sub-01"), _t2("sub-03", "other")],
                       TESTING=[_t2("sub-03")])
    out = tmp_path / "out"
    assert slices.main(["--config", str(cfg), "--out", str(out), "--only-labelled", "--empty-fraction", "0",
                        "-q", "-j", "1"]) == 0
    rows = read_tsv(out / "slices.tsv")
    names = {Path(r["file"]).name.split("_axial-")[0] for r in rows}
    assert names == {"ds_sub-01_acq-sag_T2w", "other_sub-03_acq-sag_T2w", "ds_sub-03_acq-sag_T2w"}, names


def run_main(capsys, *args) -> tuple[int, str]:
    code = slices.main([str(a) for a in args])
    return code, capsys.readouterr().err


def one_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ": error: " in ln]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


CT1_DSEG = f"{GT}/sub-01/anat/sub-01_CT_label-phantom_dseg.nii.gz"


def test_window_and_raw_float_pixels_match_numpy(phantom_ds, tmp_path, capsys):
    cfg = write_config(tmp_path / "cfg.json", phantom_ds, TRAINING=[CT1_DSEG])
    ct = canonical(phantom_ds / "sub-01" / "anat" / "sub-01_CT.nii.gz")
    png, npy = tmp_path / "png", tmp_path / "npy"
    common = ["--config", cfg, "--only-labelled", "--empty-fraction", "0", "-j", "1"]
    assert run_main(capsys, *common, "--out", png, "--window", "300,100")[0] == 0
    assert run_main(capsys, *common, "--out", npy, "--format", "npy")[0] == 0
    rows = read_tsv(png / "slices.tsv")
    assert rows == [r | {"file": r["file"].replace(".npy", ".png"), "mask": r["mask"].replace(".npy", ".png")}
                    for r in read_tsv(npy / "slices.tsv")]
    for row in rows[::7]:
        k = int(row["index"])
        plane = np.flipud(ct[:, :, k].T).astype(np.float32)
        expected = np.clip(np.rint((plane + np.float32(50)) / np.float32(300) * np.float32(255)), 0, 255)  # [-50, 250]
        assert np.array_equal(read_png(png / row["file"]), expected.astype(np.uint8))
        raw = np.load(npy / row["file"].replace(".png", ".npy"))
        assert raw.dtype == np.float32 and np.array_equal(raw, plane)


def test_percentile_scaling_uses_the_volume_percentiles(phantom_ds, tmp_path, capsys):
    cfg = write_config(tmp_path / "cfg.json", phantom_ds, TRAINING=[_t2("sub-01")])
    out = tmp_path / "out"
    assert run_main(capsys, "--config", cfg, "--out", out, "--percentile", "5", "95", "-j", "1")[0] == 0
    t2 = canonical(phantom_ds / "sub-01" / "anat" / "sub-01_acq-sag_T2w.nii.gz").astype(np.float32)
    lo, hi = np.percentile(t2, (5, 95))
    row = read_tsv(out / "slices.tsv")[t2.shape[2] // 2]
    plane = np.flipud(t2[:, :, int(row["index"])].T)
    expected = np.clip(np.rint((plane - lo) / (hi - lo) * 255), 0, 255)
    got = read_png(out / row["file"]).astype(int)
    assert np.abs(got - expected).max() <= 1 and got.min() == 0 and got.max() == 255


def test_non_consecutive_values_are_renumbered_and_named(phantom_ds, tmp_path, capsys):
    path = phantom_ds.parent / CT1_DSEG
    img = nib.load(str(path))
    src = np.asarray(img.dataobj)
    lut = np.array([0, 25, 27, 77, 78], np.uint8)
    nib.save(nib.Nifti1Image(lut[src], img.affine), str(path))
    path.with_name(path.name.replace(".nii.gz", ".tsv")).unlink()
    names = tmp_path / "names.tsv"
    names.write_text("index\tname\n25\tsacrum\n27\tL5\n77\thip_left\n")
    cfg = write_config(tmp_path / "cfg.json", phantom_ds, TRAINING=[CT1_DSEG])
    out = tmp_path / "out"
    assert run_main(capsys, "--config", cfg, "--out", out, "--labels-tsv", names, "--only-labelled",
                    "--empty-fraction", "0", "--window", "bone", "-j", "1")[0] == 0
    classes = read_tsv(out / "classes.tsv")
    assert [(c["index"], c["name"], c["source_value"]) for c in classes] == [
        ("0", "background", "0"), ("1", "sacrum", "25"), ("2", "L5", "27"), ("3", "hip_left", "77"),
        ("4", "class78", "78")]
    renumbered = canonical(path).copy()
    for new, old in enumerate(lut[1:], start=1):
        renumbered[renumbered == old] = new
    for row in read_tsv(out / "slices.tsv")[::9]:
        expected = np.flipud(renumbered[:, :, int(row["index"])].T)
        assert np.array_equal(read_png(out / row["mask"]), expected)


def test_bad_options_exit_2_and_bad_inputs_exit_1_without_output(phantom_ds, tmp_path, capsys):
    cfg = write_config(tmp_path / "cfg.json", phantom_ds, TRAINING=[_t2("sub-01")])
    out = tmp_path / "out"
    for extra, needle in ((["--window", "wide"], "bad window"), (["--window", "0,40"], "width must be > 0"),
                          (["--empty-fraction", "2"], "--empty-fraction"),
                          (["--layout", "nnunet2d", "--format", "tif"], "PNG"),
                          (["--window", "bone", "soft"], "2 windows for 1 channels")):
        code, err = run_main(capsys, "--config", cfg, "--out", out, *extra)
        assert code == 2 and needle in one_error(err), (extra, err)
    label = phantom_ds.parent / _t2("sub-01")
    img = nib.load(str(label))
    moved = img.affine.copy()
    moved[:3, 3] += 1.0
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), moved), str(label))
    code, err = run_main(capsys, "--config", cfg, "--out", out)
    assert code == 1 and "not on its image's grid" in one_error(err) and "sub-01_acq-sag_T2w_label-phantom" in err
    no_training = write_config(tmp_path / "t.json", phantom_ds, TESTING=[_t2("sub-03")])
    code, err = run_main(capsys, "--config", no_training, "--out", out)
    assert code == 1 and "TRAINING" in one_error(err)
    two_channels = write_config(tmp_path / "c.json", phantom_ds, TRAINING=[
        _t2("sub-03"), {"IMAGE": ["ds/sub-01/anat/sub-01_CT.nii.gz"] * 2, "LABEL": CT1_DSEG}])
    code, err = run_main(capsys, "--config", two_channels, "--out", out)
    assert code == 1 and "different channel counts" in one_error(err)
    assert not list(out.rglob("*.png"))


def test_library_call_with_one_unreadable_image_raises_one_batch_error_with_the_other_slices(phantom_ds, tmp_path):
    """The case that fails while slicing is named; ``.done`` holds the other case's slices, which exist;
    no manifest is written, so the export counts as unfinished."""
    from totalseg_bids.core.errors import BatchError

    cfg = write_config(tmp_path / "cfg.json", phantom_ds, TRAINING=[_t2("sub-01")], TESTING=[_t2("sub-03")])
    bad = phantom_ds / "sub-03" / "anat" / "sub-03_acq-sag_T2w.nii.gz"
    bad.write_bytes(bad.read_bytes()[:400])
    out = tmp_path / "out"
    with pytest.raises(BatchError) as caught:
        slices.export_slices(cfg, out, only_labelled=True, empty_fraction=0.0, jobs=1)
    err = caught.value
    assert [key for key, _ in err.failures] == ["sub-03_acq-sag_T2w"]
    (good,) = err.done
    assert good.path.name == "sub-01_acq-sag_T2w.nii.gz" and good.rows
    assert all((out / row["file"]).is_file() and (out / row["mask"]).is_file() for row in good.rows)
    assert not (out / "slices.tsv").exists()


def test_options_are_checked_when_built():
    from totalseg_bids.core.errors import UsageError

    opts = slices.SlicesOptions(window=["bone", "300,100"], percentile=[5, 95])
    assert opts.windows == ((2000.0, 500.0), (300.0, 100.0)) and opts.percentile == (5, 95)
    for bad in ({"empty_fraction": 1.5}, {"layout": "nnunet2d", "format": "tif"}, {"window": ["0,40"]},
                {"layout": "nnunet2d", "dataset_name": "no_underscores"}):
        with pytest.raises(UsageError):
            slices.SlicesOptions(**bad)
