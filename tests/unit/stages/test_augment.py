"""totalseg_bids.augment on phantom CT slices: exact counts, aligned masks, reproducible bytes."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support import assert_one_line_error
from support.nnunet import TRAINER, _run, nnunet_env

from totalseg_bids import slices
from totalseg_bids.augment import main as augment_main

A = pytest.importorskip("albumentations")
GT = "ds/derivatives/ground_truth"


def entry(s: str) -> dict:
    ct = f"ds/{s}/anat/{s}_CT.nii.gz"
    return {"IMAGE": [ct, ct], "LABEL": f"{GT}/{s}/anat/{s}_CT_label-phantom_dseg.nii.gz"}


@pytest.fixture(scope="module")
def slice_dir(phantom_template, tmp_path_factory) -> Path:
    """Slices of the phantom CTs (two channels), made once: augment only reads them."""
    tmp_path = tmp_path_factory.mktemp("augment_slices")
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"TYPE": "LABEL", "CONTRASTS": "", "DATASETS_PATH": str(phantom_template.parent),
                               "TRAINING": [entry("sub-01")], "VALIDATION": [entry("sub-03")]}))
    out = tmp_path / "slices"
    assert slices.main(["--config", str(cfg), "--out", str(out), "--axis", "axial", "--only-labelled",
                        "--empty-fraction", "0.3", "--window", "bone", "-q", "-j", "1"]) == 0
    return out


@pytest.fixture(scope="module")
def per_file_dir(slice_dir, tmp_path_factory) -> Path:
    """The stacked slices rewritten as one grayscale file per channel (``<name>_0000.png``, ``_0001``)."""
    out = tmp_path_factory.mktemp("augment_per_file")
    src = rows(slice_dir, "slices.tsv")
    for r in src:
        rgb = np.asarray(Image.open(slice_dir / r["file"]))
        stem = r["file"][: -len(".png")]
        files = [f"{stem}_{c:04d}.png" for c in range(2)]
        for c, f in enumerate(files):
            (out / f).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rgb[..., c]).save(out / f)
        (out / r["mask"]).parent.mkdir(parents=True, exist_ok=True)
        (out / r["mask"]).write_bytes((slice_dir / r["mask"]).read_bytes())
        r["file"] = ";".join(files)
    with open(out / "slices.tsv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, list(src[0]), delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(src)
    return out


def cta_pair(s: str) -> dict:
    return {"IMAGE": [f"ds/{s}/anat/{s}_ce-contrast_CT.nii.gz", f"ds/{s}/anat/{s}_CT.nii.gz"],
            "LABEL": f"{GT}/{s}/anat/{s}_CT_label-phantom_dseg.nii.gz"}


@pytest.fixture(scope="module")
def cta_config(tmp_path_factory) -> Path:
    """Phantom CT pairs: a contrast-enhanced CTA-like and a plain NCCT-like CT per subject, on a 3 mm grid
    (60x47 axial slices: nnU-Net plans a shallow 2D network for them and trains it in seconds)."""
    from totalseg_bids.testing.phantoms import generate

    tmp = tmp_path_factory.mktemp("augment_cta")
    ds = generate(tmp / "ds", subjects=3, contrast_ct=True, ct_labels=False, ct_spacing=3.0, seed=4)
    cfg = tmp / "cfg.json"
    cfg.write_text(json.dumps({"TYPE": "LABEL", "CONTRASTS": "", "DATASETS_PATH": str(ds.parent),
                               "TRAINING": [cta_pair("sub-01")], "VALIDATION": [cta_pair("sub-02")],
                               "TESTING": [cta_pair("sub-03")]}))
    return cfg


@pytest.fixture(scope="module")
def cta_slices(cta_config) -> Path:
    """nnU-Net 2D slices of the CT pairs (``_0000`` CTA, ``_0001`` NCCT), one file per channel."""
    raw = cta_config.parent / "nnUNet_raw"
    assert slices.main(["--config", str(cta_config), "--out", str(raw), "--layout", "nnunet2d", "-dnum", "501",
                        "-dname", "CtaSlices", "--only-labelled", "--empty-fraction", "0.1", "--window", "soft",
                        "--channels", "CTA", "NCCT", "-q", "-j", "1"]) == 0
    ds = raw / "Dataset501_CtaSlices"
    return ds


def rows(folder: Path, name: str) -> list[dict]:
    with open(folder / name, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_exact_counts_strata_and_exact_masks(slice_dir, tmp_path):
    out = tmp_path / "aug"
    assert augment_main(["--slices", str(slice_dir), "--out", str(out), "--target-train", "37",
                         "--target-val", "11", "--seed", "3", "-q", "-j", "1"]) == 0
    man = rows(out, "augment.tsv")
    src = rows(slice_dir, "slices.tsv")
    for split, n in (("train", 37), ("val", 11)):
        got = [r for r in man if r["split"] == split]
        assert len(got) == n == len(list((out / "images" / split).glob("*.png")))
        assert len(list((out / "masks" / split).glob("*.png"))) == n
        pos_src = np.mean([r["has_label"] == "1" for r in src if r["split"] == split])
        pos_out = np.mean([r["has_label"] == "1" for r in got])
        assert abs(pos_src - pos_out) <= 1.5 / n  # stratified: the labelled share is kept
        counts = np.unique([r["source_file"] for r in got], return_counts=True)[1]
        assert counts.max() - counts.min() <= 1  # drawn evenly over the source slices
    for r in man:
        img = np.asarray(Image.open(out / r["file"]))
        mask = np.asarray(Image.open(out / r["mask"]))
        src_mask = np.asarray(Image.open(slice_dir / r["source_mask"]))
        assert img.shape[:2] == mask.shape and img.dtype == np.uint8
        assert set(np.unique(mask)) <= set(np.unique(src_mask))  # exact class indices
        assert np.bincount(mask.ravel(), minlength=8).tolist() == np.bincount(src_mask.ravel(), minlength=8).tolist()
        applied = json.loads(r["transforms"])
        assert (r["augmented"] == "1") == (r["seed"] != "0") == bool(applied)
        if applied:  # spatial once for the sample, intensity once per real channel (the CT twice)
            assert len(applied["intensity"]) == 2
            assert all(isinstance(name, str) for name, _ in applied["spatial"] + sum(applied["intensity"], []))
    assert any(json.loads(r["transforms"]).get("spatial") for r in man)
    # each channel draws its own intensity parameters
    per_channel = [json.loads(r["transforms"])["intensity"] for r in man if r["augmented"] == "1"]
    assert any(ch[0] and ch[1] and ch[0] != ch[1] for ch in per_channel)


def brightness_contrast(image: np.ndarray, params: list) -> np.ndarray:
    """What albumentations' RandomBrightnessContrast makes of a uint8 channel with the recorded alpha, beta."""
    (name, p), = params
    assert name == "RandomBrightnessContrast"
    return np.clip(image.astype(float) * p["alpha"] + p["beta"], 0, 255)


