"""totalseg_bids.augment on phantom CT slices: exact counts, aligned masks, reproducible bytes."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import assert_one_line_error
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
        assert (r["augmented"] == "1") == (r["seed"] != "0")
        assert all(isinstance(name, str) for name, _ in applied)
    assert any(json.loads(r["transforms"]) for r in man)


def test_flip_recipe_moves_mask_with_image(slice_dir, tmp_path):
    recipe = tmp_path / "flip.json"
    A.save(A.Compose([A.HorizontalFlip(p=1.0), A.RandomBrightnessContrast(p=1.0)]), str(recipe))
    out = tmp_path / "aug"
    assert augment_main(["--slices", str(slice_dir), "--out", str(out), "--target-train", "5",
                         "--target-val", "3", "--recipe", str(recipe), "-q"]) == 0
    for r in rows(out, "augment.tsv"):
        mask = np.asarray(Image.open(out / r["mask"]))
        src_mask = np.asarray(Image.open(slice_dir / r["source_mask"]))
        assert np.array_equal(mask, src_mask[:, ::-1])  # flips checked exactly
        if not mask.any():
            continue
        img = np.asarray(Image.open(out / r["file"])).astype(float)
        src_img = np.asarray(Image.open(slice_dir / r["source_file"])).astype(float)[:, ::-1]
        fg = mask > 0
        # brightness/contrast limits 0.2: the mask region's mean moves at most that much
        assert abs(img[fg].mean() - src_img[fg].mean()) <= 0.2 * 255 + 0.2 * src_img[fg].mean() + 1


def test_same_seed_same_bytes_any_jobs(slice_dir, tmp_path):
    args = ["--slices", str(slice_dir), "--target-train", "12", "--target-val", "6", "--seed", "9", "-q"]
    assert augment_main([*args, "--out", str(tmp_path / "a"), "-j", "1"]) == 0
    assert augment_main([*args, "--out", str(tmp_path / "b"), "-j", "2"]) == 0
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert augment_main([*args[:-2], "10", "-q", "--out", str(tmp_path / "c")]) == 0
    assert digest(tmp_path / "c") != digest(tmp_path / "a")


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


def test_clotseg_tree(slice_dir, tmp_path):
    out = tmp_path / "clot"
    assert augment_main(["--slices", str(slice_dir), "--out", str(out), "--layout", "clotseg",
                         "--target-train", "8", "--target-val", "4", "-q"]) == 0
    src = rows(slice_dir, "slices.tsv")
    for split, folder, n in (("train", "Training", 8), ("val", "Validation", 4)):
        aug = out / "Processed" / "Augmented" / folder
        assert len(list((aug / "images").glob("*.png"))) == n == len(list((aug / "masks").glob("*.png")))
        sliced = out / "Processed" / "Sliced" / folder / "images"
        assert len(list(sliced.glob("*.png"))) == sum(r["split"] == split for r in src)
    assert all(r["file"].startswith("Processed/Augmented/") for r in rows(out, "augment.tsv"))


def test_cta_ncct_pair_counts_and_alignment(tmp_path):
    """Phantom CT pairs (contrast-enhanced CTA-like + plain NCCT-like channel) -> slices -> augment."""
    from totalseg_bids.phantoms import generate

    ds = generate(tmp_path / "ds", subjects=2, contrast_ct=True, ct_labels=False, seed=4)

    def pair(s: str) -> dict:
        return {"IMAGE": [f"ds/{s}/anat/{s}_ce-contrast_CT.nii.gz", f"ds/{s}/anat/{s}_CT.nii.gz"],
                "LABEL": f"{GT}/{s}/anat/{s}_CT_label-phantom_dseg.nii.gz"}

    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"TYPE": "LABEL", "CONTRASTS": "", "DATASETS_PATH": str(ds.parent),
                               "TRAINING": [pair("sub-01")], "VALIDATION": [pair("sub-02")]}))
    sl, out = tmp_path / "slices", tmp_path / "aug"
    assert slices.main(["--config", str(cfg), "--out", str(sl), "--only-labelled", "--empty-fraction", "0.2",
                        "--window", "soft", "-q", "-j", "1"]) == 0
    recipe = tmp_path / "vflip.json"
    A.save(A.Compose([A.VerticalFlip(p=1.0), A.RandomGamma(p=1.0)]), str(recipe))
    assert augment_main(["--slices", str(sl), "--out", str(out), "--target-train", "9", "--target-val", "5",
                         "--recipe", str(recipe), "-q"]) == 0
    man = rows(out, "augment.tsv")
    assert sum(r["split"] == "train" for r in man) == 9 and sum(r["split"] == "val" for r in man) == 5
    for r in man:
        img = np.asarray(Image.open(out / r["file"]))
        src_img = np.asarray(Image.open(sl / r["source_file"]))[::-1]
        assert np.array_equal(np.asarray(Image.open(out / r["mask"])),
                              np.asarray(Image.open(sl / r["source_mask"]))[::-1])
        assert img.shape == src_img.shape and img.shape[2] == 3
        assert not np.array_equal(src_img[..., 0], src_img[..., 1])  # the CTA-like channel differs
