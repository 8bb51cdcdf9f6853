"""Where derivative datasets live: the ``derivatives`` folder of a raw dataset and the default
names of the folders the stages write in it (docs/conventions.md section 2).

Every stage and core module spells these names through the constants here, so a
folder is renamed in one place and a reader can find every writer of it.
"""

from __future__ import annotations

from pathlib import Path

#: The folder of a raw BIDS dataset that holds its derivative datasets.
DERIVATIVES = "derivatives"
#: TotalSegmentator outputs, manual labels and predictions (segment_ct, predict, bidsify).
LABELS = "labels"
#: Labels moved from the CT onto the MRI grids (register).
REG_LABELS = "reg-labels"
#: Images and labels cropped to an ROI (crop).
CROPPED = "cropped"
#: The phantoms' true labels (testing).
GROUND_TRUTH = "ground_truth"


def derivative_dir(raw_root: str | Path, name: str) -> Path:
    """``<raw_root>/derivatives/<name>``: the default home of a derivative dataset.

    >>> derivative_dir("/data/ds1", REG_LABELS).as_posix()
    '/data/ds1/derivatives/reg-labels'
    """
    return Path(raw_root) / DERIVATIVES / name


def in_derivatives(path: str | Path) -> bool:
    """Whether ``path`` lies inside some dataset's ``derivatives`` folder (a derived file).

    >>> in_derivatives("/d/derivatives/labels/sub-01/anat/x_seg.nii.gz"), in_derivatives("/d/sub-01/anat/x.nii.gz")
    (True, False)
    """
    return DERIVATIVES in Path(path).parts
