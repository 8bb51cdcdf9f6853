"""The phantom's ground truth on every image of a bidsified layout.

A layout ships what its publisher ships (often no sacrum label on the MRI);
the demo scores transferred labels and predictions against the truth, so it
is rendered here on each converted image's own grid, exactly as
``python -m totalseg_bids.phantoms`` writes ``derivatives/ground_truth``.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from ...core.atomic import atomic_write_json
from ...core.bids import BidsName, subject_dir
from ...core.derivatives import ensure_dataset_description, generated_by, write_sidecar
from ...core.nifti import Grid, save_mask
from ..anatomy import STRUCTURES, grid_coordinates
from ..phantoms import misalignment_record
from .common import anatomy_of


def phantom_index(source_id: str) -> int:
    """Which phantom subject a layout's id stands for (its last number, counted from 1).

    >>> phantom_index("1PA003"), phantom_index("PAT01"), phantom_index("1_02_P")
    (2, 0, 1)
    """
    numbers = re.findall(r"\d+", source_id)
    if not numbers:
        raise ValueError(f"no number in {source_id!r}")
    return int(numbers[-1]) - 1


def write_ground_truth(bids_dir: str | Path, seed: int = 0, structures=STRUCTURES[:2]) -> Path:
    """``derivatives/ground_truth`` of ``bids_dir``; return that folder."""
    import nibabel as nib

    root = Path(bids_dir)
    with open(root / "participants.tsv", newline="", encoding="utf-8") as fh:
        index = {r["participant_id"]: phantom_index(r["source_id"]) for r in csv.DictReader(fh, delimiter="\t")}
    gt_root = root / "derivatives" / "ground_truth"
    ensure_dataset_description(gt_root, "ground_truth", "phantom anatomy rendered on every image grid")
    tool = generated_by("totalseg_bids.testing.layouts", seed=seed)
    for path in sorted(root.glob("sub-*/**/*.nii.gz")):
        name = BidsName.parse(path.name)
        img = nib.load(str(path))
        anatomy, _ = anatomy_of(index[f"sub-{name.get('sub')}"], seed)
        cls = anatomy.classes_xyz(*grid_coordinates(Grid(tuple(img.shape[:3]), img.affine)))
        for i, structure in enumerate(structures):
            gt = gt_root / subject_dir(name) / name.derivative(structure).filename
            save_mask((cls == 3 + i).astype(np.uint8), img.affine, gt)
            write_sidecar(gt, [path], [tool], raw_root=root)
    atomic_write_json(misalignment_record(root), {"subjects": [
        {"subject": sub[4:], "session": None, "misaligned": False} for sub in sorted(index)]})
    return gt_root
