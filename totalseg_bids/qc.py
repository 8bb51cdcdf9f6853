"""Visual quality control: a static, keyboard-driven HTML report of label overlays.

``python -m totalseg_bids.qc --labels LAB [LAB ...] --qc DIR`` (images found from
the label names), ``--images IMG ... --labels LAB ...`` (paired by position) or
``--config CONFIG.json --qc DIR``; the ``register`` and ``predict`` stages call
:func:`add_entry` for every image they process.

Why it is built this way:

* People check transferred and predicted masks by eye, the way the
  spinalcordtoolbox QC report taught them: one entry per image, paged with the
  keyboard, marked pass / fail / artifact, marks exported as TSV/JSON.
* Every entry is a JSON record plus PNGs in ``<qc>/entries/``; ``index.html``
  is rebuilt from *all* records under a file lock, so parallel jobs (a process
  pool, several SLURM jobs, register and predict at once) can add entries
  without losing each other's. Re-adding an entry replaces it (stable ids).
* The report opens from the file system (``file://``): no server, no network;
  the records are inlined in the page, the script and style sheet are local.
* QC must never stop a pipeline: unreadable files, a missing label or a label
  on another grid become *flagged* entries that say why.

Display convention (documented in the report next to every view): images are
brought onto an axis-aligned RAS grid through their affines whatever their
storage orientation (sagittal ASL, oblique, LPS...), with square pixels.
Sagittal tiles show superior up and anterior on the left (the ITK-SNAP /
FSLeyes view SCT users know), ordered from the patient's right to left. Axial
tiles use the radiological convention (patient's right on the viewer's left,
anterior up), ordered from superior to inferior. CT is shown with a bone
window (W 1500 / L 300 HU), MRI with a 1-99 percentile window of the shown
voxels.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import logging
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .core import cli
from .core.atomic import TMP_PREFIX, atomic_path, atomic_write_json, atomic_write_text, file_lock
from .core.errors import InputError, OutputError, TotalsegBidsError, UsageError
from .core.nifti import Grid, apply_affine

log = logging.getLogger(__name__)

SCHEMA = "totalseg_bids.qc/1"
#: CT display window (width, level) in HU: a bone window, since the labels are bones.
CT_WINDOW = (1500.0, 300.0)
#: MRI display window: these percentiles of the displayed voxels.
MRI_PERCENTILES = (1.0, 99.0)
N_SAGITTAL = 5
N_AXIAL = 10
AXIAL_COLUMNS = 5
#: Longest side of one mosaic tile in pixels (sets the display spacing).
TILE_PX = 192
MARGIN_MM = 12.0
MARGIN_FRACTION = 0.15
FILL_ALPHA = 0.4
#: Label colours by value (value 1 first), distinguishable on grey.
PALETTE = ((255, 64, 48), (48, 200, 80), (40, 120, 255), (255, 200, 0), (190, 80, 230),
           (255, 140, 0), (80, 210, 250), (255, 60, 140))
#: Contour colour of the comparison (CT) label on registered MRI entries.
COMPARE_RGB = (0, 255, 255)
MARKS = ("pass", "fail", "artifact")
ASSETS = ("report.js", "report.css")
ENTRIES_DIR = "entries"


# =============================================================== pure helpers
def is_ct_name(path: str | Path | None) -> bool:
    """True when a file name carries the CT suffix (``_CT`` / ``_ct``, docs/conventions.md section 1).

    >>> is_ct_name("sub-01_ses-1_CT.nii.gz"), is_ct_name("sub-01_ct.nii")
    (True, True)
    >>> is_ct_name("sub-01_T2w.nii.gz"), is_ct_name("sub-01_acq-ct_T1w.nii.gz"), is_ct_name(None)
    (False, False, False)
    """
    if path is None:
        return False
    name = Path(path).name
    stem = re.sub(r"\.nii(\.gz)?$", "", name)
    return re.search(r"(^|_)(CT|ct)$", stem) is not None


def looks_like_ct(values: np.ndarray) -> bool:
    """Hounsfield-unit heuristic for images not named ``_CT``: air at about -1000.

    MRI magnitudes are non-negative; a CT has a body surrounded by air, so
    its low percentile sits far below zero.

    >>> looks_like_ct(np.array([-1000.0] * 10 + [40.0] * 80 + [500.0] * 10))
    True
    >>> looks_like_ct(np.array([0.0] * 10 + [300.0] * 90))
    False
    """
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    return bool(v.size) and float(np.percentile(v, 1)) <= -500.0


def window_bounds(values: np.ndarray, ct: bool, ct_window: tuple[float, float] = CT_WINDOW,
                  percentiles: tuple[float, float] = MRI_PERCENTILES) -> tuple[float, float]:
    """Display range: the CT window (width, level) or MRI percentiles of ``values``.

    NaN (outside the field of view) is ignored; a flat image gets a unit range
    so it shows as uniform grey rather than dividing by zero.

    >>> window_bounds(np.zeros(3), ct=True)
    (-450.0, 1050.0)
    >>> window_bounds(np.arange(101.0), ct=False)
    (1.0, 99.0)
    >>> window_bounds(np.full(4, 7.0), ct=False)
    (7.0, 8.0)
    """
    if ct:
        width, level = ct_window
        return float(level - width / 2), float(level + width / 2)
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if not v.size:
        return 0.0, 1.0
    lo, hi = (float(x) for x in np.percentile(v, percentiles))
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


def to_uint8(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map ``[lo, hi]`` to 0..255 (clipped); NaN (outside the image) becomes black.

    >>> to_uint8(np.array([-1.0, 0.0, 0.5, 1.0, 2.0, np.nan]), 0.0, 1.0).tolist()
    [0, 0, 128, 255, 255, 0]
    """
    v = (np.asarray(values, dtype=np.float32) - lo) / max(hi - lo, 1e-12)
    v = np.nan_to_num(v, nan=0.0)
    return np.clip(np.rint(v * 255.0), 0, 255).astype(np.uint8)


