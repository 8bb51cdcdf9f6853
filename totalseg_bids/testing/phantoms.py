"""Synthetic CT/MRI phantoms with exactly known ground truth.

``python -m totalseg_bids.phantoms --out DIR --subjects N`` writes a BIDS
dataset that looks like the real thing: per subject (and session) a CT
(``int16`` HU, ~1 mm, LPS or RAS), a sagittal ``acq-sag`` T2w and an oblique
axial T1w on other grids (anisotropic voxels, some with qform != sform within
tolerance), TotalSegmentator-like CT labels in ``derivatives/labels`` and
ground-truth masks on every grid in ``derivatives/ground_truth``.

The anatomy (a tapered sacrum, an L5 vertebral body, both hip bones inside a
body with a fat layer) is defined in world millimetres, so every grid's mask
is computed from the same definition. Optionally the MRI anatomy is moved by a
known rigid transform (the "patient moved between scans" case) recorded in
``derivatives/ground_truth/code/misalignment.json``.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .layouts import LAYOUTS
from ..core import flags
from ..core import cli
from ..core.atomic import atomic_write_json, atomic_write_text
from ..core.bids import BidsName, subject_dir
from ..core.derivatives import ensure_dataset_description, generated_by, write_dseg_tsv, write_sidecar
from ..core.errors import UsageError
from ..core.nifti import Grid, save_image, save_mask

log = logging.getLogger(__name__)

#: Phantom structures, in the order of their internal index (1..4).
STRUCTURES = ("sacrum", "vertebrae_L5", "hip_left", "hip_right")
#: TotalSegmentator v2 ``total`` ids, used only when TotalSegmentator is not installed.
_FALLBACK_TOTAL_IDS = {"sacrum": 25, "vertebrae_L5": 27, "hip_left": 77, "hip_right": 78}

# tissue intensities: background, body, fat, then STRUCTURES, then muscle and femur
# (the last two only with --layers / --articulate-deg, see phantom_hard.py)
_INTENSITY = {
    "CT": (-1000.0, 40.0, -100.0, 480.0, 520.0, 560.0, 560.0, 60.0, 900.0),
    "T1w": (0.0, 300.0, 850.0, 640.0, 700.0, 660.0, 660.0, 190.0, 720.0),
    "T2w": (0.0, 380.0, 720.0, 560.0, 600.0, 580.0, 580.0, 230.0, 610.0),
}
_NOISE = {"CT": 25.0, "T1w": 18.0, "T2w": 18.0}


def totalsegmentator_ids(task: str = "total") -> dict[str, int]:
    """Class ids of the phantom structures in TotalSegmentator's ``task``.

    Read from the installed TotalSegmentator's class map when present.
    """
    try:
        from totalsegmentator.map_to_binary import class_map

        by_name = {v: k for k, v in class_map[task].items()}
        return {s: int(by_name[s]) for s in STRUCTURES}
    except Exception:  # noqa: BLE001 - not installed or another version's names
        return dict(_FALLBACK_TOTAL_IDS)


# ----------------------------------------------------------------- anatomy
def rotation_matrix(axis: Sequence[float], degrees: float) -> np.ndarray:
    """3x3 rotation about ``axis`` (Rodrigues).

    >>> np.round(rotation_matrix([0, 0, 1], 90) @ [1, 0, 0], 6).tolist()
    [0.0, 1.0, 0.0]
    """
    axis = np.asarray(axis, float)
    axis = axis / np.linalg.norm(axis)
    t = np.deg2rad(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * (k @ k)


@dataclass
class Anatomy:
    """A subject's anatomy in world mm (RAS+), with per-subject variation."""

    scale: float = 1.0
    shift: np.ndarray = field(default_factory=lambda: np.zeros(3))
    # world(MRI) = R @ (p - centre) + centre + t : where the anatomy sits in the MRI session
    pose: np.ndarray = field(default_factory=lambda: np.eye(4))
    #: a muscle wall, paraspinal and psoas muscles inside the fat layer
    muscle: bool = False
    #: femurs, posed with the soft tissue by this 4x4 (anatomy mm) relative to the pelvis; None: no femurs
    femur_flex: np.ndarray | None = None

    def classes(self, world: np.ndarray) -> np.ndarray:
        """Tissue class per world point (N, 3): 0 air, 1 body, 2 fat, 3+i structure i, 7 muscle, 8 femur."""
        world = np.asarray(world, np.float32)
        return self.classes_xyz(world[:, 0], world[:, 1], world[:, 2])

    def classes_xyz(self, wx: np.ndarray, wy: np.ndarray, wz: np.ndarray) -> np.ndarray:
        """Like :meth:`classes` for coordinate arrays of any (equal) shape.

        Each structure is evaluated only inside its bounding box, which keeps a
        full-size CT fast to render.
        """
        inv = np.linalg.inv(self.pose)
        if not np.allclose(self.pose, np.eye(4)):
            wx, wy, wz = (inv[c, 0] * wx + inv[c, 1] * wy + inv[c, 2] * wz + inv[c, 3] for c in range(3))
        x = (wx - self.shift[0]) / self.scale
        y = (wy - self.shift[1]) / self.scale
        z = (wz - self.shift[2]) / self.scale
        out = np.zeros(np.shape(x), np.uint8)
        sx, sy, sz = x, y, z  # soft tissue (and femurs): moved by femur_flex relative to the pelvis
        if self.femur_flex is not None:
            from .hard import inverse_points

            sx, sy, sz = inverse_points(self.femur_flex, x, y, z)
        body = ((sx / 80.0) ** 2 + ((sy + 5.0) / 60.0) ** 2 <= 1.0) & (np.abs(sz) <= 200)
        out[body] = 2
        out[body & ((sx / 72.0) ** 2 + ((sy + 5.0) / 52.0) ** 2 <= 1.0)] = 1
        if self.muscle or self.femur_flex is not None:
            from . import hard as phantom_hard

            if self.muscle:
                phantom_hard.paint_muscle(out, sx, sy, sz)
            if self.femur_flex is not None:
                phantom_hard.paint_femurs(out, sx, sy, sz)
        for i, (centre, radius, inside) in enumerate(_STRUCTURE_SHAPES):
            near = ((np.abs(x - centre[0]) <= radius) & (np.abs(y - centre[1]) <= radius)
                    & (np.abs(z - centre[2]) <= radius))
            if not near.any():
                continue
            pts = np.stack([x[near], y[near], z[near]], axis=-1)
            hit = np.zeros(np.shape(x), bool)
            hit[near] = inside(pts)
            out[hit] = 3 + i
        return out

    def labels(self, world: np.ndarray) -> np.ndarray:
        """Structure index per point: 0 background, i+1 for STRUCTURES[i]."""
        return structure_labels(self.classes(world))