def channels_of(folder: Path, files: str) -> list[np.ndarray]:
    arrays = [np.asarray(Image.open(folder / f)) for f in files.split(";")]
    return arrays if len(arrays) > 1 else [arrays[0][..., c] for c in range(2)]


@pytest.mark.parametrize("source", ["stacked", "per_file"])
def test_flip_moves_mask_and_every_channel_exactly(slice_dir, per_file_dir, tmp_path, source):
    """Flips checked exactly: the mask and each channel are the flipped source, each channel with its own
    brightness/contrast draw, whether the channels are stacked in one file or one file per channel."""
    src = slice_dir if source == "stacked" else per_file_dir
    recipe = tmp_path / "flip.json"
    A.save(A.Compose([A.HorizontalFlip(p=1.0), A.RandomBrightnessContrast(p=1.0)]), str(recipe))
    out = tmp_path / "aug"
    assert augment_main(["--slices", str(src), "--out", str(out), "--target-train", "5",
                         "--target-val", "3", "--recipe", str(recipe), "-q"]) == 0
    man = rows(out, "augment.tsv")
    assert len(man) == 8 + sum(r["split"] == "test" for r in rows(src, "slices.tsv"))
    draws = set()
    for r in [r for r in man if r["augmented"] == "1"]:
        assert np.array_equal(np.asarray(Image.open(out / r["mask"])),
                              np.asarray(Image.open(src / r["source_mask"]))[:, ::-1])
        assert len(r["file"].split(";")) == (2 if source == "per_file" else 1)
        applied = json.loads(r["transforms"])
        assert [name for name, _ in applied["spatial"]] == ["HorizontalFlip"]
        for c, (got, before) in enumerate(zip(channels_of(out, r["file"]), channels_of(src, r["source_file"]))):
            expected = brightness_contrast(before[:, ::-1], applied["intensity"][c])
            assert np.abs(got.astype(float) - expected).max() <= 1.0  # the LUT rounds
            draws.add(json.dumps(applied["intensity"][c]))
    assert len(draws) == 2 * 8  # every channel of every sample has its own parameters


