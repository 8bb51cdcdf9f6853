"""Data generators for the benchmarks (everything is written under a temporary folder)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

DESCRIPTION = {"Name": "benchmark", "BIDSVersion": "1.10.0", "DatasetType": "raw"}


def deriv_description(name: str) -> dict:
    return {"Name": name, "BIDSVersion": "1.10.0", "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "benchmarks"}]}


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


# ------------------------------------------------------------ 1. index tree
def make_index_tree(root: Path, n: int) -> int:
    """Empty placeholder files: per subject T1w, T2w, CT (+ JSON sidecars for the
    MRI), a CT label and two transferred labels in derivatives. Returns the
    number of raw NIfTI files."""
    root.mkdir(parents=True, exist_ok=True)
    write_json(root / "dataset_description.json", DESCRIPTION)
    (root / "participants.tsv").write_text("participant_id\n" + "".join(f"sub-{i:04d}\n" for i in range(n)))
    for d in ("labels", "reg-labels"):
        write_json(root / "derivatives" / d / "dataset_description.json", deriv_description(d))
    raw = 0
    for i in range(n):
        sub = f"sub-{i:04d}"
        anat = root / sub / "anat"
        anat.mkdir(parents=True)
        for suffix in ("T1w", "T2w", "CT"):
            open(anat / f"{sub}_{suffix}.nii.gz", "wb").close()
            raw += 1
        for suffix in ("T1w", "T2w"):
            (anat / f"{sub}_{suffix}.json").write_text('{"RepetitionTime": 2.0}')
        lab = root / "derivatives" / "labels" / sub / "anat"
        lab.mkdir(parents=True)
        open(lab / f"{sub}_CT_label-sacrum_seg.nii.gz", "wb").close()
        reg = root / "derivatives" / "reg-labels" / sub / "anat"
        reg.mkdir(parents=True)
        for suffix in ("T1w", "T2w"):
            open(reg / f"{sub}_{suffix}_label-sacrum_seg.nii.gz", "wb").close()
    return raw


def scandir_walk(root: str) -> list[str]:
    """The floor: a bare recursive ``os.scandir`` of ``sub-*`` collecting NIfTI paths."""
    out: list[str] = []
    stack = [e.path for e in os.scandir(root) if e.name.startswith("sub-") and e.is_dir()]
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                if e.is_dir():
                    stack.append(e.path)
                elif e.name.endswith((".nii.gz", ".nii")):
                    out.append(e.path)
    out.sort()
    return out


# ------------------------------------------------------------ geometry helpers
def rotation(axis, degrees: float) -> np.ndarray:
    axis = np.asarray(axis, float)
    axis = axis / np.linalg.norm(axis)
    t = np.deg2rad(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * (k @ k)


def affine_centred(directions: np.ndarray, spacing, shape, centre) -> np.ndarray:
    a = np.eye(4)
    a[:3, :3] = np.asarray(directions, float) * np.asarray(spacing, float)
    a[:3, 3] = np.asarray(centre, float) - a[:3, :3] @ ((np.asarray(shape, float) - 1) / 2)
    return a


def ellipsoid_into(vol: np.ndarray, centre, semi, value=1) -> None:
    """Set an axis-aligned ellipsoid (voxel units) inside ``vol``, touching only its bounding box."""
    lo = [max(int(c - s) - 1, 0) for c, s in zip(centre, semi)]
    hi = [min(int(c + s) + 2, n) for c, s, n in zip(centre, semi, vol.shape)]
    g = np.ogrid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    inside = sum(((gi - c) / s) ** 2 for gi, c, s in zip(g, centre, semi)) <= 1.0
    sub = vol[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    sub[inside] = value


def save_nifti(data: np.ndarray, affine: np.ndarray, path: Path) -> Path:
    """Write with qform == sform == affine (codes 1), like real data from our tools."""
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(data, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_slope_inter(1, 0)
    img.to_filename(str(path))
    return path


# ------------------------------------------------------------ 2/6. label transfer
def make_transfer_case(folder: Path, ct_shape=(512, 512, 400), mri_shape=(320, 320, 60),
                       ct_spacing=(0.78, 0.78, 1.0), mri_spacing=(0.7, 0.7, 4.0),
                       write_mri=True) -> dict:
    """A CT label (LPS, a sacrum-sized ellipsoid, < 1 % of voxels) and an oblique
    MRI grid (15 deg about left-right, 5 deg about anterior-posterior) centred on it."""
    ct_shape = tuple(ct_shape)
    ct_aff = affine_centred(np.diag([-1.0, -1.0, 1.0]), ct_spacing, ct_shape, [0.0, -20.0, 0.0])
    label = np.zeros(ct_shape, np.uint8)
    # sacrum ~ 90 x 55 x 90 mm, a little off-centre
    centre = [s * f for s, f in zip(ct_shape, (0.5, 0.58, 0.45))]
    semi = [45.0 / ct_spacing[0], 27.0 / ct_spacing[1], 45.0 / ct_spacing[2]]
    ellipsoid_into(label, centre, semi, 1)
    # a second, smaller blob (L5-like) so the bounding box is not trivially tight
    ellipsoid_into(label, [centre[0], centre[1] - semi[1], min(centre[2] + 1.4 * semi[2], ct_shape[2] - 3)],
                   [semi[0] * 0.45, semi[1] * 0.6, semi[2] * 0.25], 1)
    ct_path = save_nifti(label, ct_aff, folder / "sub-01" / "anat" / "sub-01_CT_label-sacrum_seg.nii.gz")
    world_centre = ct_aff[:3, :3] @ np.asarray(centre) + ct_aff[:3, 3]
    dirs = rotation([1, 0, 0], 15.0) @ rotation([0, 1, 0], 5.0)
    mri_aff = affine_centred(dirs, mri_spacing, mri_shape, world_centre)
    mri_path = folder / "sub-01" / "anat" / "sub-01_T2w.nii.gz"
    if write_mri:
        rng = np.random.default_rng(0)
        img = (rng.normal(400, 30, size=mri_shape)).astype(np.int16)
        save_nifti(img, mri_aff, mri_path)
    return {"ct_label": ct_path, "ct_affine": ct_aff, "mri": mri_path, "mri_affine": mri_aff,
            "mri_shape": tuple(mri_shape), "ct_shape": ct_shape, "fraction": float(label.mean()),
            "ct_bytes": int(label.nbytes)}


# ------------------------------------------------------------ 3/7. small cohorts
def small_pair(shape=(64, 64, 24), seed=0, oblique=True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An int16 MRI-like image, its binary label and an LPS (oblique) affine."""
    rng = np.random.default_rng(seed)
    img = rng.normal(300, 25, size=shape).astype(np.int16)
    lab = np.zeros(shape, np.uint8)
    ellipsoid_into(lab, [s / 2 for s in shape], [max(s / 5, 1.5) for s in shape], 1)
    img[lab > 0] += 200
    dirs = np.diag([-1.0, -1.0, 1.0]) @ (rotation([1, 0, 0], 10.0) if oblique else np.eye(3))
    aff = affine_centred(dirs, (1.0, 1.0, 3.0), shape, [0.0, 0.0, 0.0])
    return img, lab, aff


