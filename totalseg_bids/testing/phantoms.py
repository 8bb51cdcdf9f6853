"""Synthetic CT/MRI phantom BIDS datasets with exactly known ground truth.

``generate(out, subjects=N)`` (``python -m totalseg_bids.phantoms --out DIR
--subjects N``) writes a BIDS dataset that looks like the real thing: per
subject (and session) a CT (``int16`` HU, ~1 mm, LPS or RAS), a sagittal
``acq-sag`` T2w and an oblique axial T1w on other grids (anisotropic voxels,
some with qform != sform within tolerance), TotalSegmentator-like CT labels in
``derivatives/labels`` and ground-truth masks on every grid in
``derivatives/ground_truth``.

The anatomy (:mod:`.anatomy`) is defined in world millimetres, so every grid's
mask is computed from the same definition. Optionally the MRI anatomy is moved
by a known rigid transform (the "patient moved between scans" case) recorded in
``derivatives/ground_truth/code/misalignment.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core import cli
from ..core.atomic import atomic_path, atomic_write_json, atomic_write_text
from ..core.bids import BidsName, subject_dir
from ..core.derivatives import ensure_dataset_description, generated_by, write_dseg_tsv, write_sidecar
from ..core.errors import UsageError
from ..core.nifti import Grid, save_image, save_mask
from ..totalsegmentator import class_ids
from .anatomy import (
    STRUCTURES,
    Anatomy,
    flexion,
    grid_coordinates,
    grid_points,
    make_affine,
    phantom_grids,
    render,
    rotation_matrix,
    structure_labels,
)
from .hard import bias_field, crop_superior, offset_grid, offset_pose

__all__ = [
    "PhantomOptions", "STRUCTURES", "Anatomy", "generate", "grid_coordinates", "grid_points", "make_affine",
    "misalignment_record", "phantom_grids", "render", "rotation_matrix", "structure_labels", "totalsegmentator_ids",
    "write_dataset_files", "write_subject",
]

#: TotalSegmentator v2 ``total`` ids, used only when TotalSegmentator is not installed.
_FALLBACK_TOTAL_IDS = {"sacrum": 25, "vertebrae_L5": 27, "hip_left": 77, "hip_right": 78}


def totalsegmentator_ids(task: str = "total") -> dict[str, int]:
    """Class ids of the phantom structures in TotalSegmentator's ``task``.

    Read from the installed TotalSegmentator's class map when present.
    """
    try:
        return class_ids(task, STRUCTURES)
    except Exception:  # noqa: BLE001 - not installed or another version's names
        return dict(_FALLBACK_TOTAL_IDS)


# ------------------------------------------------------------------ writing
@dataclass
class PhantomOptions:
    subjects: int = 3
    sessions: int = 0
    mixed_sessions: bool = False
    seed: int = 0
    misalign_mm: float = 0.0
    misalign_deg: float = 0.0
    misalign_fraction: float = 1.0
    ct_spacing: float = 1.0
    ct_labels: bool = True
    contrast_ct: bool = False  # also a contrast-enhanced CT (ce-contrast, CTA-like) on the CT grid
    qform_offset_mm: float = 0.02
    naming: str = "neuropoly"
    #: harder cases (totalseg_bids.testing.hard): MRI world frame moved by this many mm, MRI bias strength
    world_offset_mm: float = 0.0
    mri_bias: float = 0.0
    #: muscle wall, paraspinal and psoas muscles inside the fat layer
    layers: bool = False
    #: MRI grids cut to their top this many mm head-foot (0: whole field of view)
    mri_fov_mm: float = 0.0
    #: femurs; in the MRI they and the soft tissue turn this many degrees about the hip joints (0: no femurs)
    articulate_deg: float = 0.0


def _misalignment(rng: np.random.Generator, mm: float, deg: float) -> np.ndarray:
    """A rigid transform of ``mm`` translation and ``deg`` rotation, random directions."""
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    axis = rng.normal(size=3)
    pose = np.eye(4)
    centre = np.array([0.0, -20.0, 0.0])
    r = rotation_matrix(axis, deg)
    pose[:3, :3] = r
    pose[:3, 3] = centre - r @ centre + mm * direction
    return pose


def _subject_anatomy(rng: np.random.Generator, opts: PhantomOptions) -> tuple[Anatomy, Anatomy, bool]:
    """The CT and MRI anatomy of one subject (draws from ``rng`` in a fixed order)."""
    anatomy = Anatomy(scale=float(rng.uniform(0.92, 1.08)), shift=rng.uniform(-4, 4, size=3))
    misaligned = bool((opts.misalign_mm or opts.misalign_deg) and rng.uniform() < opts.misalign_fraction)
    mri_anatomy = Anatomy(anatomy.scale, anatomy.shift,
                          _misalignment(rng, opts.misalign_mm, opts.misalign_deg) if misaligned else np.eye(4))
    if opts.layers:
        anatomy.muscle = mri_anatomy.muscle = True
    if opts.articulate_deg:
        anatomy.femur_flex = np.eye(4)
        mri_anatomy.femur_flex = flexion(opts.articulate_deg)
    return anatomy, mri_anatomy, misaligned


def _subject_grids(index: int, opts: PhantomOptions, mri_anatomy: Anatomy) -> dict[str, Grid]:
    """The subject's grids, moved or cut by the hard options (the MRI anatomy's pose follows a moved frame)."""
    grids = phantom_grids(index, opts.ct_spacing)
    for m in ("T2w", "T1w"):
        if opts.mri_fov_mm:
            grids[m] = crop_superior(grids[m], opts.mri_fov_mm)
        if opts.world_offset_mm:
            grids[m] = offset_grid(grids[m], opts.world_offset_mm)
    if opts.world_offset_mm:
        mri_anatomy.pose = offset_pose(mri_anatomy.pose, opts.world_offset_mm)
    return grids


def write_subject(root: Path, index: int, session: str | None, opts: PhantomOptions) -> dict:
    """Write one subject/session; return its misalignment record."""
    sub = f"{index + 1:02d}"
    rng = np.random.default_rng([opts.seed, index, int(session or 0)])
    anatomy, mri_anatomy, misaligned = _subject_anatomy(rng, opts)
    ents = {"sub": sub} | ({"ses": session} if session else {})
    tool = generated_by("totalseg_bids.phantoms", seed=opts.seed)
    for modality, grid in _subject_grids(index, opts, mri_anatomy).items():
        acq = {"acq": "sag"} if modality == "T2w" else {}
        name = BidsName(tuple((ents | acq).items()), modality)
        path = root / subject_dir(name) / name.filename
        img, labels = render(anatomy if modality == "CT" else mri_anatomy, grid, modality, rng)
        if opts.mri_bias and modality != "CT":
            img = img * bias_field(grid.shape, opts.mri_bias)
        if modality == "CT":
            data = np.clip(np.rint(img), -1024, 3071).astype(np.int16)
        else:
            data = np.clip(img, 0, None).astype(np.int16)
        save_image(data, grid.affine, path)
        if modality == "T1w" and index % 2 == 0 and opts.qform_offset_mm:
            _offset_qform(path, opts.qform_offset_mm)
        atomic_write_json(path.with_name(name.stem + ".json"), _sidecar(modality))
        if modality == "CT" and opts.contrast_ct:
            _write_contrast_ct(root, ents, img, labels, grid, rng)
        _write_ground_truth(root, name, path, labels, grid, tool, opts)
        if modality == "CT" and opts.ct_labels:
            _write_ct_labels(root, name, path, labels, grid, opts)
    record = {"subject": sub, "session": session, "misaligned": misaligned,
              "translation_mm": float(opts.misalign_mm) if misaligned else 0.0,
              "rotation_deg": float(opts.misalign_deg) if misaligned else 0.0,
              "mri_from_ct_world": mri_anatomy.pose.round(6).tolist()}
    if opts.articulate_deg:
        record["femur_flexion_deg"] = float(opts.articulate_deg)
    return record


def _write_contrast_ct(root: Path, ents: dict, img: np.ndarray, labels: np.ndarray, grid: Grid,
                       rng: np.random.Generator) -> None:
    """A contrast-enhanced CT (ce-contrast): enhanced soft tissue outside the bones, fresh noise."""
    ce = BidsName(tuple((ents | {"ce": "contrast"}).items()), "CT")
    enhanced = img + np.where((labels == 0) & (img > -200), 150.0, 0.0) + rng.normal(0, 5, img.shape)
    save_image(np.clip(np.rint(enhanced), -1024, 3071).astype(np.int16), grid.affine,
               root / subject_dir(ce) / ce.filename)
    atomic_write_json(root / subject_dir(ce) / (ce.stem + ".json"), _sidecar("CT"))


def _write_ground_truth(root: Path, name: BidsName, path: Path, labels: np.ndarray, grid: Grid, tool: dict,
                        opts: PhantomOptions) -> None:
    """Ground truth on this grid: binary masks of the first two structures and one dseg of all."""
    gt_root = root / "derivatives" / "ground_truth"
    for i, structure in enumerate(STRUCTURES[:2]):
        gt = gt_root / subject_dir(name) / name.derivative(structure, naming=opts.naming).filename
        save_mask((labels == i + 1).astype(np.uint8), grid.affine, gt)
        write_sidecar(gt, [path], [tool], raw_root=root)
    dseg = gt_root / subject_dir(name) / name.derivative("phantom", kind="dseg", naming=opts.naming).filename
    save_mask(labels, grid.affine, dseg)
    write_dseg_tsv(dseg, {i + 1: s for i, s in enumerate(STRUCTURES)})
    write_sidecar(dseg, [path], [tool], raw_root=root)


def _write_ct_labels(root: Path, name: BidsName, path: Path, labels: np.ndarray, grid: Grid,
                     opts: PhantomOptions) -> None:
    """TotalSegmentator-like CT labels: a binary sacrum and a ``total`` dseg with its class ids."""
    ids = totalsegmentator_ids()
    label_root = root / "derivatives" / "labels"
    ts_tool = generated_by("totalseg_bids.phantoms", seed=opts.seed,
                           Description="phantom ground truth standing in for TotalSegmentator")
    seg = label_root / subject_dir(name) / name.derivative("sacrum", naming=opts.naming).filename
    save_mask((labels == 1).astype(np.uint8), grid.affine, seg)
    write_sidecar(seg, [path], [ts_tool], raw_root=root)
    total = np.zeros_like(labels)
    for i, structure in enumerate(STRUCTURES):
        total[labels == i + 1] = ids[structure]
    tseg = label_root / subject_dir(name) / name.derivative("total", kind="dseg", naming=opts.naming).filename
    save_mask(total, grid.affine, tseg)
    write_dseg_tsv(tseg, {ids[s]: s for s in STRUCTURES})
    write_sidecar(tseg, [path], [ts_tool], raw_root=root)


def _offset_qform(path: Path, offset_mm: float) -> None:
    """Rewrite ``path`` with its qform shifted by ``offset_mm`` (sform unchanged)."""
    import nibabel as nib

    img = nib.load(str(path))
    data = np.asanyarray(img.dataobj)
    q = img.affine.copy()
    q[:3, 3] += offset_mm
    new = nib.Nifti1Image(data, img.affine, header=img.header)
    new.set_sform(img.affine, code=1)
    new.set_qform(q, code=1)
    with atomic_path(path) as tmp:
        new.to_filename(str(tmp))


def _sidecar(modality: str) -> dict:
    if modality == "CT":
        return {"Modality": "CT", "Manufacturer": "totalseg_bids phantom", "ConvolutionKernel": "B30f"}
    return {"Modality": "MR", "MagneticFieldStrength": 3, "Manufacturer": "totalseg_bids phantom",
            "RepetitionTime": 0.6 if modality == "T1w" else 3.0,
            "EchoTime": 0.012 if modality == "T1w" else 0.1}


def misalignment_record(root: str | Path) -> Path:
    """Where the known CT->MRI transforms are recorded (``code/`` keeps the
    derivative dataset valid for the BIDS validator)."""
    return Path(root) / "derivatives" / "ground_truth" / "code" / "misalignment.json"


def write_dataset_files(root: Path, subjects: Sequence[str]) -> None:
    """``dataset_description.json``, ``participants.tsv/json``, ``README``, ``.bidsignore``."""
    atomic_write_json(root / "dataset_description.json", {
        "Name": "totalseg_bids phantom dataset", "BIDSVersion": "1.10.0", "DatasetType": "raw",
        "License": "CC0", "Authors": ["totalseg_bids"],
        "GeneratedBy": [{"Name": "totalseg_bids.phantoms"}],
    })
    atomic_write_text(root / "participants.tsv",
                      "participant_id\tage\tsex\n" + "".join(f"sub-{s}\t{40 + int(s) % 30}\t{'MF'[int(s) % 2]}\n"
                                                           for s in subjects))
    atomic_write_json(root / "participants.json", {
        "age": {"Description": "age of the participant", "Units": "year"},
        "sex": {"Description": "sex of the participant", "Levels": {"M": "male", "F": "female"}},
    })
    atomic_write_text(root / "README", "Synthetic CT/MRI phantoms written by totalseg_bids.phantoms.\n"
                      "CT images (suffix _CT) are listed in .bidsignore: BIDS has no CT datatype yet.\n")
    atomic_write_text(root / ".bidsignore", "*_CT.nii.gz\n*_CT.json\n*_ct.nii.gz\n*_ct.json\nct/\n")


def generate(out: str | Path, opts: PhantomOptions | None = None, **kwargs) -> Path:
    """Write a phantom BIDS dataset at ``out``; return its path.

    >>> # generate("/tmp/ph", subjects=2, misalign_mm=4, misalign_deg=3)
    """
    opts = opts or PhantomOptions(**kwargs)
    if opts.subjects < 1:
        raise UsageError("--subjects must be >= 1", None, "e.g. --subjects 5")
    if opts.sessions < 0:
        raise UsageError("--sessions must be >= 0", None, "0 writes no session folders")
    root = Path(out)
    records = []
    subjects = [f"{i + 1:02d}" for i in range(opts.subjects)]
    work = []
    for i in range(opts.subjects):
        n_ses = opts.sessions if not (opts.mixed_sessions and i % 2 == 0) else 0
        sessions = [f"{s + 1:02d}" for s in range(n_ses)] or [None]
        work += [(i, ses) for ses in sessions]
    for i, ses in cli.progress(work, desc="phantoms"):
        records.append(write_subject(root, i, ses, opts))
    write_dataset_files(root, subjects)
    gt_root = root / "derivatives" / "ground_truth"
    ensure_dataset_description(gt_root, "phantom ground truth")
    atomic_write_json(misalignment_record(root), {"seed": opts.seed, "subjects": records})
    if opts.ct_labels:
        ensure_dataset_description(root / "derivatives" / "labels", "labels")
    return root