def slice_positions(lo: float, hi: float, n: int, inset: float = 0.15) -> list[float]:
    """``n`` evenly spaced positions inside ``[lo, hi]``, ``inset`` (fraction) from its ends.

    The ends of a structure are thin caps; slices through them show little.
    A range too thin for distinct slices gives one slice through its middle.

    >>> slice_positions(0.0, 100.0, 5, inset=0.1)
    [10.0, 30.0, 50.0, 70.0, 90.0]
    >>> slice_positions(4.0, 4.0, 5)
    [4.0]
    """
    a, b = lo + inset * (hi - lo), hi - inset * (hi - lo)
    if n <= 1 or b - a < 1e-3:
        return [float((lo + hi) / 2)]
    return [float(x) for x in np.linspace(a, b, n)]


def foreground_box(data: np.ndarray) -> tuple[slice, slice, slice] | None:
    """Index bounding box of the non-zero voxels (None when empty).

    Axis projections are several times faster than ``np.nonzero`` on a CT-sized map.

    >>> foreground_box(np.pad(np.ones((2, 1, 1)), 1))
    (slice(1, 3, None), slice(1, 2, None), slice(1, 2, None))
    """
    m = np.asarray(data) != 0
    out = []
    for axis in range(m.ndim):
        proj = np.flatnonzero(m.any(axis=tuple(a for a in range(m.ndim) if a != axis)))
        if not proj.size:
            return None
        out.append(slice(int(proj[0]), int(proj[-1]) + 1))
    return tuple(out)


