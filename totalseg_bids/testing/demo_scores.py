"""What each step of the demo contributes, against the phantom's ground truth.

* CT-label Dice: TotalSegmentator's CT label against the truth on the CT grid.
* Transfer Dice: the label registered onto each MRI against the truth on that MRI
  grid, beside its ceiling: the truth itself moved onto the MRI by the same
  transform (header, or the registration's saved ``_xfm.txt``). A transfer Dice
  far below its ceiling is registration's fault; a ceiling far below 1, the CT
  label's.
* Prediction Dice: nnU-Net's prediction against the truth on the MRI grid.

Every figure goes through :func:`dice_table`, the one place that scores a pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..core.bids import BidsName, split_extension, subject_dir
from ..core.nifti import Grid, dice, load_label, resample_label
from ..evaluate import EvaluateOptions, evaluate_pair
from ..register.header import moved_label_affine
from ..register.itk import transform_to_ras


def dice_table(pairs: Sequence[tuple[Path, Path]]) -> list[float]:
    """Dice of each (label, ground truth) pair of binary masks, as the evaluate stage measures it."""
    options = EvaluateOptions(labels=("1",))
    return [next(iter(evaluate_pair(label, truth, options)["labels"].values()))["dice"] for label, truth in pairs]


def truth_path(dataset: Path, image: BidsName, structure: str = "sacrum") -> Path:
    """The phantom's ground-truth mask of ``structure`` on the grid of ``image``."""
    return (dataset / "derivatives" / "ground_truth" / subject_dir(image)
            / image.derivative(structure).filename)


def source_image(label: Path) -> BidsName:
    """The image a derivative label was made on (its name without the label entities)."""
    return BidsName.parse(label).source()


def ct_label_scores(dataset: Path, labels: Sequence[Path]) -> list[float]:
    """CT-label Dice: each CT label against the truth on its CT."""
    return dice_table([(p, truth_path(dataset, source_image(p))) for p in labels])


def transfer_scores(dataset: Path, transferred: Sequence[Path]) -> list[float]:
    """Transfer Dice: each label moved onto an MRI against the truth on that MRI."""
    return dice_table([(p, truth_path(dataset, source_image(p))) for p in transferred])


def _ct_truth_of(dataset: Path, mri: BidsName) -> Path:
    """The truth on the CT of ``mri``'s subject and session (the phantom has one CT per session)."""
    root = dataset / "derivatives" / "ground_truth" / f"sub-{mri.get('sub')}"
    for path in sorted(root.rglob("*_label-sacrum_seg.nii.gz")):
        image = source_image(path)
        if image.suffix == "CT" and image.get("ses") == mri.get("ses") and not image.get("ce"):
            return path
    raise FileNotFoundError(f"no CT ground truth for {mri.filename} in {root}")


def moved_truth_scores(dataset: Path, transferred: Sequence[Path]) -> list[float]:
    """The ceiling of each transfer: the CT's truth moved onto the MRI exactly as the label was
    (through the headers, then the registration's transform when it saved one), against the
    MRI's truth."""
    import SimpleITK as sitk

    scores = []
    for label in transferred:
        mri = source_image(label)
        truth = load_label(truth_path(dataset, mri))
        ct_truth = load_label(_ct_truth_of(dataset, mri))
        xfm = label.with_name(split_extension(label.name)[0] + "_xfm.txt")
        affine = ct_truth.grid.affine
        if xfm.is_file():
            affine = moved_label_affine(affine, transform_to_ras(sitk.ReadTransform(str(xfm))))
        moved = resample_label(ct_truth.data, affine, Grid(truth.grid.shape, truth.grid.affine), mode="nearest")
        scores.append(dice(moved, truth.data))
    return scores


def mean_min(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and minimum, or Nones for no values.

    >>> mean_min([0.5, 1.0]), mean_min([])
    ((0.75, 0.5), (None, None))
    """
    return (float(np.mean(values)), float(np.min(values))) if len(values) else (None, None)