def test_mask_stays_aligned_under_rotation_and_shift(cta_slices, tmp_path):
    """Per sample and channel, the mean of the mask region in the augmented image is the original's mean
    mapped by the recorded brightness/contrast (within interpolation at the region's border)."""
    recipe = tmp_path / "affine.json"
    A.save(A.Compose([A.Affine(rotate=(-20, 20), translate_percent=(-0.08, 0.08), p=1.0),
                      A.VerticalFlip(p=0.5), A.RandomBrightnessContrast(p=1.0)]), str(recipe))
    out = tmp_path / "aug"
    assert augment_main(["--slices", str(cta_slices), "--out", str(out), "--target-train", "12",
                         "--target-val", "4", "--recipe", str(recipe), "--layout", "mmseg", "-q"]) == 0
    checked = 0
    for r in [r for r in rows(out, "augment.tsv") if r["augmented"] == "1"]:
        mask, src_mask = (np.asarray(Image.open(d / m)) for d, m in ((out, r["mask"]), (cta_slices, r["source_mask"])))
        if mask.sum() < 20:  # the region left the picture
            continue
        applied = json.loads(r["transforms"])
        for c, (got, before) in enumerate(zip(channels_of(out, r["file"]), channels_of(cta_slices, r["source_file"]))):
            expected = brightness_contrast(before, applied["intensity"][c])[src_mask > 0].mean()
            aligned = got[mask > 0].astype(float).mean()
            assert abs(aligned - expected) <= 0.1 * expected + 3, (r["file"], c, aligned, expected)
            checked += 1
    assert checked >= 8


def test_same_seed_same_bytes_any_jobs(slice_dir, tmp_path):
    args = ["--slices", str(slice_dir), "--target-train", "12", "--target-val", "6", "--seed", "9", "-q"]
    assert augment_main([*args, "--out", str(tmp_path / "a"), "-j", "1"]) == 0
    assert augment_main([*args, "--out", str(tmp_path / "b"), "-j", "2"]) == 0
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert augment_main([*args[:-2], "10", "-q", "--out", str(tmp_path / "c")]) == 0
    assert digest(tmp_path / "c") != digest(tmp_path / "a")


def test_rerun_is_a_no_op_and_a_changed_request_is_refused(slice_dir, tmp_path, cli):
    out = tmp_path / "aug"
    args = ["--slices", str(slice_dir), "--out", str(out), "--target-train", "8", "--target-val", "4", "-q"]
    assert augment_main(args) == 0
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert augment_main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps  # nothing rewritten
    proc = cli("augment", *args[:-4], "9", "--target-val", "4")
    assert proc.returncode == 1 and "target" in proc.stderr and "--overwrite" in proc.stderr, proc.stderr
    assert augment_main([*args[:-4], "9", "--target-val", "4", "-q", "--overwrite"]) == 0
    assert sum(r["split"] == "train" for r in rows(out, "augment.tsv")) == 9


def test_cli_prints_one_record_per_sample_then_the_manifest(slice_dir, tmp_path, cli):
    out = tmp_path / "aug"
    args = ["--slices", str(slice_dir), "--out", str(out), "--target-train", "6", "--target-val", "2", "-j", "1"]
    proc = cli("augment", *args)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    man = rows(out, "augment.tsv")
    assert [r["kind"] for r in records] == ["sample"] * len(man) + ["manifest"]
    assert {r["stage"] for r in records} == {"augment"} and {r["status"] for r in records} == {"written"}
    assert [r["path"] for r in records[:-1]] == [str(out / m["file"]) for m in man]
    assert all(Path(r["path"]).is_file() and Path(r["mask"]).is_file() for r in records[:-1])
    assert records[-1]["path"] == str(out / "augment.tsv") and (records[-1]["train"], records[-1]["val"]) == (6, 2)
    again = [json.loads(line) for line in cli("augment", *args).stdout.splitlines()]
    assert [r["status"] for r in again] == ["skipped"] * len(records)
    assert [r["path"] for r in again] == [r["path"] for r in records]


