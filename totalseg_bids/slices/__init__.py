"""Export 2D slices of config images and masks (MMSegmentation or nnU-Net 2D layout).

Seeds 001/002/004 as a library stage. Every volume is first reoriented to the
closest canonical (RAS+) orientation (``nibabel.as_closest_canonical`` logic:
axes are only permuted and flipped, never interpolated), so ``axial`` /
``coronal`` / ``sagittal`` mean the same thing for LPS CTs, sagittal MRIs and
oblique acquisitions. An oblique image is sliced along its *closest* world
axis: its slices are tilted by the obliquity (no resampling; crop/resample
first with ``totalseg_bids.crop --spacing`` when that matters). In-plane
spacing is not equalised either.

2D arrays are shown the usual way: the top row is superior (sagittal,
coronal) or anterior (axial), and columns run along +x / +y of RAS+
(axial/coronal: the subject's left at the left edge of the picture).

Intensities: CT windows (``brain`` W80/L40, ``bone`` W2000/L500, ``soft``
W400/L40 or ``W,L``) or per-volume percentile scaling for MRI, to ``uint8``
for png/tif; ``npy`` keeps raw ``float32``. Masks are ``uint8`` class
indices; when the config's label values are not consecutive (TotalSegmentator
ids such as 25, 27, 77) they are renumbered 1..N in ascending order and
``classes.tsv`` records ``index``, ``name``, ``source_value``.

Layouts:

* ``mmseg``: ``images/{train,val,test}/<name>.<ext>`` and
  ``masks/{train,val,test}/<name>.<ext>``. Several channels (multi-image
  config entries, e.g. CTA + NCCT) are stacked in one file: an RGB PNG for
  2-3 channels (a missing third channel is 0), an ``(H, W, C)`` TIFF or NPY.
* ``nnunet2d``: ``<out>/Dataset<NNN>_<Name>/`` readable by nnU-Net's
  ``NaturalImage2DIO``: PNG only, one grayscale file per channel
  (``<case>_0000.png``, ``_0001``...), ``labelsTr``, ``imagesTs`` (+``labelsTs``),
  ``dataset.json`` (``file_ending: .png``, ``overwrite_image_reader_writer:
  NaturalImage2DIO``) and ``splits_final.json`` holding ``--folds`` cross-validation
  folds drawn by subject, as the 3D conversion draws them (copy it to
  ``nnUNet_preprocessed/Dataset<NNN>_<Name>/``).

Slice names keep the BIDS entities and the slice index
(``sub-01_ses-02_acq-sag_T2w_axial-012``); ``slices.tsv`` maps every file
back to its volume(s), split, axis and index (in the reoriented volume, plus
the source voxel axis and index). Splits come from the config (TRAINING ->
train, VALIDATION -> val, TESTING -> test); a subject listed in two splits is
refused, so slices of one subject never cross splits. When image names clash
across datasets (two datasets with a ``sub-03``), every slice name starts with
its dataset (``ds1_sub-03_T1w_axial-012``), as convert_config_to_nnunet's
case ids do. ``slices_request.json`` records what an export was made from: the
same command again is a no-op; a changed request is refused naming the
difference (``--overwrite`` exports again).

Stdout: one JSON line per export (``status`` written, or skipped when up to
date; ``path`` the manifest ``slices.tsv``; ``cases``; ``slices``).
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core import flags
from ..core import cli
from ..core.atomic import atomic_path, atomic_write_json, atomic_write_text, ensure_writable_dir
from ..core.bids import BidsName, dataset_path, is_binary_label, is_ct_suffix, raw_root_of, split_extension
from ..core.config import SPLIT_NAMES, Case, read_request, request_difference, request_record
from ..core.display import intensity_range, parse_window, to_uint8
from ..core.errors import BatchError, GeometryError, InputError, OutputError, UsageError
from ..nnunet.dataset import dataset_dir, write_dataset_json, write_folds
from ..nnunet.splits import FoldCase, make_folds
from ..core.nifti import grid_mismatch, load_image, load_label, present_values
from ..core.options import normalise_fields, options_from_args, resolve_options

log = logging.getLogger(__name__)

AXES = {"sagittal": 0, "coronal": 1, "axial": 2}
FORMATS = ("png", "tif", "npy")
LAYOUTS = ("mmseg", "nnunet2d")
MANIFEST = "slices.tsv"
#: What the export was made from (cases, options, input sizes/times): a rerun compares it.
REQUEST_FILE = "slices_request.json"
MANIFEST_COLUMNS = ("file", "mask", "split", "subject", "images", "label", "axis", "index",
                    "source_axis", "source_index", "has_label")


# ============================================================ pure functions
def to_ras(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reorient to the closest canonical RAS+ orientation (permute/flip only).

    Returns the array, its new affine and nibabel's orientation array of the
    source (``ornt[i] = (RAS axis of source axis i, flip)``) for mapping back.

    >>> d = np.arange(8).reshape(2, 2, 2)
    >>> r, aff, _ = to_ras(d, np.diag([-1., 1., 1., 1.]))
    >>> r[:, 0, 0].tolist(), float(aff[0, 0])
    ([4, 0], 1.0)
    """
    import nibabel as nib

    ornt = nib.orientations.io_orientation(affine)
    xform = nib.orientations.ornt_transform(ornt, nib.orientations.axcodes2ornt("RAS"))
    out = nib.orientations.apply_orientation(np.asarray(data), xform)
    new_affine = affine @ nib.orientations.inv_ornt_aff(xform, data.shape[:3])
    return out, new_affine, ornt


