"""Crop images and their labels to an ROI mask plus a margin, then optionally resample.

Skull crop, then "reduce the size by 3", as a library stage: the ROI is
any binary mask, e.g. the CT's ``_label-sacrum_seg`` written by ``segment_ct``,
or a mask on the image's own grid. An ROI on another grid (a CT ROI for an MRI)
is mapped through world coordinates into the image grid, so every image is cut
on its *own* grid and no intensity is interpolated by the crop itself.

Geometry: the crop keeps world positions exactly. Cutting ``[i0:i1, j0:j1,
k0:k1]`` moves the origin to ``affine @ [i0, j0, k0]``; spacing and direction
are unchanged. The optional second step brings every case to one target:

* ``--spacing sx sy sz``: a common voxel size (mm, in the image's axis order);
* ``--factor f``: every spacing times ``f`` (the seed's reduction by 3);
* ``--shape X Y Z``: a fixed voxel shape on the image's own grid, cut/padded
  around the ROI centre (images padded with their minimum, labels with 0).

Resampled grids keep the direction and the outer edge of the first voxel, so
the field of view stays where it was. Images use linear or cubic B-spline
interpolation, labels nearest neighbour or per-label linear + argmax (never
linear on integers, docs/conventions.md section 3).

Outputs form a derivative dataset (default ``<bids>/derivatives/cropped``):
``sub-01_desc-cropped_T2w.nii.gz`` (``res-<x>`` added when resampled) and its
labels ``sub-01_desc-cropped_T2w_label-sacrum_seg.nii.gz``, i.e. the label name
is built from the cropped image name, so :func:`core.bids.image_for_label`,
``init_data_config`` and the nnU-Net bridge pair them unchanged. Sidecars
record the crop box (voxel indices and world bounds), margin, resampling,
interpolation and Sources.

Stdout: one JSON line per image (``status`` written or skipped, ``path`` the
cropped image, ``labels`` its cropped labels, ``box`` the crop box when written).
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core import flags
from ..core import cli
from ..core.bids import (BINARY_LABEL_SUFFIXES, IMAGE_DATATYPES, NAMINGS, BidsName, bids_uri, dataset_path,
                        dseg_tsv_path, is_ct_suffix, raw_root_of, split_extension, subject_dir)
from ..core.derivatives import (BIDSIGNORED_SUFFIXES, ensure_bidsignore, ensure_dataset_description,
                               generated_by, output_complete, read_dseg_tsv,
                               write_dseg_tsv, write_sidecar)
from ..core.errors import GeometryError, InputError, MissingFileError, UsageError
from ..core.options import normalise_fields, options_from_args, resolve_options
from ..core.geometry import (Grid, centred_box, crop_box, crop_to_box, cut, grid_mismatch, resample_image,
                             resample_label_edge, roi_index_bounds, target_grid)
from ..core.nifti import Volume, load_image, load_label, save_image, save_mask

log = logging.getLogger(__name__)

IMAGE_ORDERS = {"linear": 1, "bspline": 3}
LABEL_MODES = ("nearest", "label")
DEFAULT_CONTRASTS = ("CT", "T1w", "T2w")
SOFT_KINDS = ("softseg", "probseg")


# ============================================================ pure functions
def format_number(value: float) -> str:
    """A number as an alphanumeric BIDS value (``.`` becomes ``p``).

    >>> format_number(2.0), format_number(1.5), format_number(0.75)
    ('2', '1p5', '0p75')
    """
    text = f"{float(value):.3f}".rstrip("0").rstrip(".")
    return text.replace(".", "p").replace("-", "m")


def res_value(spacing: Sequence[float] | None = None, factor: float | None = None,
              shape: Sequence[int] | None = None) -> str | None:
    """The ``res-`` entity value describing a resampling target (None: no resampling).

    >>> res_value(spacing=[2, 2, 2]), res_value(spacing=[1, 1, 2.5])
    ('2mm', '1x1x2p5mm')
    >>> res_value(factor=3), res_value(shape=[64, 64, 32]), res_value()
    ('factor3', '64x64x32', None)
    """
    if spacing is not None:
        values = [format_number(s) for s in spacing]
        return (values[0] if len(set(values)) == 1 else "x".join(values)) + "mm"
    if factor is not None:
        return f"factor{format_number(factor)}"
    if shape is not None:
        return "x".join(str(int(s)) for s in shape)
    return None



# ================================================================ per case
@dataclass(frozen=True)
class CropOptions:
    """How cases are found (ROI, labels, contrasts), cut, resampled, named and run.

    ``roi_dir``: a derivative name inside ``<bids>/derivatives/`` or a path;
    ``label_dir``/``label_suffix``: labels cropped along (``--path-img`` only);
    at most one of ``spacing``, ``factor``, ``shape``. ``jobs``/``executor``/
    ``scheduler``: how the batch runs (see core/parallel.py).
    """

    roi_label: str
    roi_dir: str | Path = "labels"
    contrasts: tuple[str, ...] = DEFAULT_CONTRASTS
    label_dir: str | None = "labels"
    label_suffix: str | None = None
    datasets_path: str | None = None
    margin_mm: float = 20.0
    spacing: tuple[float, float, float] | None = None
    factor: float | None = None
    shape: tuple[int, int, int] | None = None
    image_interp: str = "linear"
    label_interp: str = "nearest"
    naming: str = "neuropoly"
    overwrite: bool | str = False
    jobs: int | None = None
    executor: str = "local"
    scheduler: object = None

    def __post_init__(self) -> None:
        normalise_fields(self, tuples=("spacing", "shape", "contrasts"))
        chosen = [x for x in (self.spacing, self.factor, self.shape) if x is not None]
        if len(chosen) > 1:
            raise UsageError("--spacing, --factor and --shape are alternatives", None, "give at most one")
        if self.margin_mm < 0:
            raise UsageError("--margin-mm must be >= 0", None, "e.g. --margin-mm 20")
        if self.spacing is not None and any(s <= 0 for s in self.spacing):
            raise UsageError("--spacing values must be > 0", None, "e.g. --spacing 2 2 2")
        if self.factor is not None and self.factor <= 0:
            raise UsageError("--factor must be > 0", None, "e.g. --factor 3")
        if self.shape is not None and any(int(s) < 1 for s in self.shape):
            raise UsageError("--shape values must be >= 1", None, "e.g. --shape 64 64 64")
        if self.image_interp not in IMAGE_ORDERS:
            raise UsageError(f"unknown --image-interp {self.image_interp!r}", None, "use linear or bspline")
        if self.label_interp not in LABEL_MODES:
            raise UsageError(f"unknown --label-interp {self.label_interp!r}", None, "use nearest or label")

    @property
    def res(self) -> str | None:
        return res_value(self.spacing, self.factor, None)


@dataclass
class CropCase:
    """One image (or channel) to crop, its ROI mask, its labels and where outputs go."""

    image: Path
    roi: Path | None
    labels: tuple[Path, ...] = ()
    out_root: Path | None = None
    raw_root: Path | None = None
    roi_searched: str = ""


def _describe_resolution(opts, grid) -> str:
    """Human-readable meaning of the ``res-`` label (the ``Resolution`` sidecar key)."""
    spacing = "x".join(f"{v:g}" for v in np.round(grid.spacing, 4))
    if opts.factor is not None:
        return f"voxel size multiplied by {opts.factor:g} ({spacing} mm)"
    return f"resampled to {spacing} mm voxels"


@dataclass
class CropResult:
    """One cropped image (``path``), its cropped labels; ``status`` written or skipped (already done)."""

    path: Path
    labels: list[Path] = field(default_factory=list)
    status: str = "written"
    box: dict | None = None


def output_image_path(case: CropCase, opts: CropOptions) -> Path:
    """``<out>/sub-XX/[ses-YY/]<datatype>/<image>_desc-cropped[_res-x]``."""
    name = BidsName.parse(case.image)
    if name.is_derivative:
        raise InputError("expected an image, got a label file name", case.image,
                         "list images (or labels in a LABEL config), not labels as images")
    new = name.with_entities(desc="cropped", res=opts.res)
    datatype = case.image.parent.name if case.image.parent.name in IMAGE_DATATYPES else "anat"
    return Path(case.out_root) / subject_dir(new, datatype) / new.filename


def output_label_path(label: Path, cropped_image: Path, naming: str) -> Path:
    """The cropped label's path: the derivative of the *cropped* image name.

    >>> str(output_label_path(Path("/d/derivatives/labels/sub-01/anat/sub-01_CT_label-sacrum_seg.nii.gz"),
    ...     Path("/d/derivatives/cropped/sub-01/anat/sub-01_desc-cropped_CT.nii.gz"), "neuropoly"))
    '/d/derivatives/cropped/sub-01/anat/sub-01_desc-cropped_CT_label-sacrum_seg.nii.gz'
    """
    src = BidsName.parse(label)
    img = BidsName.parse(cropped_image)
    kind = {"mask": "seg", "probseg": "softseg"}.get(src.deriv_suffix or "seg", src.deriv_suffix or "seg")
    structure = src.get("label")
    desc = src.get("desc")
    if structure is None and kind == "dseg" and src.naming == "bids":
        structure, desc = desc, None
    new = img.derivative(structure, kind=kind, naming=naming, desc=desc)
    return cropped_image.parent / new.filename


def _box_record(grid: Grid, start: np.ndarray, stop: np.ndarray, out_grid: Grid) -> dict:
    lo, hi = out_grid.world_bounds()
    return {
        "VoxelStart": [int(v) for v in start],
        "VoxelStop": [int(v) for v in stop],
        "SourceShape": [int(v) for v in grid.shape],
        "WorldBoundsMin": [round(float(v), 4) for v in lo],
        "WorldBoundsMax": [round(float(v), 4) for v in hi],
        "Note": "VoxelStart/VoxelStop index the source image ([start, stop), may leave it when padded); "
                "world bounds are the voxel edges of the cropped field of view in mm (RAS+ scanner space)",
    }


def _read_inputs(case: CropCase, opts: CropOptions
                 ) -> tuple[Volume, np.ndarray, np.ndarray, list[tuple[Path, Volume, bool]]]:
    """The image, the ROI's index bounds on its grid and the labels, all checked."""
    if case.roi is None:
        raise MissingFileError(f"no ROI mask label-{opts.roi_label} found for this image "
                               f"(looked in {case.roi_searched})", case.image,
                               "run segment_ct first or point --roi-dir/--roi-label at the mask")
    image = load_image(case.image)
    roi = load_label(case.roi)
    if not np.any(roi.data):
        raise InputError(f"ROI mask label-{opts.roi_label} is empty", case.roi,
                         "check the segmentation, or choose another --roi-label")
    grid = image.grid
    lo, hi = roi_index_bounds(roi.data, roi.affine, image.affine)
    if np.any(hi < -0.5) or np.any(lo > np.asarray(grid.shape) - 0.5):
        raise GeometryError("the ROI lies outside the image's field of view", case.roi,
                            "check that the ROI belongs to this subject/session")
    labels: list[tuple[Path, Volume, bool]] = []
    for lab in case.labels:
        soft = BidsName.parse(lab).deriv_suffix in SOFT_KINDS
        vol = load_image(lab) if soft else load_label(lab)
        why = grid_mismatch(vol.grid, grid)
        if why:
            raise GeometryError(f"label is not on its image's grid ({why})", lab,
                                "bring it onto the image grid first (e.g. with the registration stage)")
        labels.append((lab, vol, soft))
    return image, lo, hi, labels