def test_library_batch_with_one_unreadable_slice_raises_once_keeping_the_others(slice_dir, tmp_path):
    """One broken source slice fails its samples only: one BatchError whose ``done`` holds the
    written samples; the manifest is not written, so the set never looks whole."""
    import shutil

    from totalseg_bids.augment import AugmentOptions, augment
    from totalseg_bids.core.errors import BatchError

    src = tmp_path / "slices"
    shutil.copytree(slice_dir, src)
    broken = rows(src, "slices.tsv")[0]
    (src / broken["file"]).write_bytes(b"not a png")
    out = tmp_path / "aug"
    with pytest.raises(BatchError) as caught:
        augment(src, out, AugmentOptions(target_train=10, target_val=3, seed=2, jobs=1))
    exc = caught.value
    assert exc.failures and all(broken["file"].rsplit(".", 1)[0].rsplit("/", 1)[-1] in item
                                for item, _ in exc.failures)
    assert exc.done and all(r["status"] == "written" and Path(r["path"]).is_file() for r in exc.done)
    assert len(exc.done) + len(exc.failures) == 10 + 3 + sum(r["split"] == "test" for r in rows(src, "slices.tsv"))
    assert not (out / "augment.tsv").exists()


def test_keep_originals_counts_them(slice_dir, tmp_path):
    n_train = sum(r["split"] == "train" for r in rows(slice_dir, "slices.tsv"))
    out = tmp_path / "aug"
    assert augment_main(["--slices", str(slice_dir), "--out", str(out), "--target-train", str(n_train + 4),
                         "--keep-originals", "-q"]) == 0
    man = [r for r in rows(out, "augment.tsv") if r["split"] == "train"]
    assert len(man) == n_train + 4 and sum(r["augmented"] == "0" for r in man) == n_train


def test_missing_slices_is_one_line_error(tmp_path, cli):
    res = cli("augment", "--slices", str(tmp_path / "none"), "--out", str(tmp_path / "o"),
              "--target-train", "3")
    assert_one_line_error(res, "slices.tsv")


def test_clotseg_tree_original_sliced_augmented(cta_slices, tmp_path):
    """Processed/{Original,Sliced,Augmented}/{Training,Validation,Testing}/{images,masks}: the source volumes
    as clot-named 3D .npy (geometry exact), the source slices, the augmented samples."""
    import nibabel as nib

    from totalseg_bids.core.npy_volume import load_npy_volume

    out = tmp_path / "clot"
    assert augment_main(["--slices", str(cta_slices), "--out", str(out), "--layout", "clotseg",
                         "--target-train", "8", "--target-val", "4", "-q"]) == 0
    src = rows(cta_slices, "slices.tsv")
    proc = out / "Processed"
    for split, folder, n in (("train", "Training", 8), ("val", "Validation", 4), ("test", "Testing", None)):
        n_src = sum(r["split"] == split for r in src)
        aug = proc / "Augmented" / folder
        n_masks = len(list((aug / "masks").glob("*.png")))
        assert len(list((aug / "images").glob("*_0000.png"))) == (n or n_src) == n_masks
        assert len(list((aug / "images").glob("*_0001.png"))) == (n or n_src)
        assert len(list((proc / "Sliced" / folder / "images").glob("*_0001.png"))) == n_src
        sub = {"train": "01", "val": "02", "test": "03"}[split]
        orig = proc / "Original" / folder
        assert sorted(p.name for p in (orig / "images").glob("*.npy")) == [f"{sub}_CTA_Binary.npy",
                                                                          f"{sub}_NCCT_Reg_Binary.npy"]
        assert [p.name for p in (orig / "masks").glob("*.npy")] == [f"{sub}_seg_corrected_binary.npy"]
        row = next(r for r in src if r["split"] == split)
        npys = [orig / "images" / f"{sub}_CTA_Binary.npy", orig / "masks" / f"{sub}_seg_corrected_binary.npy"]
        for npy, nii in zip(npys, [row["images"].split(";")[0], row["label"]]):
            data, affine = load_npy_volume(npy)
            img = nib.load(nii)
            assert np.array_equal(data, np.asanyarray(img.dataobj)) and np.array_equal(affine, img.affine)
    assert all(r["file"].startswith("Processed/Augmented/") for r in rows(out, "augment.tsv"))


def nnunet_case(path: str) -> str:
    return path.split(";")[0].rsplit("/", 1)[-1][: -len("_0000.png")]