def foreground_world_bounds(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """World bounding box (voxel edges) of the non-zero voxels, or None when empty.

    >>> lo, hi = foreground_world_bounds(np.pad(np.ones((1, 1, 1)), 1), np.diag([2., 2., 2., 1.]))
    >>> lo.tolist(), hi.tolist()
    ([1.0, 1.0, 1.0], [3.0, 3.0, 3.0])
    """
    box = foreground_box(data)
    if box is None:
        return None
    lo = [b.start - 0.5 for b in box]
    hi = [b.stop - 0.5 for b in box]
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    world = apply_affine(np.asarray(affine, float), corners)
    return world.min(axis=0), world.max(axis=0)


def crop_bounds(structure: tuple[np.ndarray, np.ndarray] | None, fov: tuple[np.ndarray, np.ndarray],
                margin_mm: float = MARGIN_MM, margin_fraction: float = MARGIN_FRACTION
                ) -> tuple[np.ndarray, np.ndarray, bool]:
    """The world box to display: the structure plus a margin, inside the field of view.

    Returns ``(low, high, inside)``; ``inside`` is False when the structure
    lies outside the image (then the whole field of view is shown).

    >>> lo, hi, ok = crop_bounds((np.zeros(3), np.full(3, 10.0)), (np.full(3, -50.0), np.full(3, 50.0)),
    ...                          margin_mm=5, margin_fraction=0)
    >>> lo.tolist(), hi.tolist(), ok
    ([-5.0, -5.0, -5.0], [15.0, 15.0, 15.0], True)
    """
    fmin, fmax = (np.asarray(b, float) for b in fov)
    if structure is None:
        return fmin, fmax, True
    smin, smax = (np.asarray(b, float) for b in structure)
    margin = np.maximum(margin_mm, margin_fraction * (smax - smin))
    lo, hi = np.maximum(smin - margin, fmin), np.minimum(smax + margin, fmax)
    if np.any(hi - lo <= 0):
        return fmin, fmax, False
    return lo, hi, True


def orient_tile(plane: np.ndarray) -> np.ndarray:
    """A plane indexed ``[u, v]`` along increasing RAS axes, as displayed rows/columns.

    Sagittal planes are ``[y, z]``: rows go superior to inferior and columns
    anterior to posterior (anterior on the left). Axial planes are ``[x, y]``:
    rows anterior to posterior, columns from the patient's right (+x) to left
    (radiological).

    >>> orient_tile(np.array([[1, 2], [3, 4]]))  # u=0..1, v=0..1
    array([[4, 2],
           [3, 1]])
    """
    return np.asarray(plane).T[::-1, ::-1]


def mosaic(tiles: Sequence[np.ndarray], columns: int, gap: int = 2, fill: int = 0
           ) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Tiles (same shape, 2D or RGB) laid out row by row; returns the mosaic and
    each tile's ``(row, col, height, width)`` box.

    >>> m, boxes = mosaic([np.ones((2, 3), np.uint8)] * 3, columns=2, gap=1)
    >>> m.shape, boxes
    ((5, 7), [(0, 0, 2, 3), (0, 4, 2, 3), (3, 0, 2, 3)])
    """
    if not tiles:
        raise ValueError("no tiles")
    h, w = tiles[0].shape[:2]
    columns = max(1, min(columns, len(tiles)))
    rows = -(-len(tiles) // columns)
    shape = (rows * h + (rows - 1) * gap, columns * w + (columns - 1) * gap) + tiles[0].shape[2:]
    out = np.full(shape, fill, dtype=tiles[0].dtype)
    boxes = []
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        y, x = r * (h + gap), c * (w + gap)
        out[y:y + h, x:x + w] = tile
        boxes.append((y, x, h, w))
    return out, boxes


def contour(label: np.ndarray) -> np.ndarray:
    """Boundary pixels of the non-zero regions (4-neighbourhood), per label value.

    >>> contour(np.pad(np.ones((3, 3), int), 1)).astype(int)[1:4, 1:4]
    array([[1, 1, 1],
           [1, 0, 1],
           [1, 1, 1]])
    """
    lab = np.asarray(label)
    p = np.pad(lab, 1, mode="edge")
    c = p[1:-1, 1:-1]
    edge = (p[:-2, 1:-1] != c) | (p[2:, 1:-1] != c) | (p[1:-1, :-2] != c) | (p[1:-1, 2:] != c)
    return edge & (c > 0)


def label_colors(label: np.ndarray) -> np.ndarray:
    """RGB colour per pixel from :data:`PALETTE` (value 1 first, cycling).

    >>> label_colors(np.array([[0, 1, 9]])).tolist()
    [[[0, 0, 0], [255, 64, 48], [255, 64, 48]]]
    """
    lab = np.asarray(label).astype(np.int64)
    pal = np.asarray(PALETTE, np.uint8)
    rgb = pal[(np.maximum(lab, 1) - 1) % len(pal)]
    rgb[lab == 0] = 0
    return rgb


def overlay_rgb(gray: np.ndarray, label: np.ndarray | None = None, compare: np.ndarray | None = None,
                alpha: float = FILL_ALPHA) -> np.ndarray:
    """Grey image with the label filled (``alpha``) and outlined in its colours, and
    the comparison label outlined in cyan (so misalignment shows as an offset).

    >>> rgb = overlay_rgb(np.full((1, 2), 100, np.uint8), np.array([[0, 1]]))
    >>> rgb.tolist()
    [[[100, 100, 100], [255, 64, 48]]]
    """
    out = np.repeat(np.asarray(gray, np.float32)[..., None], 3, axis=2)
    if label is not None and np.any(label):
        colors = label_colors(label).astype(np.float32)
        m = np.asarray(label) > 0
        out[m] = (1 - alpha) * out[m] + alpha * colors[m]
        e = contour(label)
        out[e] = colors[e]
    if compare is not None and np.any(compare):
        out[contour(np.asarray(compare) > 0)] = COMPARE_RGB
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def label_figures(data: np.ndarray, affine: np.ndarray, max_classes: int = 64) -> dict[str, Any]:
    """Volume (ml), connected components (26-connectivity), emptiness, FOV-edge
    contact and per-class volumes of a label map on its own grid.

    Components are counted per class (cc3d labels each value separately), so
    a clean multi-class map has one component per class.

    >>> f = label_figures(np.pad(np.ones((2, 2, 2), np.uint8), 1), np.eye(4))
    >>> f["voxels"], f["volume_ml"], f["components"], f["empty"], f["touches_edge"]
    (8, 0.008, 1, False, False)
    """
    import cc3d

    from .core.nifti import voxel_volume_ml

    data = np.asarray(data)
    vox_ml = voxel_volume_ml(affine)
    box = foreground_box(data)
    crop = np.ascontiguousarray(data[box]) if box is not None else data[:0]
    voxels = int(np.count_nonzero(crop))
    edge = box is not None and any(b.start == 0 or b.stop == n for b, n in zip(box, data.shape))
    out: dict[str, Any] = {"voxels": voxels, "volume_ml": round(voxels * vox_ml, 4), "components": 0,
                           "empty": voxels == 0, "touches_edge": bool(edge), "classes": {}}
    if voxels:
        _, n = cc3d.connected_components(crop, connectivity=26, return_N=True)
        out["components"] = int(n)
        values, counts = np.unique(crop[crop > 0], return_counts=True)
        out["classes"] = {str(int(v)): round(int(c) * vox_ml, 4)
                          for v, c in list(zip(values, counts))[:max_classes]}
    return out


def _jsonable(obj: Any) -> Any:
    """Stage metadata made JSON-safe (numpy scalars, paths, tuples, NaN)."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    return str(obj)


def script_json(data: Any) -> str:
    """JSON safe to inline inside ``<script type="application/json">``.

    >>> script_json({"a": "</script>"})
    '{"a": "\\\\u003c/script>"}'
    """
    return json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")


def entry_stem(path: str | Path | None) -> str:
    """A file name without its NIfTI extension, reduced to safe characters.

    >>> entry_stem("/d/sub-01_T2w_label-sacrum_seg.nii.gz")
    'sub-01_T2w_label-sacrum_seg'
    >>> entry_stem("my image (1).nii")
    'my_image_1'
    """
    name = re.sub(r"\.nii(\.gz)?$", "", Path(str(path)).name) if path else "entry"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_.") or "entry"


# ======================================================== views (per entry)
@dataclass
class View:
    """One mosaic: the windowed background, the label(s) on the same pixels."""

    name: str
    image: np.ndarray
    label: np.ndarray | None
    compare: np.ndarray | None
    positions_mm: list[float]
    axis: str
    boxes: list[tuple[int, int, int, int]]
    spacing_mm: float
    start: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def overlay(self) -> np.ndarray:
        return overlay_rgb(self.image, self.label, self.compare)

    def world(self, tile: int, row: float, col: float) -> np.ndarray:
        """World (RAS mm) position of a pixel of tile ``tile``: undoes :func:`orient_tile`,
        so tests (and users) can check where a structure was drawn."""
        top, left, h, w = self.boxes[tile]
        u = (w - 1 - (col - left)) * self.spacing_mm
        v = (h - 1 - (row - top)) * self.spacing_mm
        x0, y0, z0 = self.start
        if self.axis == "x":  # sagittal tile [z desc, y desc]
            return np.array([self.positions_mm[tile], y0 + u, z0 + v])
        return np.array([x0 + u, y0 + v, self.positions_mm[tile]])  # axial tile [y desc, x desc]


@dataclass
class Views:
    """Sagittal and axial mosaics of one entry, and how they were windowed."""

    sagittal: View
    axial: View
    window: dict[str, Any]
    inside_fov: bool = True
    crop_mm: tuple[list[float], list[float]] = field(default_factory=lambda: ([], []))


def _stack_grids(lo: np.ndarray, hi: np.ndarray, spacing: float, xs: Sequence[float],
                 zs: Sequence[float]) -> tuple[Grid, Grid]:
    """Axis-aligned RAS grids holding the sagittal slices (at ``xs``, descending)
    and the axial slices (at ``zs``, descending), with square in-plane pixels."""
    n = np.maximum(np.ceil((hi - lo) / spacing).astype(int), 1)
    start = lo + spacing / 2
    dx = xs[0] - xs[1] if len(xs) > 1 else 1.0
    dz = zs[0] - zs[1] if len(zs) > 1 else 1.0
    sag = np.diag([-dx, spacing, spacing, 1.0])
    sag[:3, 3] = [xs[0], start[1], start[2]]
    ax = np.diag([spacing, spacing, -dz, 1.0])
    ax[:3, 3] = [start[0], start[1], zs[0]]
    return Grid((len(xs), int(n[1]), int(n[2])), sag), Grid((int(n[0]), int(n[1]), len(zs)), ax)


def render_views(image, label=None, compare=None, ct: bool | None = None, tile_px: int = TILE_PX,
                 n_sagittal: int = N_SAGITTAL, n_axial: int = N_AXIAL) -> Views:
    """Sagittal and axial mosaics of ``image`` (a :class:`~totalseg_bids.core.nifti.Volume`)
    cropped around ``label`` (any grid: resampled through the affines), with an
    optional ``compare`` label (drawn as a cyan contour).

    Only the shown planes are resampled (two thin grids), which keeps an
    entry of a 1 mm CT well under a second.
    """
    from .core.nifti import resample_image, resample_label

    labels = [v for v in (label, compare) if v is not None]
    boxes = [b for b in (foreground_world_bounds(v.data, v.affine) for v in labels) if b is not None]
    structure = (np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0)) if boxes else None
    lo, hi, inside = crop_bounds(structure, image.grid.world_bounds())
    extent = hi - lo
    # square pixels, each view sized to its own plane (a wide pelvis must not shrink the sagittal tiles)
    sag_spacing = max(float(max(extent[1], extent[2])) / tile_px, 0.2)
    ax_spacing = max(float(max(extent[0], extent[1])) / tile_px, 0.2)
    ref = (structure[0], structure[1]) if structure is not None and inside else (lo, hi)
    inset_s, inset_a = (0.2, 0.1) if structure is not None and inside else (0.3, 0.2)
    xs = slice_positions(float(ref[0][0]), float(ref[1][0]), n_sagittal, inset_s)[::-1]
    zs = slice_positions(float(ref[0][2]), float(ref[1][2]), n_axial, inset_a)[::-1]
    sag_grid = _stack_grids(lo, hi, sag_spacing, xs, zs)[0]
    ax_grid = _stack_grids(lo, hi, ax_spacing, xs, zs)[1]
    stacks = {}
    for name, grid in (("sagittal", sag_grid), ("axial", ax_grid)):
        img = resample_image(image.data, image.affine, grid, order=1, cval=np.nan)
        labs = [resample_label(v.data, v.affine, grid) if v is not None else None for v in (label, compare)]
        stacks[name] = (img, *labs)
    if ct is None:
        ct = is_ct_name(image.path) or looks_like_ct(image.data[::3, ::3, ::3])
    shown = np.concatenate([stacks["sagittal"][0].ravel(), stacks["axial"][0].ravel()])
    wlo, whi = window_bounds(shown, ct)
    window = {"modality": "CT" if ct else "MR", "low": round(wlo, 3), "high": round(whi, 3),
              "kind": (f"CT W{CT_WINDOW[0]:g}/L{CT_WINDOW[1]:g}" if ct
                       else f"percentile {MRI_PERCENTILES[0]:g}-{MRI_PERCENTILES[1]:g}")}

    def build(name: str, take, count: int, columns: int, positions: list[float], axis: str,
              spacing: float) -> View:
        img, lab, cmp_ = stacks[name]
        parts = []
        for arr, fill in ((to_uint8(img, wlo, whi), 0), (lab, 0), (cmp_, 0)):
            if arr is None:
                parts.append(None)
                continue
            tiles = [orient_tile(take(arr, i)) for i in range(count)]
            parts.append(mosaic(tiles, columns, fill=fill))
        start = tuple(float(v) for v in lo + spacing / 2)
        return View(name, parts[0][0], parts[1][0] if parts[1] else None, parts[2][0] if parts[2] else None,
                    [float(p) for p in positions], axis, parts[0][1], spacing, start)

    sag = build("sagittal", lambda a, i: a[i], len(xs), len(xs), xs, "x", sag_spacing)
    ax = build("axial", lambda a, i: a[:, :, i], len(zs), AXIAL_COLUMNS, zs, "z", ax_spacing)
    return Views(sag, ax, window, inside, (lo.round(2).tolist(), hi.round(2).tolist()))