def write_case(img_path: Path, lab_path: Path, shape, seed: int,
               template: tuple[Path, Path] | None = None) -> tuple[Path, Path]:
    """One image/label pair (plus the image's sidecar): freshly drawn, or a byte copy of
    ``template`` (the content does not change what the benchmarks time). Returns the pair."""
    if template is None:
        img, lab, aff = small_pair(shape, seed=seed)
        save_nifti(img, aff, img_path)
        save_nifti(lab, aff, lab_path)
    else:
        img_path.parent.mkdir(parents=True, exist_ok=True)
        lab_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template[0], img_path)
        shutil.copyfile(template[1], lab_path)
    stem = img_path.name.removesuffix(".nii.gz")
    (img_path.parent / f"{stem}.json").write_text('{"RepetitionTime": 3.0}', encoding="utf-8")
    return img_path, lab_path


def make_small_cohort(root: Path, n: int, shape=(64, 64, 24), unique: bool = True) -> list[Path]:
    """``n`` subjects with ``sub-XXXX_T2w.nii.gz`` and
    ``derivatives/reg-labels/.../sub-XXXX_T2w_label-sacrum_seg.nii.gz``.

    With ``unique=False`` one image/label pair is written and its bytes copied
    to every subject (fast for 1,000 subjects; the content is irrelevant there).
    Returns the label paths.
    """
    root.mkdir(parents=True, exist_ok=True)
    write_json(root / "dataset_description.json", DESCRIPTION)
    write_json(root / "derivatives" / "reg-labels" / "dataset_description.json", deriv_description("reg-labels"))
    labels = []
    template = None
    for i in range(n):
        sub = f"sub-{i:04d}"
        img_path = root / sub / "anat" / f"{sub}_T2w.nii.gz"
        lab_path = root / "derivatives" / "reg-labels" / sub / "anat" / f"{sub}_T2w_label-sacrum_seg.nii.gz"
        pair = write_case(img_path, lab_path, shape, i, None if unique else template)
        template = template or pair
        labels.append(lab_path)
    return labels


def write_label_config(path: Path, root: Path, labels: list[Path], n_val: int) -> Path:
    """A LABEL data config (docs/conventions.md section 4) listing ``labels``."""
    base = root.parent
    rel = [p.relative_to(base).as_posix() for p in labels]
    cfg = {"TYPE": "LABEL", "CONTRASTS": "t2", "DATASETS_PATH": str(base),
           "TRAINING": rel[n_val:], "VALIDATION": rel[:n_val], "TESTING": []}
    write_json(path, cfg)
    return path


# ------------------------------------------------------------ phantom cohorts
def clone_phantom_subjects(template: Path, dest: Path, n: int) -> None:
    """A phantom dataset of ``n`` subjects made by copying the template's
    subjects (raw tree and ``derivatives/labels``) under new labels. Files keep
    their content; names and JSON sidecars are renamed."""
    template_subs = sorted(p.name for p in template.glob("sub-*") if p.is_dir())
    dest.mkdir(parents=True, exist_ok=True)
    for f in template.iterdir():
        if f.is_file():
            shutil.copyfile(f, dest / f.name)
    (dest / "derivatives" / "labels").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template / "derivatives" / "labels" / "dataset_description.json",
                    dest / "derivatives" / "labels" / "dataset_description.json")
    for i in range(n):
        src_sub = template_subs[i % len(template_subs)]
        new_sub = f"sub-{i + 1:04d}"
        for base in (Path("."), Path("derivatives") / "labels"):
            src_dir = template / base / src_sub
            if not src_dir.exists():
                continue
            for path in src_dir.rglob("*"):
                if path.is_dir():
                    continue
                rel = path.relative_to(src_dir)
                out = dest / base / new_sub / Path(str(rel).replace(src_sub, new_sub))
                out.parent.mkdir(parents=True, exist_ok=True)
                if path.suffix == ".json":
                    out.write_text(path.read_text(encoding="utf-8").replace(src_sub, new_sub))
                else:
                    shutil.copyfile(path, out)