def test_nnunet2d_dataset_is_valid_for_nnunet(cta_slices, tmp_path):
    """An augmented nnU-Net 2D dataset: numTraining, every sample in the folds of the slice it came from
    (so no subject crosses a fold), nnU-Net's reader reads every channel, and nnU-Net's integrity check passes."""
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity
    from nnunetv2.imageio.natural_image_reader_writer import NaturalImage2DIO

    raw = tmp_path / "raw"
    assert augment_main(["--slices", str(cta_slices), "--out", str(raw), "-dnum", "502", "-dname", "CtaAug",
                         "--target-train", "20", "--target-val", "6", "--seed", "2", "-q", "-j", "2"]) == 0
    ds = raw / "Dataset502_CtaAug"
    meta = json.loads((ds / "dataset.json").read_text(encoding="utf-8"))
    src_meta = json.loads((cta_slices / "dataset.json").read_text(encoding="utf-8"))
    assert meta["numTraining"] == 26 == len(list((ds / "labelsTr").glob("*.png")))
    assert meta["channel_names"] == {"0": "CTA", "1": "NCCT"} and meta["labels"] == src_meta["labels"]
    assert meta["overwrite_image_reader_writer"] == "NaturalImage2DIO" and meta["file_ending"] == ".png"
    man = rows(ds, "augment.tsv")
    folds = json.loads((ds / "splits_final.json").read_text(encoding="utf-8"))
    src_folds = json.loads((cta_slices / "splits_final.json").read_text(encoding="utf-8"))
    assert len(folds) == len(src_folds) >= 1
    for fold, src_fold in zip(folds, src_folds):
        for side in ("train", "val"):
            assert sorted(fold[side]) == sorted(nnunet_case(r["file"]) for r in man
                                                if nnunet_case(r["source_file"]) in src_fold[side])
    trainable = sorted(nnunet_case(r["file"]) for r in man if r["split"] != "test")
    if len(folds) > 1:  # cross-validation: every sample validated exactly once
        assert sorted(c for fold in folds for c in fold["val"]) == trainable
    src_split = {nnunet_case(r["file"]): r["split"] for r in rows(cta_slices, "slices.tsv")}
    assert all(src_split[nnunet_case(r["source_file"])] == r["split"] for r in man)
    n_test = sum(v == "test" for v in src_split.values())
    assert len(list((ds / "imagesTs").glob("*_0001.png"))) == n_test  # TESTING copied, never augmented
    io = NaturalImage2DIO()
    for r in man[::5]:
        img, props = io.read_images([str(ds / f) for f in r["file"].split(";")])
        seg, _ = io.read_seg(str(ds / r["mask"]))
        assert img.shape[0] == 2 and img.shape[1:] == seg.shape[1:]
    verify_dataset_integrity(str(ds), num_processes=1)


@pytest.mark.slow
def test_nnunet_trains_on_augmented_2d_dataset(cta_slices, tmp_path):
    """nnU-Net plans, preprocesses (2d) and trains a few iterations on the augmented dataset."""
    env = nnunet_env(tmp_path)
    for key in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    assert augment_main(["--slices", str(cta_slices), "--out", env["nnUNet_raw"], "-dnum", "503", "-dname",
                         "CtaAugTrain", "--target-train", "16", "--target-val", "2", "-q", "-j", "2"]) == 0
    folder = "Dataset503_CtaAugTrain"
    _run(["nnUNetv2_plan_and_preprocess", "-d", "503", "--verify_dataset_integrity", "-c", "2d",
          "-np", "1", "-npfp", "1"], env, 300)
    pre = Path(env["nnUNet_preprocessed"]) / folder
    splits = (Path(env["nnUNet_raw"]) / folder / "splits_final.json").read_text(encoding="utf-8")
    (pre / "splits_final.json").write_text(splits)
    _run(["nnUNetv2_train", "503", "2d", "0", "-tr", TRAINER, "-device", "cpu"], env, 600)
    model = Path(env["nnUNet_results"]) / folder / f"{TRAINER}__nnUNetPlans__2d" / "fold_0"
    assert (model / "checkpoint_final.pth").is_file()
    summary = json.loads((model / "validation" / "summary.json").read_text(encoding="utf-8"))
    fold0 = json.loads((pre / "splits_final.json").read_text(encoding="utf-8"))[0]
    assert len(summary["metric_per_case"]) == len(fold0["val"])  # fold 0's samples, as splits_final.json says


def test_nnunet2d_output_needs_nnunet2d_slices(slice_dir, tmp_path, cli):
    res = cli("augment", "--slices", str(slice_dir), "--out", str(tmp_path / "raw"), "--layout", "nnunet2d",
              "--target-train", "3")
    assert_one_line_error(res, "nnunet2d", code=2)
    assert not (tmp_path / "raw").exists()