# ============================================================ entry records
def _flag(level: str, code: str, message: str) -> dict[str, str]:
    return {"level": level, "code": code, "message": message}


def _short(exc: BaseException) -> str:
    if isinstance(exc, TotalsegBidsError):
        return exc.problem
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"


def _bids_info(*paths: str | Path | None) -> dict[str, Any]:
    from .core.bids import BidsName

    for p in paths:
        name = BidsName.try_parse(p) if p else None
        if name is not None:
            return {"subject": name.subject, "session": name.session, "suffix": name.suffix,
                    "structure": name.get("label")}
    return {"subject": None, "session": None, "suffix": None, "structure": None}


def _orientation(affine: np.ndarray) -> str:
    from .core.nifti import axcodes

    try:
        return axcodes(affine)
    except Exception:  # noqa: BLE001 - a degenerate affine has no orientation
        return "?"


def evaluate_entry(image, label, compare_label=None) -> tuple[dict[str, Any], Views | None]:
    """Load, measure and render one entry; problems become flags, never exceptions.

    Returns the record's data part (figures, flags, geometry) and the views
    (None when there is no readable image).
    """
    from .core.nifti import dice, grid_mismatch, load_image, load_label, resample_label

    flags: list[dict[str, str]] = []
    info: dict[str, Any] = {"figures": {}, "geometry": {}}
    img = lab = cmp_vol = None
    if image is None:
        flags.append(_flag("error", "missing_image", "no image for this label"))
    else:
        try:
            img = load_image(image)
            info["geometry"]["image"] = {"orientation": _orientation(img.affine), "shape": list(img.data.shape),
                                         "spacing_mm": [round(float(s), 4) for s in img.grid.spacing]}
        except Exception as exc:  # noqa: BLE001 - QC reports bad data, it does not stop on it
            code = "missing_image" if isinstance(exc, FileNotFoundError) else "image_unreadable"
            flags.append(_flag("error", code, f"image: {_short(exc)}"))
    if label is None:
        flags.append(_flag("error", "missing_label", "no label given"))
    else:
        try:
            lab = load_label(label)
            info["geometry"]["label"] = {"orientation": _orientation(lab.affine), "shape": list(lab.data.shape),
                                         "spacing_mm": [round(float(s), 4) for s in lab.grid.spacing]}
        except Exception as exc:  # noqa: BLE001
            code = "missing_label" if isinstance(exc, FileNotFoundError) else "label_unreadable"
            flags.append(_flag("error", code, f"label: {_short(exc)}"))
    if compare_label is not None:
        try:
            cmp_vol = load_label(compare_label)
        except Exception as exc:  # noqa: BLE001
            flags.append(_flag("warning", "compare_unreadable", f"comparison label: {_short(exc)}"))
    figures = info["figures"]
    if lab is not None:
        figures.update(label_figures(lab.data, lab.affine))
        if figures["empty"]:
            flags.append(_flag("error", "empty_label", "label is empty"))
        if figures["touches_edge"]:
            flags.append(_flag("warning", "touches_edge", "label touches the edge of its field of view"))
        if figures["components"] > max(1, len(figures["classes"])):
            flags.append(_flag("warning", "components",
                               f"{figures['components']} connected components "
                               f"(expected {max(1, len(figures['classes']))})"))
    if lab is not None and img is not None:
        why = grid_mismatch(img.grid, lab.grid)
        figures["grid_match"] = why is None
        figures["grid_mismatch"] = why
        if why:
            flags.append(_flag("error", "grid_mismatch", f"label and image grids differ: {why} "
                                                         "(label shown resampled through the headers)"))
    cmp_on_image = None
    if cmp_vol is not None and img is not None:
        from .core.nifti import Volume

        # header resampling onto the MRI grid: misalignment stays visible, as the issue asks
        cmp_on_image = Volume(resample_label(cmp_vol.data, cmp_vol.affine, img.grid), img.affine)
        figures["compare_volume_ml"] = label_figures(cmp_on_image.data, img.affine)["volume_ml"]
        if lab is not None and figures.get("grid_match"):
            figures["dice_vs_compare"] = round(dice(lab.data, cmp_on_image.data), 4)
            a, b = np.argwhere(lab.data > 0), np.argwhere(cmp_on_image.data > 0)
            if len(a) and len(b):
                ca, cb = apply_affine(img.affine, np.stack([a.mean(axis=0), b.mean(axis=0)]))
                figures["centroid_shift_mm"] = round(float(np.linalg.norm(ca - cb)), 2)
    views = None
    if img is not None:
        try:
            views = render_views(img, lab, cmp_on_image)
            if not views.inside_fov:
                flags.append(_flag("error", "outside_fov", "label lies outside the image field of view"))
        except Exception as exc:  # noqa: BLE001 - a rendering bug must not stop the pipeline
            log.debug("QC rendering failed", exc_info=True)
            flags.append(_flag("error", "render_failed", f"could not render: {_short(exc)}"))
    info["flags"] = flags
    return info, views


