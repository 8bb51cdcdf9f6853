"""The README's seed workflows run verbatim, each from phantoms written in its publisher's layout.

As tests/cli/test_readme.py does for the sacrum workflow: a README section's ```bash blocks run by
bash, from a folder that is not the repository, with ``DATA`` naming the data folder that holds
the download (a phantom in the publisher's layout, written here). Each test then checks the
workflow's output and the figures the seed reports, computed again from the phantom's truth.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from support import REPO, script_steps
from support.totalseg import totalseg_env

from totalseg_bids.testing.layouts import write_layout

SECTION = "## The other seed workflows"
#: seconds each recipe took (reported by the session's last test)
TIMES: dict[str, float] = {}


def recipe(heading: str) -> str:
    """The ```bash blocks of the README subsection starting with ``### <heading>``, joined."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    text = text[text.index(SECTION):]
    start = text.index(f"### {heading}")
    ends = [i for i in (text.find("\n### ", start + 4), text.find("\n## ", start + 4)) if i > 0]
    blocks = re.findall(r"```bash\n(.*?)```", text[start:min(ends) if ends else None], flags=re.S)
    assert blocks, heading
    return "\n".join(blocks)


def run_recipe(name: str, heading: str, data: Path, tmp_path: Path, env: dict | None = None,
               timeout: float = 170, script: str | None = None) -> subprocess.CompletedProcess:
    """Run one recipe (or ``script``, one of its steps) verbatim (``bash -e -o pipefail``) from a folder
    outside the repository."""
    full = {**os.environ, "DATA": str(data), "TOTALSEG_BIDS_NO_PROGRESS": "1", "nnUNet_def_n_proc": "1",
            "NNUNET_NP": "1",
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            **(env or {})}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    t = time.perf_counter()
    proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script or recipe(heading)], cwd=elsewhere, env=full,
                          capture_output=True, encoding="utf-8", errors="replace", timeout=timeout)
    TIMES[name] = round(time.perf_counter() - t, 1)
    sys.stderr.write(f"recipe {name}: {TIMES[name]} s\n")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def records(proc: subprocess.CompletedProcess, stage: str) -> list[dict]:
    """The JSON lines a recipe's commands printed for ``stage``."""
    out = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return [r for r in out if r.get("stage") == stage]


@pytest.fixture
def data(tmp_path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


# --------------------------------------------------------------------------- 002 cranium
@pytest.mark.slow
def test_cranium_recipe_mmseg_layout_and_class_table(data, tmp_path):
    """CT-ICH's jpgs -> BIDS (both windows, 3D masks empty where no mask file exists) -> MMSegmentation's
    images/train, masks/train (0/1, every slice) -> the seed's class table, equal to the phantom's truth."""
    from totalseg_bids.testing.layouts.ctich import patient_scan

    patients = 3
    write_layout("ctich", data / "ct-ich", patients)
    write_layout("ctich-nifti", data / "ct-ich-nifti", patients)
    proc = run_recipe("cranium", "Intracranial hemorrhage", data, tmp_path)
    truth = [patient_scan(i, 0)[1] for i in range(patients)]
    n_slices = sum(t.shape[2] for t in truth)
    positive = sum(int(t[:, :, k].any()) for t in truth for k in range(t.shape[2]))
    mask_files = sorted((data / "ct-ich" / "Patients_CT").glob("*/brain/*_HGE_Seg.jpg"))
    assert positive == len(mask_files) > 0
    cranium = data / "cranium"
    for i, t in enumerate(truth):
        sub = f"sub-{49 + i:03d}"
        labels = cranium / "derivatives" / "labels" / sub / "anat"
        mask = nib.load(labels / f"{sub}_acq-brain_CT_label-hemorrhage_seg.nii.gz")
        assert np.array_equal(np.asarray(mask.dataobj), t)  # empty slices where no mask file, JPEG thresholded
        assert (cranium / sub / "anat" / f"{sub}_acq-bone_CT.nii.gz").is_file()
    # MMSegmentation's script keeps only exact 0 and 255: the JPEG edge pixels it loses
    from PIL import Image

    exact = sum(int((np.asarray(Image.open(f)) == 255).sum()) for f in mask_files)
    assert exact < sum(int(t.sum()) for t in truth)
    assert any("between the two extremes" in line for line in proc.stderr.splitlines())
    diagnosis = (cranium / "derivatives" / "labels" / "hemorrhage_diagnosis.tsv").read_text().splitlines()
    assert len(diagnosis) == 1 + n_slices
    assert sum(line.endswith("\t1") for line in diagnosis[1:]) == positive
    mmseg = data / "cranium_mmseg"
    pngs, masks = sorted((mmseg / "images" / "train").glob("*.png")), sorted((mmseg / "masks" / "train").glob("*.png"))
    assert len(pngs) == len(masks) == n_slices
    values = set().union(*(np.unique(np.asarray(Image.open(m))).tolist() for m in masks))
    assert values == {0, 1}
    # the seed's class table: class name, pixel percentage, images in the class
    table = (data / "cranium_classes.md").read_text()
    pixels = sum(t.size for t in truth)
    bleed = sum(int(t.sum()) for t in truth)
    assert f"| background | {100 * (pixels - bleed) / pixels:.2f} | {n_slices} |" in table
    assert f"| hemorrhage | {100 * bleed / pixels:.2f} | {positive} |" in table
    assert f"cranium_mmseg train: {n_slices} images" in table
    nifti = data / "cranium_nifti"
    assert len(list(nifti.glob("derivatives/labels/sub-*/anat/*_label-hemorrhage_seg.nii.gz"))) == patients


# --------------------------------------------------------------------------- 001 clots
@pytest.mark.slow
def test_clot_recipe_processed_tree_and_counts(data, tmp_path):
    """CT-ClotSeg's arrays -> two-channel cases -> 60/20/20 -> 256 x 256 slices -> augmented to the
    target counts -> Processed/{Original,Sliced,Augmented}; the counts per folder and split."""
    cases = 5
    write_layout("clotseg", data / "CT-ClotSeg", cases)
    proc = run_recipe("clots", "Clots", data, tmp_path)
    cfg = json.loads((data / "clots.json").read_text())
    assert [len(cfg[s]) for s in ("TRAINING", "VALIDATION", "TESTING")] == [3, 1, 1]
    assert all(len(e["IMAGE"]) == 2 and e["IMAGE"][0].endswith("_ce-contrast_CT.nii.gz")
               for s in ("TRAINING", "VALIDATION", "TESTING") for e in cfg[s])
    slices_per_case = 24
    expected = {"Original": {"Training": 3, "Validation": 1, "Testing": 1},
                "Sliced": {"Training": 3 * slices_per_case, "Validation": slices_per_case, "Testing": slices_per_case},
                "Augmented": {"Training": 200, "Validation": 60, "Testing": slices_per_case}}
    manifest = [r for r in records(proc, "augment") if r.get("kind") == "manifest"]
    assert manifest[0]["processed"] == expected
    table = [line for line in proc.stderr.splitlines() if line.startswith(("Processed", "Original", "Sliced",
                                                                             "Augmented"))]
    assert [line.split()[1:] for line in table[1:]] == [[str(n) for n in per.values()] for per in expected.values()]
    tree = data / "clot_training" / "Processed"
    for folder, per in expected.items():
        for split, n in per.items():
            kind = "*.npy" if folder == "Original" else "*.png"
            found = list((tree / folder / split / "images").glob(kind))
            assert len(found) == (2 * n if folder == "Original" else n), (folder, split)
            assert len(list((tree / folder / split / "masks").glob(kind))) == n
    from PIL import Image

    sample = Image.open(next((tree / "Augmented" / "Training" / "images").glob("*.png")))
    assert sample.size == (256, 256)
    assert sorted(p.name for p in (tree / "Original" / "Testing" / "images").glob("*.npy"))[0].endswith(
        "_CTA_Binary.npy")


# --------------------------------------------------------------------------- 004 lungs
@pytest.mark.slow
def test_lung_recipe_split_npy_and_montage(data, tmp_path):
    """Finding Lungs' tifs and NIfTI pairs -> BIDS keeping each slice's Z -> split -> .npy with geometry
    sidecars (images and masks per split as the tutorial reports them) -> QC montages of the volumes."""
    volumes = 2
    write_layout("finding-lungs", data / "finding-lungs-in-ct-data", volumes)
    proc = run_recipe("lungs", "Lungs", data, tmp_path)
    names = sorted(p.name for p in (data / "finding-lungs-in-ct-data" / "2d_images").glob("*.tif"))
    lungs = data / "lungs"
    for name in names:
        sid, z = re.match(r"ID_(\d+)_Z_(\d+)", name).groups()
        image = lungs / f"sub-ID{sid}" / "anat" / f"sub-ID{sid}_chunk-{int(z)}_CT.nii.gz"
        assert nib.load(image).affine[2, 3] == pytest.approx(2.5 * int(z))
    cfg = json.loads((data / "lungs2d.json").read_text())
    counts = {s: len(cfg[c]) for s, c in (("train", "TRAINING"), ("val", "VALIDATION"), ("test", "TESTING"))}
    assert sum(counts.values()) == len(names) and all(counts.values())
    headings = {"train": "Training data", "val": "Validation data", "test": "Test data"}
    for split, n in counts.items():
        assert f"{headings[split]}: {n} images, {n} masks" in proc.stderr
        npys = sorted((data / "lungs_npy" / split).glob("*.npy"))
        assert len(npys) == 2 * n and all(p.with_suffix(".json").is_file() for p in npys)
    first = sorted((data / "lungs_npy" / "train").glob("*_CT.npy"))[0]
    z = int(re.search(r"chunk-(\d+)", first.name).group(1))
    assert json.loads(first.with_suffix(".json").read_text())["affine"][2][3] == pytest.approx(2.5 * z)
    qc = [r for r in records(proc, "qc") if r.get("kind") == "entry"]
    assert len(qc) == volumes and (data / "lungs_qc" / "index.html").is_file()
    for r in qc:
        stem = (data / r["path"]).with_suffix("")  # relative to the data folder the recipe ran in
        assert Path(f"{stem}_ax_overlay.png").is_file() and Path(f"{stem}_sag_overlay.png").is_file()


# --------------------------------------------------------------------------- 000 glands
GLAND_PATIENTS = 2  # one trains, one validates fold 0: each more costs a TotalSegmentator run
GLAND_STEPS = script_steps(recipe("Glands"))


@pytest.fixture(scope="module")
def glands(tmp_path_factory, tiny_totalseg_home) -> dict:
    """The gland recipe's data folder (the DICOM export as published) and the steps run so far."""
    base = tmp_path_factory.mktemp("glands")
    data = base / "data"
    write_layout("glands", data / "glands_dicom", GLAND_PATIENTS)
    env = {**totalseg_env(tiny_totalseg_home), "TOTALSEG_BIDS_NNUNET_TRAINER": "nnUNetTrainer_2epochs_10iters"}
    return {"data": data, "base": base, "env": env, "done": []}


@pytest.mark.nnunet
@pytest.mark.totalseg
@pytest.mark.xdist_group("glands")
@pytest.mark.parametrize("number", range(1, len(GLAND_STEPS) + 1))
def test_gland_recipe_step(glands, number):
    """A full-body CT export with gland contours -> BIDS -> TotalSegmentator's skull (the real program) ->
    CT and glands cut to the skull, 3x voxels -> Dataset004_glands trained 2d and 3d_fullres; each numbered
    step of the recipe verbatim, in order, in one data folder."""
    if glands["done"] != list(range(1, number)):
        pytest.fail(f"step {number} needs steps 1-{number - 1}; done: {glands['done']}", pytrace=False)
    title, script = GLAND_STEPS[number - 1]
    run_recipe(f"glands {title}", "Glands", glands["data"], glands["base"], env=glands["env"], timeout=175,
               script=script)
    GLAND_CHECKS.get(number, lambda data: None)(glands["data"])
    glands["done"].append(number)


def _skull_found(data: Path) -> None:
    for i in range(GLAND_PATIENTS):
        sub = f"sub-p{i + 1:03d}"
        skull = nib.load(data / "glands/derivatives/labels" / sub / "anat" / f"{sub}_CT_label-skull_seg.nii.gz")
        assert np.asarray(skull.dataobj).sum() > 0


def _cut_to_the_head(data: Path) -> None:
    glands = data / "glands"
    for i in range(GLAND_PATIENTS):
        sub = f"sub-p{i + 1:03d}"
        full = nib.load(glands / "derivatives/labels" / sub / "anat" / f"{sub}_CT_label-glands_dseg.nii.gz")
        cut = nib.load(glands / "derivatives" / "cropped" / sub / "anat"
                       / f"{sub}_res-factor3_desc-cropped_CT_label-glands_dseg.nii.gz")
        assert np.prod(cut.shape) * 27 < np.prod(full.shape) / 2  # cut to the head, then 3x voxels
        assert set(np.unique(np.asarray(cut.dataobj)).tolist()) == set(range(7))  # every gland kept


def _trained(configuration: str) -> Callable[[Path], None]:
    def check(data: Path) -> None:
        ds = data / "nnUNet" / "raw" / "Dataset004_glands"
        meta = json.loads((ds / "dataset.json").read_text())
        assert meta["numTraining"] == GLAND_PATIENTS and len(meta["labels"]) == 7
        model = (data / "nnUNet" / "results" / "Dataset004_glands"
                 / f"nnUNetTrainer_2epochs_10iters__nnUNetPlans__{configuration}")
        assert (model / "fold_0" / "checkpoint_final.pth").is_file(), configuration

    return check


GLAND_CHECKS = {2: _skull_found, 3: _cut_to_the_head, 5: _trained("2d"), 6: _trained("3d_fullres")}
