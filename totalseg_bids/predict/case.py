"""One image: its planned output, and the scratch prediction checked against the image grid,
post-processed and written (then its sidecar) into the derivatives.

Empty predictions stay empty: the file is written, the sidecar says
``"EmptyPrediction": true`` and a warning is logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.bids import dataset_path
from ..core.derivatives import ensure_dataset_description, write_dseg_tsv, write_sidecar
from ..core.nifti import GRID_ATOL, Grid, load_nifti, read_data, resample_label, save_mask
from ..core.qc_hook import qc_entry
from ..nnunet.engine import Model
from ..nnunet.naming import dataset_name
from ..nnunet.postprocess import Postprocessing, removal_report

log = logging.getLogger(__name__)


@dataclass
class Item:
    """One prediction to make: input image(s) and the output path."""

    images: tuple[Path, ...]
    output: Path
    raw_root: Path
    derivatives_root: Path

    @property
    def key(self) -> str:
        """The name failures are reported under: the first image."""
        return str(self.images[0])


def output_kind(labels: dict[str, Any]) -> str:
    """``seg`` for one foreground label, ``dseg`` for several.

    >>> output_kind({"background": 0, "sacrum": 1}), output_kind({"background": 0, "a": 1, "b": 2})
    ('seg', 'dseg')
    """
    return "seg" if len([k for k in labels if k != "background"]) == 1 else "dseg"


def default_label_name(model: Model, kind: str) -> str:
    """The ``label-`` entity when none is given: the class of a binary model, else the dataset name."""
    classes = model.classes
    return classes[min(classes)] if kind == "seg" and classes else dataset_name(model.dataset)


def to_image_grid(pred_path: Path, image_path: Path) -> tuple[np.ndarray, np.ndarray, str | None]:
    """The prediction as an array on the image's grid, with the image's affine.

    nnU-Net writes predictions in the image's voxel order, but its reader may
    take the geometry from the qform where nibabel takes the sform: with the
    same shape, spacing and axis directions, the voxels are the image's voxels
    and only the header is replaced. Otherwise the prediction is resampled
    through world coordinates (nearest neighbour). Returns (data, affine, note).
    """
    pred_img = load_nifti(pred_path, check_forms=False)
    pred = np.rint(read_data(pred_img, pred_path)).astype(np.uint16)
    image = load_nifti(image_path, check_forms=False)
    grid, pgrid = Grid.of(image), Grid.of(pred_img)
    same_axes = (tuple(pgrid.shape) == tuple(grid.shape) and np.allclose(pgrid.spacing, grid.spacing, atol=GRID_ATOL)
                 and np.allclose(pgrid.direction, grid.direction, atol=GRID_ATOL))
    if same_axes:
        gap = float(np.abs(pgrid.origin - grid.origin).max())
        note = f"nnU-Net's geometry differs by {gap:.3g} mm (qform vs sform); kept the image's" if gap > 0.1 else None
        return pred, grid.affine, note
    return resample_label(pred, pgrid.affine, grid, mode="nearest"), grid.affine, "resampled onto the image grid"


@dataclass
class PostOptions:
    """Post-processing and metadata of every image, derived once from the options and the model."""

    post: Postprocessing = field(default_factory=Postprocessing)
    kind: str = "seg"
    classes: dict[int, str] = field(default_factory=dict)
    generated: list[dict] = field(default_factory=list)
    qc_dir: Path | None = None


def finalize(item: Item, pred_path: Path, opts: PostOptions) -> dict:
    """Post-process one scratch prediction and write it (then its sidecar) into the derivatives."""
    raw, affine, note = to_image_grid(pred_path, item.images[0])
    if note:
        log.info("%s: %s", dataset_path(item.images[0]), note)
    data = opts.post.apply(raw)
    removal = removal_report(raw, data, opts.classes, opts.post.threshold)
    if removal["RemovedAboveThreshold"]:
        share = ", ".join(f"{k} {removal['RemovedFraction'][k]:.0%}" for k in removal["RemovedAboveThreshold"])
        log.warning("%s: post-processing (%s) removed %s of the predicted volume, above %.0f %%: check it "
                    "(--postprocess none keeps every component)", dataset_path(item.images[0]), opts.post.method,
                    share, 100 * opts.post.threshold)
    if opts.kind == "seg":
        data = (data > 0).astype(np.uint8)
    empty = not data.any()
    if empty:
        log.warning("%s: empty prediction (no foreground); written empty and flagged in the sidecar", item.key)
    ensure_dataset_description(item.derivatives_root, item.derivatives_root.name,
                               "Segmentations predicted by nnU-Net through totalseg_bids.predict")
    save_mask(data, affine, item.output)
    if opts.kind == "dseg":
        write_dseg_tsv(item.output, opts.classes)
    write_sidecar(item.output, list(item.images), opts.generated, spatial_reference=item.images[0],
                  raw_root=item.raw_root, **_sidecar_flags(empty, removal))
    meta = {"empty": empty, "postprocessing": opts.post.method, "removed_voxels": removal["RemovedVoxels"],
            "removed_fraction": removal["RemovedFraction"], "note": note}
    if removal["RemovedAboveThreshold"]:
        meta["postprocessing_flag"] = (f"removed more than {opts.post.threshold:.0%} of "
                                       + ", ".join(removal["RemovedAboveThreshold"]))
    qc_entry(opts.qc_dir, item.images[0], item.output, "predict", meta=meta)
    return meta


def _sidecar_flags(empty: bool, removal: dict) -> dict:
    """The sidecar's own keys: an empty prediction, and what post-processing removed (flagged above the threshold).

    >>> _sidecar_flags(False, {"RemovedVoxels": {"a": 5}, "RemovedFraction": {"a": 0.5},
    ...                        "RemovedAboveThreshold": ["a"], "Threshold": 0.1})  # doctest: +NORMALIZE_WHITESPACE
    {'RemovedVoxels': {'a': 5}, 'RemovedFraction': {'a': 0.5}, 'PostProcessingRemovedMuch': True,
     'RemovedAboveThreshold': ['a'], 'RemovalThreshold': 0.1}
    """
    out: dict = {"EmptyPrediction": True} if empty else {}
    if removal["RemovedVoxels"]:
        out.update(RemovedVoxels=removal["RemovedVoxels"], RemovedFraction=removal["RemovedFraction"])
    if removal["RemovedAboveThreshold"]:
        out.update(PostProcessingRemovedMuch=True, RemovedAboveThreshold=removal["RemovedAboveThreshold"],
                   RemovalThreshold=removal["Threshold"])
    return out