def _entry_key(image, label) -> str:
    """What identifies an entry: the label's absolute path (or the image's)."""
    target = label if label is not None else image
    return str(Path(str(target)).expanduser().absolute()) if target is not None else "?"


def _choose_id(entries: Path, stem: str, key: str) -> str:
    """``stem``, unless another file with the same name (another dataset) holds it."""
    candidate = entries / f"{stem}.json"
    if candidate.exists():
        try:
            other = json.loads(candidate.read_text(encoding="utf-8")).get("key")
        except (OSError, ValueError):
            other = key
        if other != key:
            return f"{stem}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"
    return stem


def _save_png(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG", compress_level=4)


def _str_or_none(p) -> str | None:
    return str(Path(str(p)).expanduser().absolute()) if p is not None else None


def add_entry(qc_dir, image, label, stage="label", compare_label=None, meta=None, title=None) -> Path:
    """Add (or replace) one entry and rebuild the report; return the record path.

    ``image`` is the background, ``label`` the mask to check (a missing or
    unreadable one is flagged, not raised), ``compare_label`` (register) the
    source CT label shown as a cyan contour after header resampling onto the
    image grid, ``meta`` extra figures from the stage (e.g. ``{"dice": 0.93}``).
    Bad data never raises; an unwritable ``qc_dir`` raises OutputError.
    """
    return _add_entry(qc_dir, image, label, stage, compare_label, meta, title, rebuild=True)


def _add_entry(qc_dir, image, label, stage="label", compare_label=None, meta=None, title=None,
               rebuild: bool = True) -> Path:
    """:func:`add_entry`; ``rebuild=False`` lets a batch rebuild the page once at the end
    instead of once per entry (quadratic in the number of records)."""
    t0 = time.perf_counter()
    qc_dir = Path(qc_dir)
    info, views = evaluate_entry(image, label, compare_label)
    flags = info["flags"]
    status = ("error" if any(f["level"] == "error" for f in flags)
              else "warning" if flags else "ok")
    key = _entry_key(image, label)
    stem = entry_stem(label if label is not None else image)
    record: dict[str, Any] = {
        "schema": SCHEMA, "id": None, "key": key,
        "title": title or stem, "stage": stage, "status": status,
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "image": _str_or_none(image), "label": _str_or_none(label), "compare_label": _str_or_none(compare_label),
        **_bids_info(label, image),
        "figures": _jsonable(info["figures"]), "geometry": info["geometry"], "flags": flags,
        "meta": _jsonable(meta or {}), "views": {}, "window": views.window if views else None,
    }
    entries = qc_dir / ENTRIES_DIR
    with file_lock(qc_dir / ".lock"):
        entry_id = _choose_id(entries, stem, key)
        record["id"] = entry_id
        if views is not None:
            for view in (views.sagittal, views.axial):
                short = {"sagittal": "sag", "axial": "ax"}[view.name]
                plain, over = f"{entry_id}_{short}.png", f"{entry_id}_{short}_overlay.png"
                _save_png(view.image, entries / plain)
                _save_png(view.overlay(), entries / over)
                record["views"][view.name] = {
                    "image": f"{ENTRIES_DIR}/{plain}", "overlay": f"{ENTRIES_DIR}/{over}",
                    "width": int(view.image.shape[1]), "height": int(view.image.shape[0]),
                    "positions_mm": [round(p, 2) for p in view.positions_mm], "axis": view.axis,
                    "spacing_mm": round(view.spacing_mm, 4), "crop_mm": views.crop_mm,
                    "has_label": view.label is not None and bool(np.any(view.label)),
                    "has_compare": view.compare is not None}
        else:  # a re-added entry that can no longer be rendered must not show stale pictures
            for old in entries.glob(f"{entry_id}_*.png"):
                old.unlink(missing_ok=True)
        record["seconds"] = round(time.perf_counter() - t0, 3)
        path = entries / f"{entry_id}.json"
        atomic_write_json(path, record)
        if rebuild:
            _build_report_locked(qc_dir)
    return path


# =================================================================== report
def load_records(qc_dir: str | Path) -> list[dict[str, Any]]:
    """All entry records of a QC folder, sorted by subject, session, stage, id."""
    records = []
    for p in sorted((Path(qc_dir) / ENTRIES_DIR).glob("*.json")):
        if p.name.startswith(TMP_PREFIX):
            continue
        try:
            rec = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("%s: skipped unreadable QC record (%s)", p, exc)
            continue
        if isinstance(rec, dict) and rec.get("schema") == SCHEMA:
            records.append(rec)
    records.sort(key=lambda r: (r.get("subject") or "", r.get("session") or "", r.get("stage") or "",
                                r.get("id") or ""))
    return records


def _report_id(qc_dir: Path) -> str:
    """A random id kept in the QC folder: it keys the marks in the browser's
    localStorage (shared by every file:// page), and survives moving the folder."""
    path = qc_dir / ".report-id"
    if path.exists():
        text = path.read_text(encoding="utf-8").strip()
        if text:
            return text
    rid = uuid.uuid4().hex[:16]
    atomic_write_text(path, rid + "\n")
    return rid


def _asset_dir() -> Path:
    return Path(__file__).resolve().parent / "qc_assets"


def _copy_assets(qc_dir: Path) -> str:
    """Copy report.js/.css next to the page; return a version string for cache busting."""
    digest = hashlib.sha1()
    for name in ASSETS:
        src = _asset_dir() / name
        if not src.exists():
            raise OutputError("QC report asset missing from the installation", src,
                              "reinstall totalseg_bids (package data qc_assets/*)")
        data = src.read_bytes()
        digest.update(data)
        dst = qc_dir / "assets" / name
        if not dst.exists() or dst.read_bytes() != data:
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)
    return digest.hexdigest()[:10]


