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

``python -m totalseg_bids.crop --bids-dir <bids> --roi-dir labels --roi-label sacrum [--factor 3]``;
library callers pass :class:`CropOptions` (or its fields as keywords) to
:func:`crop_dataset` or :func:`crop_config`. Modules: :mod:`.options`,
:mod:`.naming` (output names), :mod:`.discovery` (cases, ROI and labels),
:mod:`.cutting` (the box and the resampling; the geometry itself is
:mod:`totalseg_bids.core.geometry`), :mod:`.sidecar`, :mod:`.case`, :mod:`.batch`, :mod:`.cli`.
"""

from .batch import case_inputs, crop_batch, crop_config, crop_dataset
from .case import SOFT_KINDS, CropCase, CropResult, crop_case, read_inputs
from .cli import get_parser, main
from .cutting import crop_bounds, crop_image, crop_label, output_grid
from .discovery import cases_from_bids, cases_from_config, find_roi, labels_for_image, resolve_roi_dir
from .naming import format_number, output_image_path, output_label_path, res_value
from .options import DEFAULT_CONTRASTS, IMAGE_ORDERS, CropOptions, ImageInterp
from .sidecar import box_record, describe_resolution, sidecar_fields

__all__ = [
    "DEFAULT_CONTRASTS", "IMAGE_ORDERS", "SOFT_KINDS", "CropCase", "CropOptions", "CropResult", "ImageInterp",
    "box_record", "cases_from_bids", "cases_from_config", "crop_batch", "crop_bounds", "crop_case", "crop_config",
    "crop_dataset", "crop_image", "crop_label", "describe_resolution", "find_roi", "format_number", "get_parser",
    "case_inputs", "labels_for_image", "main", "output_grid", "output_image_path", "output_label_path", "read_inputs",
    "res_value", "resolve_roi_dir", "sidecar_fields",
]