def _crop_bounds(case: CropCase, opts: CropOptions, grid: Grid, lo: np.ndarray, hi: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``[start, stop)`` voxel box: ROI plus margin, or ``--shape`` around the ROI centre."""
    if opts.shape is None:
        return crop_box(lo, hi, grid.spacing, opts.margin_mm, grid.shape)
    start, stop = centred_box(lo, hi, opts.shape)
    margin_start, margin_stop = crop_box(lo, hi, grid.spacing, opts.margin_mm, grid.shape)
    if np.any(margin_start < np.maximum(start, 0)) or np.any(margin_stop > np.minimum(stop, grid.shape)):
        log.warning("%s: ROI plus margin (%s voxels) is larger than --shape %s; it is cut",
                    dataset_path(case.image), (margin_stop - margin_start).tolist(), list(opts.shape))
    return start, stop


def _crop_image(image: Volume, start: np.ndarray, stop: np.ndarray, opts: CropOptions
                ) -> tuple[np.ndarray, Grid, Grid, float]:
    """The cropped (and resampled) image in its output type, the crop grid, the output grid
    (the same object when not resampled) and the padding value."""
    pad_value = float(image.data.min())
    img_data, cropped_affine = crop_to_box(image.data, image.affine, start, stop, cval=pad_value)
    crop_grid = Grid(tuple(int(s) for s in img_data.shape), cropped_affine)
    out_grid = crop_grid
    if opts.spacing is not None or opts.factor is not None:
        spacing = (np.asarray(opts.spacing, float) if opts.spacing is not None
                   else crop_grid.spacing * float(opts.factor))
        out_grid = target_grid(crop_grid, spacing)
        img_data = resample_image(img_data, cropped_affine, out_grid, IMAGE_ORDERS[opts.image_interp], edge=True)
    dtype = image.header.get_data_dtype()
    if np.issubdtype(dtype, np.integer) and out_grid is crop_grid:
        img_out = img_data.astype(dtype)
    elif np.issubdtype(dtype, np.integer) and opts.image_interp == "linear":
        # linear interpolation stays within the input range: rounding to the input type is safe
        img_out = np.rint(img_data).astype(dtype)
    else:
        img_out = img_data.astype(np.float32)
    return img_out, crop_grid, out_grid, pad_value


def _sidecar_fields(case: CropCase, opts: CropOptions, box: dict, out_grid: Grid, resampled: bool,
                    pad_value: float) -> dict:
    """What every output's sidecar records: the box, margin, resampling and ROI."""
    resampling = {
        "Mode": "spacing" if opts.spacing is not None else "factor" if opts.factor is not None
        else "shape" if opts.shape is not None else None,
        "Spacing": [round(float(s), 5) for s in out_grid.spacing],
        "Shape": [int(s) for s in out_grid.shape],
        "Factor": opts.factor,
        "RequestedSpacing": list(opts.spacing) if opts.spacing is not None else None,
        "RequestedShape": list(opts.shape) if opts.shape is not None else None,
        "ImageInterpolation": opts.image_interp if resampled else None,
        "LabelInterpolation": opts.label_interp if resampled else None,
        "PadValue": pad_value if opts.shape is not None else None,
    }
    common = {"CropBox": box, "MarginMm": opts.margin_mm,
              "Resampling": {k: v for k, v in resampling.items() if v is not None},
              "ROI": {"Label": opts.roi_label, "Mask": bids_uri(case.roi, case.raw_root)}}
    if opts.res:  # BIDS requires the meaning of a res- label in the sidecar
        common["Resolution"] = {opts.res: _describe_resolution(opts, out_grid)}
    return common


def _write_label(lab: Path, vol: Volume, soft: bool, out_lab: Path, start: np.ndarray, stop: np.ndarray,
                 crop_grid: Grid, out_grid: Grid, opts: CropOptions) -> None:
    """One label cut like its image; soft labels interpolated linearly and kept in [0, 1]."""
    resampled = out_grid is not crop_grid
    if soft:
        data = cut(vol.data, start, stop, 0.0)
        if resampled:
            data = np.clip(resample_image(data, crop_grid.affine, out_grid, 1, edge=True), 0.0, 1.0)
        save_image(data.astype(np.float32), out_grid.affine, out_lab)
        return
    data = cut(vol.data, start, stop, 0)
    if resampled:
        data = resample_label_edge(data, crop_grid.affine, out_grid, opts.label_interp)
    save_mask(data, out_grid.affine, out_lab)
    tsv = dseg_tsv_path(lab)
    if tsv.is_file():
        write_dseg_tsv(out_lab, read_dseg_tsv(tsv))


def crop_case(case: CropCase, opts: CropOptions) -> CropResult:
    """Crop (and resample) one image and its labels; skip when already done.

    Everything is read and checked before the first write, so bad input leaves
    no output. Labels are written first and the image's sidecar last: the
    image's sidecar marks the case complete.
    """
    out_img = output_image_path(case, opts)
    out_labels = [output_label_path(lab, out_img, opts.naming) for lab in case.labels]
    if not opts.overwrite and output_complete(out_img) and all(output_complete(p) for p in out_labels):
        return CropResult(out_img, out_labels, status="skipped")
    image, lo, hi, labels = _read_inputs(case, opts)
    start, stop = _crop_bounds(case, opts, image.grid, lo, hi)
    img_out, crop_grid, out_grid, pad_value = _crop_image(image, start, stop, opts)
    box = _box_record(image.grid, start, stop, out_grid)
    common = _sidecar_fields(case, opts, box, out_grid, out_grid is not crop_grid, pad_value)
    tool = generated_by("totalseg_bids", Stage="crop")

    ensure_dataset_description(case.out_root, "cropped", "images and labels cropped to an ROI by totalseg_bids.crop")
    suffix = BidsName.parse(case.image).suffix
    if opts.naming == "bids" and suffix in BIDSIGNORED_SUFFIXES:
        ensure_bidsignore(case.out_root, suffix)
    written: list[Path] = []
    for (lab, vol, soft), out_lab in zip(labels, out_labels):
        _write_label(lab, vol, soft, out_lab, start, stop, crop_grid, out_grid, opts)
        write_sidecar(out_lab, [lab, case.image, case.roi], [tool], spatial_reference=out_img,
                      raw_root=case.raw_root, **common)
        written.append(out_lab)
    save_image(img_out, out_grid.affine, out_img, like=image.header)
    # SkullStripped is REQUIRED for preprocessed anatomical images in BIDS derivatives
    write_sidecar(out_img, [case.image, case.roi], [tool], raw_root=case.raw_root, SkullStripped=False, **common)
    return CropResult(out_img, written, box=box)


# ================================================================ discovery
def resolve_roi_dir(roi_dir: str | Path, raw_root: Path) -> Path:
    """A derivative name (``labels``) resolves inside ``<raw>/derivatives/``; a path is kept.

    >>> str(resolve_roi_dir("labels", Path("/d")))
    '/d/derivatives/labels'
    >>> str(resolve_roi_dir("/x/labels", Path("/d")))
    '/x/labels'
    """
    p = Path(roi_dir)
    if p.is_absolute() or len(p.parts) > 1 or p.exists():
        return p
    return raw_root / "derivatives" / str(roi_dir)


def find_roi(image: Path, roi_dir: Path, roi_label: str) -> tuple[Path | None, str]:
    """The ROI mask for ``image``: on its own grid if present, else the same
    subject/session's mask of another image (a CT's), preferring CT.

    Returns the path (or None) and a description of where it looked.
    """
    from ..core.bids import label_value

    name = BidsName.parse(image)
    value = label_value(roi_label)
    folder = roi_dir / subject_dir(name, "x").parent
    own = [folder / dt / name.derivative(roi_label, naming=n).filename
           for dt in dict.fromkeys([image.parent.name, *IMAGE_DATATYPES]) for n in NAMINGS]
    for cand in own:
        if cand.exists() or cand.is_symlink():
            return cand, str(folder)
    others: list[Path] = []
    for dt_dir in sorted(p for p in folder.glob("*") if p.is_dir()):
        for f in sorted(dt_dir.glob("*.nii*")):
            n = BidsName.try_parse(f.name)
            if (n is None or not n.is_derivative or n.get("label") != value
                    or n.deriv_suffix not in BINARY_LABEL_SUFFIXES
                    or n.subject != name.subject or n.session != name.session):
                continue
            others.append(f)
    others.sort(key=lambda f: (not is_ct_suffix(BidsName.parse(f.name).suffix), f.name))
    return (others[0] if others else None), str(folder)


def labels_for_image(image: Path, label_root: Path, label_suffix: str | None) -> list[Path]:
    """Labels of ``image`` in ``label_root`` (either naming: ``<image stem>_label-X_seg``
    or ``<entities>_space-<suffix>_label-X_mask``) ending with ``label_suffix``
    (e.g. ``_label-sacrum_seg``); all of them when None."""
    name = BidsName.parse(image)
    folder = label_root / subject_dir(name, "x").parent
    out = []
    for f in sorted(folder.glob("*/sub-*.nii*")):
        n = BidsName.try_parse(f.name)
        if n is None or not n.is_derivative or n.source().filename != name.filename:
            continue
        if label_suffix and not split_extension(f.name)[0].endswith(label_suffix.removesuffix(".nii.gz")):
            continue
        out.append(f)
    return out


def cases_from_bids(path_img: str | Path, path_out: str | Path | None, opts: CropOptions) -> list[CropCase]:
    """One case per raw image of the wanted contrasts in a BIDS dataset."""
    from ..core.index import find_images

    path_img, contrasts, roi_label = Path(path_img), opts.contrasts, opts.roi_label
    roi_dir, label_dir, label_suffix = opts.roi_dir, opts.label_dir, opts.label_suffix
    files = find_images(path_img, contrasts)
    if not files:
        raise MissingFileError(f"no images with suffix {', '.join(contrasts)}", path_img,
                               "check --contrasts (e.g. --contrasts CT T2w)")
    roi_root = resolve_roi_dir(roi_dir, path_img)
    if not roi_root.is_dir():
        raise MissingFileError("ROI folder not found", roi_root, "check --roi-dir (a derivatives name or a path)")
    label_root = resolve_roi_dir(label_dir, path_img) if label_dir else None
    out_root = Path(path_out) if path_out else path_img / "derivatives" / "cropped"
    cases = []
    for f in files:
        roi, searched = find_roi(f.path, roi_root, roi_label)
        labels = tuple(labels_for_image(f.path, label_root, label_suffix)) if label_root else ()
        cases.append(CropCase(f.path, roi, labels, out_root, path_img, searched))
    return cases


def cases_from_config(config: str | Path, path_out: str | Path | None, opts: CropOptions) -> list[CropCase]:
    """One case per config image channel; the case's label goes with its first channel."""
    from ..core.config import load_config

    cfg, roi_dir, roi_label = load_config(config, opts.datasets_path), opts.roi_dir, opts.roi_label
    cases = []
    for c in cfg.cases():
        for i, img in enumerate(c.images):
            raw = raw_root_of(img)
            out_root = Path(path_out) if path_out else raw / "derivatives" / "cropped"
            roi, searched = find_roi(img, resolve_roi_dir(roi_dir, raw), roi_label)
            labels = (c.label,) if (c.label is not None and i == 0) else ()
            cases.append(CropCase(img, roi, labels, out_root, raw, searched))
    return cases


def _task(item: tuple[CropCase, CropOptions]) -> CropResult:
    case, opts = item
    return crop_case(case, opts)


def crop_batch(cases: Sequence[CropCase], options: CropOptions | None = None, **kwargs) -> list[CropResult]:
    """Crop every case in parallel; the results, or one BatchError listing the failed
    cases (``.done``: the results of the others, whose outputs are complete)."""
    from dataclasses import replace

    from ..core.parallel import finish, run_tasks

    opts = resolve_options(CropOptions, options, kwargs)
    seen: dict[Path, Path] = {}
    for c in cases:
        out = output_image_path(c, opts)
        if out in seen and seen[out] != c.image:
            raise UsageError(f"two inputs map to the same output {out}", c.image,
                             "give each dataset its own --path-out")
        seen[out] = c.image
    per_case = replace(opts, scheduler=None)  # a Dask client stays here, never shipped with each task
    outcomes = run_tasks(_task, [(c, per_case) for c in cases], keys=[dataset_path(c.image) for c in cases],
                         jobs=opts.jobs, executor=opts.executor, scheduler=opts.scheduler, desc="crop")
    return finish(outcomes, "images")


def crop_dataset(path_img: str | Path, path_out: str | Path | None = None, options: CropOptions | None = None,
                 **kwargs) -> list[CropResult]:
    """Crop every image of ``options.contrasts`` in a raw BIDS dataset (and its labels)."""
    opts = resolve_options(CropOptions, options, kwargs)
    return crop_batch(cases_from_bids(path_img, path_out, opts), opts)


def crop_config(config: str | Path, path_out: str | Path | None = None, options: CropOptions | None = None,
                **kwargs) -> list[CropResult]:
    """Crop every image channel of a data config (and each case's label with its first channel)."""
    opts = resolve_options(CropOptions, options, kwargs)
    return crop_batch(cases_from_config(config, path_out, opts), opts)


# ===================================================================== CLI
def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser(
        "crop", __doc__.splitlines()[0],
        epilog="stdout: one JSON line per image (status, path, labels, box)\n"
               "examples:\n"
               "  python -m totalseg_bids.crop --path-img ds --contrasts CT T2w --roi-dir labels "
               "--roi-label sacrum --margin-mm 20 --factor 3\n"
               "  python -m totalseg_bids.crop --config train.json --roi-dir labels --roi-label skull "
               "--spacing 1 1 1 --image-interp bspline --label-interp label")
    src = p.add_mutually_exclusive_group(required=True)
    flags.add_bids_dir(src, dest="path_img", help="raw BIDS dataset")
    src.add_argument("--config", type=Path, metavar="CONFIG.json", help="data config (docs/conventions.md section 4)")
    p.add_argument("--contrasts", nargs="+", default=list(DEFAULT_CONTRASTS), metavar="SUFFIX",
                   help="image suffixes with --path-img (default: CT T1w T2w)")
    p.add_argument("--datasets-path", default=None, help="override the config's DATASETS_PATH")
    p.add_argument("--roi-dir", required=True,
                   help="derivative folder with the ROI masks: a name inside <bids>/derivatives/ or a path")
    p.add_argument("--roi-label", required=True, help="ROI structure, e.g. sacrum (matches label-<name>)")
    p.add_argument("--margin-mm", type=float, default=20.0, help="margin around the ROI box (default 20)")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--spacing", type=float, nargs=3, metavar=("SX", "SY", "SZ"),
                        help="resample the crop to this voxel size (mm, image axis order)")
    target.add_argument("--factor", type=float, help="multiply the spacing by this (3: the seed's reduction)")
    target.add_argument("--shape", type=int, nargs=3, metavar=("X", "Y", "Z"),
                        help="fixed voxel shape centred on the ROI (pad/cut, no resampling)")
    p.add_argument("--image-interp", choices=tuple(IMAGE_ORDERS), default="linear")
    flags.add_label_interp(p, dest="label_interp")
    flags.add_out(p, dest="path_out", default=None, help="output derivative dataset (default <bids>/derivatives/cropped)")
    p.add_argument("--label-dir", default="labels",
                   help="with --path-img: derivative folder whose labels are cropped along (default labels)")
    p.add_argument("--label-suffix", default=None,
                   help="with --path-img: only labels whose name ends with this, e.g. _label-sacrum_seg")
    cli.add_naming_arg(p)
    cli.add_batch_args(p)
    cli.add_datalad_args(p)
    return p


def _run(args: argparse.Namespace) -> int:
    opts = options_from_args(CropOptions, args)
    if args.config is not None:
        cases = cases_from_config(args.config, args.path_out, opts)
    else:
        cases = cases_from_bids(args.path_img, args.path_out, opts)
    cli.fetch_inputs(args, [p for c in cases for p in (c.image, c.roi, *c.labels) if p is not None])
    with cli.saving(args, sorted({c.out_root for c in cases if c.out_root is not None})):
        results = cli.report("crop", lambda: crop_batch(cases, opts))
    done = sum(r.status == "written" for r in results)
    log.info("cropped %d image(s), %d already done", done, len(results) - done)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)