def _status_badge(rec: Mapping[str, Any]) -> str:
    return {"error": "flagged", "warning": "warning"}.get(rec.get("status", ""), "ok")


def report_html(records: Sequence[Mapping[str, Any]], report_id: str, version: str = "",
                title: str = "totalseg_bids QC") -> str:
    """The report page: a server-rendered entry list (readable without script),
    the records inlined as JSON, and the local script/style sheet.

    >>> page = report_html([], "abc")
    >>> '<span id="entry-count">0</span>' in page and 'src="assets/report.js' in page
    True
    """
    rows = []
    for i, rec in enumerate(records):
        flags = "; ".join(f["message"] for f in rec.get("flags", []))
        rows.append(
            f'<tr class="entry-row status-{html.escape(rec.get("status", "ok"))}" data-index="{i}" '
            f'data-id="{html.escape(str(rec.get("id")))}"><td class="n">{i + 1}</td>'
            f'<td class="name" title="{html.escape(str(rec.get("label") or rec.get("image")))}">'
            f'{html.escape(str(rec.get("title")))}</td><td>{html.escape(str(rec.get("stage")))}</td>'
            f'<td class="badge {_status_badge(rec)}" title="{html.escape(flags)}">{_status_badge(rec)}</td>'
            f'<td class="mark"></td></tr>')
    flagged = sum(1 for r in records if r.get("status") == "error")
    data = {"report_id": report_id, "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
            "marks": list(MARKS), "entries": list(records)}
    v = f"?v={version}" if version else ""
    keys = ("<kbd>&rarr;</kbd>/<kbd>j</kbd> next &middot; <kbd>&larr;</kbd>/<kbd>k</kbd> previous &middot; "
            "<kbd>space</kbd>/<kbd>t</kbd> overlay &middot; <kbd>p</kbd> pass &middot; <kbd>f</kbd> fail "
            "&middot; <kbd>a</kbd> artifact &middot; <kbd>c</kbd> clear &middot; <kbd>n</kbd> next unmarked "
            "&middot; <kbd>e</kbd> export TSV &middot; <kbd>E</kbd> export JSON")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="assets/report.css{v}">
