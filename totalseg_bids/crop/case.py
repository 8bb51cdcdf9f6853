"""One image: check its ROI and labels, skip it when done, write the crop atomically."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.bids import BidsName, dseg_tsv_path
from ..core.derivatives import (
    BIDSIGNORED_SUFFIXES,
    ensure_bidsignore,
    ensure_dataset_description,
    generated_by,
    output_complete,
    read_dseg_tsv,
    write_dseg_tsv,
    write_sidecar,
)
from ..core.errors import GeometryError, InputError, MissingFileError
from ..core.folders import CROPPED
from ..core.geometry import Grid, grid_mismatch, roi_index_bounds
from ..core.nifti import Volume, load_image, load_label, save_image, save_mask
from .cutting import crop_bounds, crop_image, crop_label
from .naming import output_image_path, output_label_path
from .options import CropOptions
from .sidecar import box_record, sidecar_fields

#: Label suffixes holding probabilities (cut and resampled as intensities, kept in [0, 1]).
SOFT_KINDS = ("softseg", "probseg")


@dataclass
class CropCase:
    """One image (or channel) to crop, its ROI mask, its labels and where outputs go."""

    image: Path
    roi: Path | None
    labels: tuple[Path, ...] = ()
    out_root: Path | None = None
    raw_root: Path | None = None
    roi_searched: str = ""

    def output(self, opts: CropOptions) -> Path:
        """The cropped image's path."""
        return output_image_path(self.image, Path(self.out_root or "."), opts.res)


@dataclass
class CropResult:
    """One cropped image (``path``), its cropped labels; ``status`` written or skipped (already done)."""

    path: Path
    labels: list[Path] = field(default_factory=list)
    status: str = "written"
    box: dict | None = None


#: A label of the case: its path, its volume, and whether it is soft (a probability map).
LabelInput = tuple[Path, Volume, bool]


def read_inputs(case: CropCase, opts: CropOptions) -> tuple[Volume, np.ndarray, np.ndarray, list[LabelInput]]:
    """The image, the ROI's index bounds on its grid and the labels, all checked before any write."""
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
    labels: list[LabelInput] = []
    for lab in case.labels:
        soft = BidsName.parse(lab).deriv_suffix in SOFT_KINDS
        vol = load_image(lab) if soft else load_label(lab)
        why = grid_mismatch(vol.grid, grid)
        if why:
            raise GeometryError(f"label is not on its image's grid ({why})", lab,
                                "bring it onto the image grid first (e.g. with the registration stage)")
        labels.append((lab, vol, soft))
    return image, lo, hi, labels


def crop_case(case: CropCase, opts: CropOptions) -> CropResult:
    """Crop (and resample) one image and its labels; skip when already done.

    Everything is read and checked before the first write, so bad input leaves
    no output. Labels are written first and the image's sidecar last: the
    image's sidecar marks the case complete.
    """
    out_img = case.output(opts)
    out_labels = [output_label_path(lab, out_img, opts.naming) for lab in case.labels]
    if not opts.overwrite and output_complete(out_img) and all(output_complete(p) for p in out_labels):
        return CropResult(out_img, out_labels, status="skipped")
    image, lo, hi, labels = read_inputs(case, opts)
    roi = case.roi
    assert roi is not None  # read_inputs refuses a case without its ROI
    start, stop = crop_bounds(case.image, image.grid, lo, hi, opts)
    img_out, crop_grid, out_grid, pad_value = crop_image(image, start, stop, opts)
    box = box_record(image.grid, start, stop, out_grid)
    common = sidecar_fields(opts, roi, case.raw_root, box, out_grid, pad_value)
    tool = generated_by("totalseg_bids", Stage="crop")
    _prepare_folder(case, opts)
    for (lab, vol, soft), out_lab in zip(labels, out_labels):
        data = crop_label(vol.data, soft, start, stop, crop_grid, out_grid, opts)
        _write_label(lab, data, soft, out_lab, out_grid)
        write_sidecar(out_lab, [lab, case.image, roi], [tool], spatial_reference=out_img,
                      raw_root=case.raw_root, **common)
    save_image(img_out, out_grid.affine, out_img, like=image.header)
    # SkullStripped is REQUIRED for preprocessed anatomical images in BIDS derivatives
    write_sidecar(out_img, [case.image, roi], [tool], raw_root=case.raw_root, SkullStripped=False, **common)
    return CropResult(out_img, out_labels, box=box)


def _prepare_folder(case: CropCase, opts: CropOptions) -> None:
    """The derivative dataset's description, and its ``.bidsignore`` for suffixes BIDS does not know."""
    ensure_dataset_description(case.out_root, CROPPED, "images and labels cropped to an ROI by totalseg_bids.crop")
    suffix = BidsName.parse(case.image).suffix
    if opts.naming == "bids" and suffix in BIDSIGNORED_SUFFIXES:
        ensure_bidsignore(case.out_root, suffix)


def _write_label(lab: Path, data: np.ndarray, soft: bool, out_lab: Path, out_grid: Grid) -> None:
    """A cropped label: a probability map as float, a label map as a mask (with its class table)."""
    if soft:
        save_image(data, out_grid.affine, out_lab)
        return
    save_mask(data, out_grid.affine, out_lab)
    tsv = dseg_tsv_path(lab)
    if tsv.is_file():
        write_dseg_tsv(out_lab, read_dseg_tsv(tsv))