def structure_labels(cls: np.ndarray) -> np.ndarray:
    """Tissue classes to structure indices (muscle and femur are not labelled).

    >>> structure_labels(np.array([0, 1, 2, 3, 6, 7, 8])).tolist()
    [0, 0, 0, 1, 4, 0, 0]
    """
    return np.where((cls >= 3) & (cls < 3 + len(STRUCTURES)), cls - 2, 0).astype(np.uint8)


def _sacrum(p: np.ndarray) -> np.ndarray:
    """Tapered ellipsoid tilted 25 degrees about the left-right axis."""
    q = (p - np.array([0.0, -30.0, -10.0])) @ rotation_matrix([1, 0, 0], 25.0)
    taper = 0.55 + 0.45 * np.clip((q[:, 2] / 42.0 + 1) / 2, 0, 1)
    return (q[:, 0] / (40.0 * taper)) ** 2 + (q[:, 1] / 13.0) ** 2 + (q[:, 2] / 42.0) ** 2 <= 1.0


def _l5(p: np.ndarray) -> np.ndarray:
    """Elliptic cylinder (vertebral body) above the sacrum."""
    return (((p[:, 0] / 21.0) ** 2 + ((p[:, 1] + 22.0) / 15.0) ** 2) <= 1.0) & (np.abs(p[:, 2] - 52.0) <= 12.0)


def _hip(sign: float):
    """Ellipsoid hip bone: ``sign=+1`` on the subject's right (+x in RAS+), -1 on the left."""
    rz = rotation_matrix([0, 0, 1], sign * 30.0)

    def inside(p: np.ndarray) -> np.ndarray:
        h = (p - np.array([sign * 58.0, -18.0, 2.0])) @ rz
        return (h[:, 0] / 10.0) ** 2 + (h[:, 1] / 26.0) ** 2 + (h[:, 2] / 36.0) ** 2 <= 1.0

    return inside


#: (centre, bounding half-width in mm, membership test) per structure, in STRUCTURES order.
_STRUCTURE_SHAPES = (
    ((0.0, -30.0, -10.0), 46.0, _sacrum),
    ((0.0, -22.0, 52.0), 26.0, _l5),
    ((-58.0, -18.0, 2.0), 40.0, _hip(-1.0)),  # hip_left: RAS+ x grows towards the subject's right
    ((58.0, -18.0, 2.0), 40.0, _hip(1.0)),  # hip_right
)