def source_index(ornt: np.ndarray, shape: Sequence[int], ras_axis: int, index: int) -> tuple[int, int]:
    """The source voxel axis and index of slice ``index`` along RAS axis ``ras_axis``.

    >>> ornt = np.array([[0, -1], [1, 1], [2, 1]])
    >>> source_index(ornt, (10, 4, 4), 0, 2)
    (0, 7)
    """
    for src_axis, (ras, flip) in enumerate(np.asarray(ornt)):
        if int(ras) == ras_axis:
            n = int(shape[src_axis])
            return src_axis, (n - 1 - index) if flip < 0 else index
    raise ValueError("axis not found")


def plane(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    """The 2D picture of slice ``index`` along ``axis`` of a RAS+ volume:
    rows top = superior (or anterior for axial), columns along +x/+y.

    >>> v = np.zeros((2, 3, 4)); v[1, 2, 3] = 1
    >>> plane(v, 2, 3).shape, int(np.argwhere(plane(v, 2, 3))[0][0])
    ((3, 2), 0)
    """
    sl = volume[(slice(None),) * axis + (index,)]  # a view: np.take would copy the volume
    return np.ascontiguousarray(np.flipud(sl.T))


def select_slices(has_label: np.ndarray, only_labelled: bool, empty_fraction: float,
                  rng: np.random.Generator) -> list[int]:
    """Indices to export: all, or the labelled ones plus a seeded share of the empty ones.

    >>> sel = select_slices(np.array([0, 1, 1, 0, 0, 0], bool), True, 0.5, np.random.default_rng(0))
    >>> [i for i in sel if i in (1, 2)], len(sel)
    ([1, 2], 4)
    """
    n = len(has_label)
    if not only_labelled:
        return list(range(n))
    labelled = np.flatnonzero(has_label)
    empty = np.flatnonzero(~np.asarray(has_label, bool))
    k = int(round(float(empty_fraction) * len(empty)))
    chosen = rng.choice(empty, size=min(k, len(empty)), replace=False) if k else np.array([], int)
    return sorted(int(i) for i in np.concatenate([labelled, chosen]))


def class_mapping(values: Sequence[int]) -> dict[int, int]:
    """Source label value -> exported index (identity when already 1..N).

    >>> class_mapping([1, 2]), class_mapping([25, 77, 27])
    ({1: 1, 2: 2}, {25: 1, 27: 2, 77: 3})
    """
    vals = sorted(int(v) for v in set(values) if int(v) != 0)
    return {v: i + 1 for i, v in enumerate(vals)}


def encode_image(array: np.ndarray, fmt: str) -> bytes:
    """Encode a 2D (H, W) or (H, W, C) array as png, tif or npy bytes."""
    buf = io.BytesIO()
    if fmt == "npy":
        np.save(buf, array)
    elif fmt == "tif":
        import tifffile

        tifffile.imwrite(buf, array, photometric="minisblack" if array.ndim == 2 or array.shape[-1] != 3 else "rgb")
    elif fmt == "png":
        from PIL import Image

        if array.ndim == 3 and array.shape[-1] == 2:  # 2 channels: RGB with an empty blue
            array = np.concatenate([array, np.zeros_like(array[..., :1])], axis=-1)
        Image.fromarray(array).save(buf, format="PNG")
    else:
        raise UsageError(f"unknown format {fmt!r}", None, f"use one of {', '.join(FORMATS)}")
    return buf.getvalue()


def slice_stem(image: Path, axis: str, index: int, width: int = 3) -> str:
    """``<image stem>_<axis>-<index>``; the axis name is a BIDS-like key so the
    entities of the image stay parseable.

    >>> slice_stem(Path("sub-01_ses-02_acq-sag_T2w.nii.gz"), "axial", 12)
    'sub-01_ses-02_acq-sag_T2w_axial-012'
    """
    return f"{split_extension(Path(image).name)[0]}_{axis}-{index:0{width}d}"


# ============================================================== per case
@dataclass(frozen=True)
class SlicesOptions:
    """How a config becomes 2D slices: axis, which slices, intensity scaling, file format and layout.

    ``window``: CT windows (names or ``W,L``), one for all channels or one per
    channel; without it each volume is scaled by its ``percentile`` range.
    ``dataset_id``/``dataset_name``: the ``Dataset<NNN>_<Name>`` of ``layout
    nnunet2d``. ``jobs``/``executor``/``scheduler``: how the batch runs.
    """

    axis: str = "axial"
    only_labelled: bool = False
    empty_fraction: float = 0.1
    window: tuple[str, ...] | None = None
    percentile: tuple[float, float] = (1.0, 99.0)
    fmt: str = "png"
    layout: str = "mmseg"
    dataset_id: int = 501
    dataset_name: str = "Slices"
    channels: tuple[str, ...] | None = None
    labels_tsv: Path | None = None
    seed: int = 0
    folds: int | None = None
    datasets_path: str | None = None
    overwrite: bool | str = False
    jobs: int | None = None
    executor: str = "local"
    scheduler: object = None

    def __post_init__(self) -> None:
        normalise_fields(self, tuples=("window", "channels", "percentile"))
        if self.axis not in AXES or self.fmt not in FORMATS or self.layout not in LAYOUTS:
            raise UsageError(f"unknown --axis {self.axis!r}, --format {self.fmt!r} or --layout {self.layout!r}",
                             None, f"use --axis {'|'.join(AXES)}, --format {'|'.join(FORMATS)}, "
                                   f"--layout {'|'.join(LAYOUTS)}")
        if not 0 <= self.empty_fraction <= 1:
            raise UsageError("--empty-fraction must be in [0, 1]", None, "e.g. --empty-fraction 0.1")
        if self.layout == "nnunet2d" and self.fmt != "png":
            raise UsageError("--layout nnunet2d writes PNG", None, "use --format png (or --layout mmseg)")
        if self.layout == "nnunet2d" and not self.dataset_name.isalnum():
            raise UsageError(f"dataset name {self.dataset_name!r} must be letters and digits", None,
                             "e.g. -dname Slices")
        self.windows  # a bad window is a usage error now, not in a worker

    @property
    def windows(self) -> tuple[tuple[float, float], ...] | None:
        """The ``(width, level)`` of each ``window`` (names and ``W,L`` parsed)."""
        if not self.window:
            return None
        return tuple(parse_window(w) if isinstance(w, str) else (float(w[0]), float(w[1])) for w in self.window)


@dataclass(frozen=True)
class SliceJob:
    """What every case of one export shares (picklable: the Dask client stays behind)."""

    options: SlicesOptions
    out: Path
    dataset_dir: Path | None = None
    mapping: dict[int, int] = field(default_factory=dict)

    def window_for(self, channel: int) -> tuple[float, float] | None:
        windows = self.options.windows
        if not windows:
            return None
        return windows[channel] if len(windows) > 1 else windows[0]


@dataclass
class CaseSlices:
    """The slices written for one case (``path``: its first image; ``rows``: its manifest rows)."""

    path: Path
    rows: list[dict]
    status: str = "written"


@dataclass
class SlicesResult:
    """One export: ``path`` is its manifest; ``status`` written, or skipped when already up to date."""

    status: str
    path: Path
    cases: int
    slices: int


@dataclass
class SliceCase:
    split: str
    images: tuple[Path, ...]
    label: Path | None
    subject: str
    dataset: str = ""  # set only when image names clash across datasets: it then leads the slice names

    @property
    def key(self) -> str:
        stem = split_extension(self.images[0].name)[0]
        return f"{self.dataset}_{stem}" if self.dataset else stem


def load_case(case: SliceCase) -> tuple[list[np.ndarray], np.ndarray | None, np.ndarray, tuple[int, ...]]:
    """Load the channels and label in RAS+; check they share one grid."""
    vols = [load_image(p) for p in case.images]
    ref = vols[0].grid
    for v in vols[1:]:
        why = grid_mismatch(v.grid, ref)
        if why:
            raise GeometryError(f"channel not on the grid of {dataset_path(case.images[0])} ({why})", v.path,
                                "resample the channels onto one grid first")
    label = None
    if case.label is not None:
        lab = load_label(case.label)
        why = grid_mismatch(lab.grid, ref)
        if why:
            raise GeometryError(f"label not on its image's grid ({why})", case.label,
                                "bring it onto the image grid first")
        if int(lab.data.max()) > 255:
            raise InputError("more than 255 classes cannot be stored as uint8 masks", case.label,
                             "merge classes or export --format npy of a subset")
        label = to_ras(lab.data, lab.affine)[0]
    ras = [to_ras(v.data, v.affine) for v in vols]
    return [r[0] for r in ras], label, ras[0][2], tuple(vols[0].data.shape)


def label_values(case: SliceCase) -> list[int]:
    """Non-zero values of a case's label (first pass, to build the class mapping)."""
    if case.label is None:
        return []
    return sorted(present_values(load_label(case.label, binary=is_binary_label(case.label)).data) - {0})


def _write(path: Path, payload: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)


def export_case(case: SliceCase, job: SliceJob) -> CaseSlices:
    """Write one case's slices; return its manifest rows."""
    opts = job.options
    channels, label, ornt, src_shape = load_case(case)
    axis = AXES[opts.axis]
    n = channels[0].shape[axis]
    split = SPLIT_NAMES[case.split]
    others = tuple(a for a in range(3) if a != axis)
    has_label = label.any(axis=others) if label is not None else np.zeros(n, bool)
    rng = np.random.default_rng([opts.seed, zlib.crc32(case.key.encode())])
    selected = select_slices(has_label, opts.only_labelled and label is not None, opts.empty_fraction, rng)
    ranges = [intensity_range(c, job.window_for(i), opts.percentile) for i, c in enumerate(channels)]
    lut = np.zeros(256, np.uint8)
    for src, dst in job.mapping.items():
        lut[src] = dst
    width = max(3, len(str(n - 1)))
    rows = []
    for idx in selected:
        pics = [plane(c, axis, idx) for c in channels]
        if opts.fmt != "npy":
            pics = [to_uint8(p, *r) for p, r in zip(pics, ranges)]
        else:
            pics = [p.astype(np.float32) for p in pics]
        mask = lut[plane(label, axis, idx)] if label is not None else None
        stem = slice_stem(Path(case.key), opts.axis, idx, width)
        files: list[Path] = []
        mask_path: Path | None = None
        if opts.layout == "nnunet2d":
            root = job.dataset_dir
            img_dir = "imagesTs" if split == "test" else "imagesTr"
            lab_dir = "labelsTs" if split == "test" else "labelsTr"
            case_id = f"{root.name.split('_', 1)[1]}_{stem}"
            for c, pic in enumerate(pics):
                files.append(root / img_dir / f"{case_id}_{c:04d}.png")
                _write(files[-1], encode_image(pic, "png"))
            if mask is not None:
                mask_path = root / lab_dir / f"{case_id}.png"
                _write(mask_path, encode_image(mask, "png"))
            base = root
        else:
            stack = pics[0] if len(pics) == 1 else np.stack(pics, axis=-1)
            files.append(job.out / "images" / split / f"{stem}.{opts.fmt}")
            _write(files[-1], encode_image(stack, opts.fmt))
            if mask is not None:
                mask_path = job.out / "masks" / split / f"{stem}.{opts.fmt}"
                _write(mask_path, encode_image(mask, opts.fmt))
            base = job.out
        s_axis, s_index = source_index(ornt, src_shape, axis, idx)
        rows.append({
            "file": ";".join(f.relative_to(base).as_posix() for f in files),
            "mask": mask_path.relative_to(base).as_posix() if mask_path else "",
            "split": split, "subject": case.subject,
            "images": ";".join(str(p) for p in case.images),
            "label": str(case.label) if case.label else "",
            "axis": opts.axis, "index": idx, "source_axis": s_axis, "source_index": s_index,
            "has_label": int(has_label[idx]),
        })
    return CaseSlices(case.images[0], rows)


# ================================================================== batch
def class_names(cases: Sequence[SliceCase], values: Sequence[int], labels_tsv: Path | None = None) -> dict[int, str]:
    """Names of the label values (:func:`~totalseg_bids.core.derivatives.label_class_names`),
    else ``class<value>``."""
    from ..core.derivatives import label_class_names

    names = label_class_names([c.label for c in cases if c.label is not None], labels_tsv)
    return {v: names.get(v, f"class{v}") for v in values}


def config_cases(config: Path, datasets_path: str | None) -> list[SliceCase]:
    """Cases of a config; refuses duplicates, mismatched pairs and subjects in two splits."""
    from ..core.config import check_cases, load_config

    cfg_cases = load_config(config, datasets_path, require=("TRAINING",)).cases()
    check_cases(cfg_cases, config, strict_splits=True)  # duplicates, image/label of other subjects, subjects in two splits
    cases = [SliceCase(c.split, tuple(c.images), c.label, f"{raw_root_of(c.images[0]).name}/sub-{c.subject}")
             for c in cfg_cases]
    if not cases:
        raise InputError("the config lists no cases", config, "add entries to TRAINING/VALIDATION/TESTING")
    stems = Counter(c.key for c in cases)
    if any(n > 1 for n in stems.values()):  # as convert_config_to_nnunet's case ids: the dataset leads
        for c in cases:
            c.dataset = re.sub(r"[^A-Za-z0-9-]+", "-", raw_root_of(c.images[0]).name).strip("-") or "x"
    return cases


def nnunet_dataset_dir(out: Path, dataset_id: int, name: str) -> Path:
    """``<out>/Dataset<NNN>_<Name>``; refuses an id already used by another name."""
    return dataset_dir(out, dataset_id, name)


def _task(item: tuple[SliceCase, SliceJob]) -> CaseSlices:
    return export_case(*item)


def _values_task(case: SliceCase) -> list[int]:
    return label_values(case)


def _check_channels(cases: Sequence[SliceCase], opts: SlicesOptions) -> int:
    """The one channel count every case has, checked against the options (before any work)."""
    n_channels = {len(c.images) for c in cases}
    if len(n_channels) != 1:
        raise InputError(f"cases have different channel counts {sorted(n_channels)}", cases[0].images[0],
                         "give every config entry the same number of IMAGE channels")
    n_ch, channel_names = n_channels.pop(), opts.channels
    if opts.layout == "mmseg" and opts.fmt == "png" and n_ch > 3:
        raise UsageError(f"{n_ch} channels do not fit an RGB PNG", None, "use --format tif or npy")
    if opts.window and len(opts.window) not in (1, n_ch):
        raise UsageError(f"{len(opts.window)} windows for {n_ch} channels", None, "give one window or one per channel")
    if channel_names and len(channel_names) != n_ch:
        raise UsageError(f"{len(channel_names)} --channels names for {n_ch} channels", None,
                         "give one name per IMAGE channel")
    stems: set[str] = set()
    for c in cases:
        if c.key in stems:
            raise InputError(f"two cases share the slice name {c.key}", c.images[0],
                             "export datasets with clashing names separately")
        stems.add(c.key)
    return n_ch


def _up_to_date(base: Path, request: dict, overwrite: bool) -> bool:
    """True when the export in ``base`` came from this very request; a different one is refused."""
    manifest = base / MANIFEST
    if not manifest.exists() or overwrite:
        return False
    old = read_request(base / REQUEST_FILE)
    diff = "made by an older version" if old is None else request_difference(old, request)
    if diff is None:
        log.info("%s is up to date with the config; nothing to do", manifest)
        return True
    raise OutputError(f"an export from another request is here ({diff})", manifest,
                      "pass --overwrite to export again, or choose another --out")


def _remove_previous(base: Path) -> None:
    """Delete the files the previous export's manifest lists, then the manifest."""
    manifest = base / MANIFEST
    if not manifest.exists():
        return
    with open(manifest, encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            for rel in [*row["file"].split(";"), row["mask"]]:
                if rel:
                    (base / rel).unlink(missing_ok=True)
    manifest.unlink()


def _nnunet_folds(units: Sequence[tuple[str, str, str]], opts: SlicesOptions) -> list[dict]:
    """The cross-validation folds of the 2D dataset (``units``: case id, ``dataset/sub-<label>``, train/val),
    drawn by subject as the 3D conversion draws them (totalseg_bids.nnunet.splits)."""
    config_split = {"train": "TRAINING", "val": "VALIDATION"}
    return make_folds([FoldCase(c, subject, config_split[s]) for c, subject, s in units], opts.folds, opts.seed)


def _write_nnunet_metadata(base: Path, cases: Sequence[SliceCase], rows: list[dict], names: dict[int, str],
                           mapping: dict[int, int], opts: SlicesOptions) -> None:
    """``dataset.json`` and ``splits_final.json`` of the 2D nnU-Net dataset (through the nnunet adapter)."""
    suffixes = [BidsName.parse(p).suffix or f"channel{i}" for i, p in enumerate(cases[0].images)]
    # windowed uint8 PNG: nnU-Net's CT normalisation (HU percentiles) would be wrong, z-score is right
    channel_names, axis = opts.channels, opts.axis
    chan = list(channel_names) if channel_names else [f"{s}windowed" if is_ct_suffix(s) else str(s) for s in suffixes]
    train_cases = sorted({r["file"].split(";")[0].split("/")[-1][:-9]: (r["split"], r["subject"]) for r in rows
                          if r["split"] != "test"}.items())
    labels = {"background": 0} | {names[src]: dst for src, dst in mapping.items()}
    write_dataset_json(base, {str(i): n for i, n in enumerate(chan)}, labels, len(train_cases), ".png",
                       "NaturalImage2DIO", base.name, description=f"{axis} slices exported by totalseg_bids.slices")
    write_folds(base, _nnunet_folds([(k, subject, s) for k, (s, subject) in train_cases], opts))
    for d in ("imagesTr", "labelsTr", "imagesTs"):
        (base / d).mkdir(parents=True, exist_ok=True)


def _request(cases: Sequence[SliceCase], job: SliceJob) -> dict:
    """What this export is made from (the options that change its files), for :func:`_up_to_date`."""
    o = job.options
    return request_record([Case(c.split, c.images, c.label) for c in cases], {
        "channels": list(o.channels or []), "labels_tsv": str(o.labels_tsv or ""), "out": job.out,
        "axis": o.axis, "only_labelled": o.only_labelled, "empty_fraction": o.empty_fraction,
        "windows": o.windows, "percentile": o.percentile, "fmt": o.fmt, "layout": o.layout,
        "dataset_dir": job.dataset_dir, "seed": o.seed, "folds": o.folds if o.layout == "nnunet2d" else None})


def _run_batch(func, items: Sequence, keys: Sequence[str], opts: SlicesOptions, desc: str) -> list:
    from ..core.parallel import finish, run_tasks

    return finish(run_tasks(func, items, keys=keys, jobs=opts.jobs, executor=opts.executor,
                            scheduler=opts.scheduler, desc=desc), desc)


def export_cases(cases: Sequence[SliceCase], out: str | Path, options: SlicesOptions | None = None,
                 **kwargs) -> SlicesResult:
    """Export every case under ``out`` (nnunet2d: into ``out/Dataset<NNN>_<Name>``).

    A first pass reads every label (checking it and collecting class values)
    before anything is written, so bad input leaves no partial export
    (a BatchError with nothing in ``.done``). A case that fails while slicing
    raises one BatchError whose ``.done`` holds the other cases' slices;
    the manifest is then not written, so a rerun exports again.
    """
    from dataclasses import replace

    opts = resolve_options(SlicesOptions, options, kwargs)
    _check_channels(cases, opts)
    out = Path(out)
    dataset_dir = nnunet_dataset_dir(out, opts.dataset_id, opts.dataset_name) if opts.layout == "nnunet2d" else None
    job = SliceJob(replace(opts, scheduler=None), out, dataset_dir)
    base = dataset_dir or out
    manifest, request = base / MANIFEST, _request(cases, job)
    if _up_to_date(base, request, bool(opts.overwrite)):
        with open(manifest, encoding="utf-8") as fh:
            return SlicesResult("skipped", manifest, len(cases), sum(1 for _ in fh) - 1)
    ensure_writable_dir(base)
    if opts.layout == "nnunet2d":  # too few subjects for the folds fails before any slice is written
        _nnunet_folds([(c.key, c.subject, SPLIT_NAMES[c.split]) for c in cases if c.split != "TESTING"], opts)
    keys = [c.key for c in cases]
    try:
        values = sorted({v for vs in _run_batch(_values_task, cases, keys, opts, "labels") for v in vs})
    except BatchError as exc:
        exc.done = []  # label values are no export: nothing was written
        raise
    job = replace(job, mapping=class_mapping(values))
    names = class_names(cases, values, opts.labels_tsv)
    if opts.overwrite:
        _remove_previous(base)
    rows = [r for done in _run_batch(_task, [(c, job) for c in cases], keys, opts, "cases") for r in done.rows]
    class_rows = ["index\tname\tsource_value", "0\tbackground\t0"] + [
        f"{dst}\t{names[src]}\t{src}" for src, dst in job.mapping.items()]
    atomic_write_text(base / "classes.tsv", "\n".join(class_rows) + "\n")
    if opts.layout == "nnunet2d":
        _write_nnunet_metadata(base, cases, rows, names, job.mapping, opts)
    lines = ["\t".join(MANIFEST_COLUMNS)] + ["\t".join(str(r[c]) for c in MANIFEST_COLUMNS) for r in rows]
    atomic_write_json(base / REQUEST_FILE, request)
    atomic_write_text(manifest, "\n".join(lines) + "\n")  # last: its presence means the export is whole
    return SlicesResult("written", manifest, len(cases), len(rows))


def export_slices(config: str | Path, out: str | Path, options: SlicesOptions | None = None,
                  **kwargs) -> SlicesResult:
    """Export the slices of every case of a data config (see :func:`export_cases`)."""
    opts = resolve_options(SlicesOptions, options, kwargs)
    return export_cases(config_cases(Path(config), opts.datasets_path), out, opts)


# =================================================================== CLI
def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser(
        "slices", __doc__.splitlines()[0],
        epilog="stdout: one JSON line (status, path = the slices.tsv manifest, cases, slices)\n"
               "examples:\n"
               "  python -m totalseg_bids.slices --config train.json --out slices --axis axial "
               "--only-labelled --window bone\n"
               "  python -m totalseg_bids.slices --config ct_mr.json --out $nnUNet_raw --layout nnunet2d "
               "-dnum 501 -dname SacrumSlices --window bone --percentile 1 99")
    p.add_argument("--config", required=True, type=Path, help="data config (docs/conventions.md section 4)")
    flags.add_out(p, dest="out", required=True, help="output folder (nnunet2d: the nnUNet_raw folder)")
    p.add_argument("--datasets-path", default=None, help="override the config's DATASETS_PATH")
    p.add_argument("--axis", choices=tuple(AXES), default="axial", help="slice axis in RAS+ world orientation")
    p.add_argument("--only-labelled", action="store_true", help="only slices with label, plus --empty-fraction")
    p.add_argument("--empty-fraction", type=float, default=0.1,
                   help="share of the label-free slices kept with --only-labelled (default 0.1)")
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--window", nargs="+", metavar="W", default=None,
                       help="CT window(s): brain (W80/L40), bone (W2000/L500), soft (W400/L40) or W,L; "
                            "one for all channels or one per channel")
    scale.add_argument("--percentile", type=float, nargs=2, default=(1.0, 99.0), metavar=("LOW", "HIGH"),
                       help="per-volume percentile scaling (MRI; default 1 99)")
    p.add_argument("--format", dest="fmt", choices=FORMATS, default="png",
                   help="png/tif: uint8 (windowed); npy: raw float32")
    p.add_argument("--layout", choices=LAYOUTS, default="mmseg")
    flags.add_dataset_id(p, dest="dataset_id", default=501, help="nnunet2d dataset id (default 501)")
    p.add_argument("-dname", "--dataset-name", default="Slices", help="nnunet2d dataset name (default Slices)")
    p.add_argument("--channels", nargs="+", default=None, metavar="NAME",
                   help="channel names for dataset.json (default: the image suffixes)")
    p.add_argument("--labels-tsv", type=Path, default=None, help="index/name table for the class names")
    p.add_argument("--seed", type=int, default=0, help="seed of the empty-slice sampling and of the nnunet2d folds")
    p.add_argument("--folds", type=int, default=None, metavar="K",
                   help="nnunet2d: cross-validation folds in splits_final.json, drawn by subject and stratified by "
                        "dataset (default 5, or one per subject when there are fewer; 1: the config's split)")
    cli.add_batch_args(p)
    cli.add_datalad_args(p)
    return p


def _run(args: argparse.Namespace) -> int:
    opts = options_from_args(SlicesOptions, args)
    cli.fetch_inputs(args, cli.config_inputs(args.config, args.datasets_path))
    cases = config_cases(args.config, args.datasets_path)
    base = nnunet_dataset_dir(args.out, opts.dataset_id, opts.dataset_name) if opts.layout == "nnunet2d" else args.out
    with cli.saving(args, [base]):
        result = export_cases(cases, args.out, opts)
    cli.emit("slices", [result])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)