</head>
<body>
<header id="top">
  <h1>{html.escape(title)}</h1>
  <div class="summary"><span id="entry-count">{len(records)}</span> entries &middot;
    <span id="flagged-count">{flagged}</span> flagged &middot; <span id="marked-count">0</span> marked</div>
  <div class="legend" id="legend">{keys}</div>
  <div class="tools">
    <label>show <select id="filter"><option value="all">all</option><option value="flagged">flagged</option>
      <option value="unmarked">unmarked</option><option value="fail">failed</option></select></label>
    <button id="export-tsv" type="button">Export TSV</button>
    <button id="export-json" type="button">Export JSON</button>
    <label class="import">Import marks <input id="import-json" type="file" accept=".json,application/json"></label>
  </div>
</header>
<div id="layout">
  <nav id="entry-list"><table><thead><tr><th>#</th><th>entry</th><th>stage</th><th>status</th><th>mark</th></tr>
  </thead><tbody>
{chr(10).join(rows)}
  </tbody></table></nav>
  <main id="viewer"><p class="empty">{"No entries yet." if not records else "Loading&hellip;"}</p></main>
</div>
<section id="marks">
  <h2>Marks</h2>
  <table id="marks-table"></table>
  <pre id="marks-tsv"></pre>
</section>
<script id="qc-data" type="application/json">{script_json(data)}</script>
<script src="assets/report.js{v}"></script>
</body>
</html>
"""


def _build_report_locked(qc_dir: Path) -> Path:
    version = _copy_assets(qc_dir)
    page = report_html(load_records(qc_dir), _report_id(qc_dir), version)
    index = qc_dir / "index.html"
    atomic_write_text(index, page)
    return index


def build_report(qc_dir: str | Path) -> Path:
    """Rebuild ``<qc_dir>/index.html`` from every entry record (under the lock)."""
    qc_dir = Path(qc_dir)
    with file_lock(qc_dir / ".lock"):
        return _build_report_locked(qc_dir)


# ==================================================================== batch
def _add_item(item: tuple) -> str:
    """One batch entry (module level so a process pool can pickle it)."""
    qc_dir, image, label, stage, compare = item
    return str(_add_entry(qc_dir, image, label, stage=stage, compare_label=compare, rebuild=False))


def add_entries(qc_dir: str | Path, pairs: Sequence[tuple[Any, Any]], stage: str = "label",
                compares: Sequence[Any] | None = None, jobs: int | None = 1) -> Path:
    """Add ``(image, label)`` pairs (process pool for ``jobs`` > 1), then rebuild
    the page once; return the index path. Only unwritable outputs fail."""
    return _add_entries(qc_dir, pairs, stage, compares, jobs)[0]


def _add_entries(qc_dir, pairs, stage, compares, jobs) -> tuple[Path, list[Path]]:
    from .core.parallel import raise_for_failures, run_tasks

    qc_dir = Path(qc_dir)
    compares = list(compares) if compares else [None] * len(pairs)
    items = [(qc_dir, img, lab, stage, cmp_) for (img, lab), cmp_ in zip(pairs, compares)]
    keys = [entry_stem(lab if lab is not None else img) for img, lab in pairs]
    outcomes = run_tasks(_add_item, items, keys=keys, jobs=jobs, desc="qc")
    index = build_report(qc_dir)
    raise_for_failures(outcomes, "QC entries")
    return index, [Path(o.value) for o in outcomes]


#: Flags that mean an input could not be read at all (as opposed to findings about readable data).
UNREADABLE_FLAGS = ("missing_image", "image_unreadable", "missing_label", "label_unreadable")


def raise_for_unreadable(records: Sequence[Path], index: Path) -> None:
    """One error line for inputs QC could not read; they stay flagged in the report.

    Grid mismatches, empty labels and other findings are what the report is
    for and do not fail the command.
    """
    bad = []
    for rec_path in records:
        rec = json.loads(Path(rec_path).read_text(encoding="utf-8"))
        for flag in rec.get("flags", []):
            if flag.get("code") in UNREADABLE_FLAGS:
                which = rec.get("label") if "label" in flag["code"] else rec.get("image")
                bad.append((which or rec.get("image") or rec.get("label"), flag["message"]))
                break
    if bad:
        raise InputError(f"{bad[0][1]} ({len(bad)} of {len(records)} entries could not be read; "
                         f"they are flagged in {index})", bad[0][0], "fix or re-create the file, then re-run")


def check_pairs(pairs: Sequence[tuple[Any, Any]]) -> None:
    """Refuse an image paired with a label of another subject/session (by BIDS name)."""
    from .core.bids import BidsName

    for img, lab in pairs:
        if img is None or lab is None:
            continue
        a, b = BidsName.try_parse(img), BidsName.try_parse(lab)
        if a is not None and b is not None and (a.subject, a.session) != (b.subject, b.session):
            raise InputError(f"label of sub-{b.subject} given for image {Path(img).name}", lab,
                             "give --images and --labels in the same order")


def _pairs_from_labels(labels: Sequence[Path]) -> list[tuple[Path | None, Path]]:
    from .core.bids import image_for_label

    pairs = []
    for lab in labels:
        try:
            pairs.append((image_for_label(lab), lab))
        except TotalsegBidsError as exc:  # flagged as "no image" rather than stopping the batch
            log.warning("%s", exc)
            pairs.append((None, lab))
    return pairs


# ====================================================================== CLI
def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser("qc", __doc__.splitlines()[0], epilog=(
        "examples:\n"
        "  python -m totalseg_bids.qc --labels ds/derivatives/labels/sub-*/anat/*_seg.nii.gz --qc qc\n"
        "  python -m totalseg_bids.qc --images a_T2w.nii.gz --labels a_T2w_label-sacrum_seg.nii.gz --qc qc\n"
        "  python -m totalseg_bids.qc --config config.json --datasets-path /data --qc qc\n"
        "then open qc/index.html in a browser (keys: j/k, space, p/f/a, e)."))
    p.add_argument("--images", nargs="+", type=Path, metavar="IMG",
                   help="background images, paired with --labels by position")
    p.add_argument("--labels", nargs="+", type=Path, metavar="LAB",
                   help="label maps; without --images each label's image is found from its BIDS name")
    p.add_argument("--compare-labels", nargs="+", type=Path, metavar="LAB",
                   help="labels drawn as a cyan contour over each entry (e.g. the CT label for register)")
    p.add_argument("--config", type=Path, help="data config JSON (docs/conventions.md section 4)")
    p.add_argument("--datasets-path", type=Path, help="override the config's DATASETS_PATH")
    p.add_argument("--splits", nargs="+", metavar="SPLIT", help="config splits to show (default all)")
    p.add_argument("--qc", required=True, type=Path, metavar="DIR", help="QC report folder (created)")
    p.add_argument("--stage", default="label", help="stage name shown in the report (default: label)")
    p.add_argument("-j", "--jobs", type=int, default=1, metavar="N", help="parallel workers (default 1)")
    return p


def _run(args: argparse.Namespace) -> int:
    if args.config and (args.images or args.labels):
        raise UsageError("--config cannot be combined with --images/--labels", None, "use one or the other")
    if args.config:
        from .core.config import load_config

        cfg = load_config(args.config, args.datasets_path)
        cases = cfg.cases(args.splits, check_exists=False)
        pairs = [(c.image, c.label) for c in cases]
        if not pairs:
            raise UsageError("the config lists no entries", args.config, "check its splits")
    elif args.labels and args.images:
        if len(args.images) != len(args.labels):
            raise UsageError(f"{len(args.images)} --images but {len(args.labels)} --labels", None,
                             "give one image per label, in the same order (or --labels alone)")
        pairs = list(zip(args.images, args.labels))
    elif args.labels:
        pairs = _pairs_from_labels(args.labels)
    elif args.images:
        pairs = [(img, None) for img in args.images]
    else:
        raise UsageError("nothing to show", None, "give --labels (and --images) or --config")
    if args.compare_labels and len(args.compare_labels) != len(pairs):
        raise UsageError(f"{len(args.compare_labels)} --compare-labels for {len(pairs)} entries", None,
                         "give one comparison label per entry")
    check_pairs(pairs)
    index, records = _add_entries(args.qc, pairs, args.stage, args.compare_labels, args.jobs)
    print(index)
    raise_for_unreadable(records, index)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)


if __name__ == "__main__":
    raise SystemExit(main())