def grid_points(grid: Grid) -> np.ndarray:
    """World coordinates of every voxel centre, (N, 3) float32, C order."""
    return np.stack([c.ravel() for c in grid_coordinates(grid)], axis=-1)


def grid_coordinates(grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World x, y, z of every voxel centre as three arrays of the grid's shape
    (built by broadcasting, without an (N, 3) index array)."""
    i, j, k = (np.arange(n, dtype=np.float32) for n in grid.shape)
    a = grid.affine.astype(np.float32)
    return tuple(a[c, 0] * i[:, None, None] + a[c, 1] * j[None, :, None] + a[c, 2] * k[None, None, :] + a[c, 3]
                 for c in range(3))


def make_affine(directions: np.ndarray, spacing: Sequence[float], shape: Sequence[int],
                centre: Sequence[float]) -> np.ndarray:
    """Affine whose voxel axes point along ``directions`` columns, centred on ``centre``."""
    a = np.eye(4)
    a[:3, :3] = np.asarray(directions, float) * np.asarray(spacing, float)
    mid = (np.asarray(shape, float) - 1) / 2
    a[:3, 3] = np.asarray(centre, float) - a[:3, :3] @ mid
    return a


def phantom_grids(index: int, ct_spacing: float = 1.0) -> dict[str, Grid]:
    """The CT, T2w (sagittal) and T1w (oblique axial) grids of subject ``index``."""
    lps = index % 2 == 1
    ct_dirs = np.diag([-1.0, -1.0, 1.0]) if lps else np.eye(3)
    fov = np.array([180.0, 140.0, 150.0])
    ct_shape = tuple(int(round(f / ct_spacing)) for f in fov)
    ct = Grid(ct_shape, make_affine(ct_dirs, [ct_spacing] * 3, ct_shape, [0.27, -5.31, 5.18]))
    # sagittal T2w: axes A, S, then slices right-to-left (ASL), 2 x 2 x 4 mm
    sag_dirs = np.array([[0, 0, -1], [1, 0, 0], [0, 1, 0]], float)
    t2_shape = (60, 70, 24)
    t2 = Grid(t2_shape, make_affine(sag_dirs, [2.0, 2.0, 4.0], t2_shape, [0.0, -12.0, 2.0]))
    # oblique axial T1w: 12 degrees about left-right, LPS for odd subjects, 2.5 x 2.5 x 4 mm
    ax_dirs = rotation_matrix([1, 0, 0], 12.0 if index % 3 else -8.0) @ (
        np.diag([-1.0, -1.0, 1.0]) if lps else np.eye(3))
    t1_shape = (72, 56, 34)
    t1 = Grid(t1_shape, make_affine(ax_dirs, [2.5, 2.5, 4.0], t1_shape, [0.0, -8.0, 4.0]))
    return {"CT": ct, "T2w": t2, "T1w": t1}


def render(anatomy: Anatomy, grid: Grid, modality: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Image and structure labels of ``anatomy`` on ``grid``."""
    cls = anatomy.classes_xyz(*grid_coordinates(grid))
    values = np.asarray(_INTENSITY[modality], np.float32)
    img = values[cls]
    if modality != "CT":  # smooth multiplicative bias field, as MRI coils give
        g = np.indices(grid.shape, dtype=np.float32)
        sh = np.asarray(grid.shape, np.float32)[:, None, None, None]
        bias = 1.0 + 0.15 * np.sin(np.pi * g / sh).prod(axis=0) - 0.075
        img *= bias
    img += rng.normal(0.0, _NOISE[modality], size=img.shape).astype(np.float32)
    return img, structure_labels(cls)


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
        from .hard import flexion

        anatomy.femur_flex = np.eye(4)
        mri_anatomy.femur_flex = flexion(opts.articulate_deg)
    return anatomy, mri_anatomy, misaligned


def _subject_grids(index: int, opts: PhantomOptions, mri_anatomy: Anatomy) -> dict[str, Grid]:
    """The subject's grids, moved or cut by the hard options (the MRI anatomy's pose follows a moved frame)."""
    grids = phantom_grids(index, opts.ct_spacing)
    if opts.world_offset_mm or opts.mri_fov_mm:
        from . import hard as phantom_hard

        for m in ("T2w", "T1w"):
            if opts.mri_fov_mm:
                grids[m] = phantom_hard.crop_superior(grids[m], opts.mri_fov_mm)
            if opts.world_offset_mm:
                grids[m] = phantom_hard.offset_grid(grids[m], opts.world_offset_mm)
        if opts.world_offset_mm:
            mri_anatomy.pose = phantom_hard.offset_pose(mri_anatomy.pose, opts.world_offset_mm)
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
            from .hard import bias_field

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
    from ..core.atomic import atomic_path

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


# ---------------------------------------------------------------------- CLI
def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser("phantoms", __doc__.splitlines()[0],
                         epilog="example: python -m totalseg_bids.phantoms --out /tmp/phantom --subjects 5 "
                                "--misalign-mm 4 --misalign-deg 3")
    flags.add_out(p, dest="out", help="BIDS dataset folder to write")
    p.add_argument("--totalseg-weights", type=Path, metavar="DIR", default=None,
                   help="instead: train tiny TotalSegmentator weights on phantoms into DIR (use as TOTALSEG_HOME_DIR)")
    p.add_argument("--tasks", nargs="+", default=["total"], metavar="TASK",
                   help="with --totalseg-weights: TotalSegmentator tasks to build (total, total_mr)")
    p.add_argument("--subjects", type=int, default=3)
    p.add_argument("--sessions", type=int, default=0, help="sessions per subject (0: no ses- folders)")
    p.add_argument("--mixed-sessions", action="store_true", help="only odd-numbered subjects get sessions")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--misalign-mm", type=float, default=0.0, help="CT-to-MRI translation of the anatomy")
    p.add_argument("--misalign-deg", type=float, default=0.0, help="CT-to-MRI rotation of the anatomy")
    p.add_argument("--misalign-fraction", type=float, default=1.0,
                   help="share of subjects that are misaligned (default all)")
    p.add_argument("--ct-spacing", type=float, default=1.0, help="CT voxel size in mm")
    p.add_argument("--no-ct-labels", dest="ct_labels", action="store_false",
                   help="do not write the TotalSegmentator-like CT labels")
    p.add_argument("--world-offset-mm", type=float, default=0.0,
                   help="move the MRI world frame by this many mm on every axis (no common origin with the CT)")
    p.add_argument("--mri-bias", type=float, default=0.0, help="extra MRI bias field strength (e.g. 0.6)")
    p.add_argument("--layers", action="store_true",
                   help="add a muscle wall, paraspinal and psoas muscles inside the fat layer")
    p.add_argument("--mri-fov-mm", type=float, default=0.0, metavar="MM",
                   help="cut the MRI grids to their top MM head-foot (lumbar MRI vs whole-pelvis CT)")
    p.add_argument("--articulate-deg", type=float, default=0.0, metavar="DEG",
                   help="add femurs; in the MRI they and the soft tissue are flexed by DEG degrees about the "
                        "hip joints, moving independently of the sacrum and the pelvis")
    p.add_argument("--contrast-ct", action="store_true",
                   help="also write a contrast-enhanced CT (ce-contrast, CTA-like) on the CT grid")
    cli.add_naming_arg(p)
    p.add_argument("--layout", default=None, metavar="NAME",
                   help="write the phantoms as a public dataset ships them instead of BIDS: "
                        f"{', '.join(LAYOUTS)}")
    return p


def _run(args: argparse.Namespace) -> int:
    if args.totalseg_weights is not None:
        from .tiny_totalseg import build, is_built

        status = "skipped" if is_built(args.totalseg_weights, args.tasks) else "written"
        record = build(args.totalseg_weights, args.tasks)
        cli.emit("phantoms", [{"status": status, "path": args.totalseg_weights, "kind": "totalseg_weights",
                               "description": record["description"], "tasks": record["tasks"]}])
        return 0
    if args.out is None:
        raise UsageError("--out is required (or --totalseg-weights DIR)", None, "e.g. --out /tmp/phantom")
    if args.layout:
        from .layouts import write_layout

        root = write_layout(args.layout, args.out, args.subjects, args.seed)
        cli.emit("phantoms", [{"status": "written", "path": root, "kind": "layout", "layout": args.layout,
                               "subjects": args.subjects}])
        return 0
    opts = PhantomOptions(subjects=args.subjects, sessions=args.sessions, mixed_sessions=args.mixed_sessions,
                          seed=args.seed, misalign_mm=args.misalign_mm, misalign_deg=args.misalign_deg,
                          misalign_fraction=args.misalign_fraction, ct_spacing=args.ct_spacing,
                          ct_labels=args.ct_labels, contrast_ct=args.contrast_ct, naming=args.naming,
                          world_offset_mm=args.world_offset_mm, mri_bias=args.mri_bias, layers=args.layers,
                          mri_fov_mm=args.mri_fov_mm, articulate_deg=args.articulate_deg)
    root = generate(args.out, opts)
    cli.emit("phantoms", [{"status": "written", "path": root, "kind": "dataset", "subjects": opts.subjects,
                           "sessions": opts.sessions}])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)


if __name__ == "__main__":
    raise SystemExit(main())
