"""Tiny local TotalSegmentator weights, installed once per test session, and the phantom CTs they are scored on.

``totalseg_bids.testing.tiny_totalseg.build`` installs the tiny nnU-Net network
shipped with the package (trained on phantom images) under every weight folder
the installed TotalSegmentator loads for ``total`` and ``total_mr``. Set
``TOTALSEG_BIDS_TINY_WEIGHTS`` to a folder to keep the build between sessions
(the demo reuses it); a complete build there is reused, anything else redone.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from totalseg_bids.core.nifti import Grid
from totalseg_bids.testing.anatomy import STRUCTURES, Anatomy, make_affine, render, rotation_matrix
from totalseg_bids.testing.tiny_totalseg import build
from totalseg_bids.totalsegmentator import home_env

#: Environment variable naming a folder that keeps the tiny weights between sessions.
CACHE_ENV = "TOTALSEG_BIDS_TINY_WEIGHTS"
TASKS = ("total", "total_mr")
#: Lowest sacrum Dice on the phantom CTs (RAS, LPS, oblique; TotalSegmentator's 1.5 mm and --fast 3 mm models).
MIN_DICE = 0.9
#: Lowest sacrum Dice on the phantom T1w (TotalSegmentator's MR models at 1.5 mm).
MIN_DICE_MR = 0.8
_CACHE: dict[str, Path] = {}
BUILD_SECONDS: dict[str, float] = {}


def totalseg_env(home: Path) -> dict:
    """Environment for a real TotalSegmentator run on the tiny weights (no usage statistics:
    the home's config.json turns them off; TOTALSEG_WEIGHTS_PATH would override the home)."""
    return home_env(home)


@pytest.fixture(scope="session")
def tiny_totalseg_home(tmp_path_factory) -> Path:
    """A TOTALSEG_HOME_DIR holding the tiny weights for ``total`` and ``total_mr``."""
    if "home" not in _CACHE:
        home = Path(os.environ[CACHE_ENV]) if os.environ.get(CACHE_ENV) else tmp_path_factory.mktemp("totalseg_home")
        t = time.perf_counter()
        build(home, TASKS)
        BUILD_SECONDS["build"] = time.perf_counter() - t
        _CACHE["home"] = home
    return _CACHE["home"]


def truth(ds: Path, image: Path, structure: str) -> np.ndarray:
    """The phantom's ground truth of ``structure`` on ``image``'s grid."""
    stem = image.name[: -len(".nii.gz")]
    gt = ds / "derivatives" / "ground_truth" / image.parent.relative_to(ds) / f"{stem}_label-phantom_dseg.nii.gz"
    return np.asarray(nib.load(gt).dataobj) == STRUCTURES.index(structure) + 1


def add_oblique_ct(ds: Path, sub: str = "09") -> Path:
    """A CT whose axes are rotated 15 degrees about two axes (and LPS), with its ground truth."""
    dirs = rotation_matrix([0, 0, 1], 15) @ rotation_matrix([1, 0, 0], 15) @ np.diag([-1.0, -1.0, 1.0])
    shape = (90, 70, 75)
    grid = Grid(shape, make_affine(dirs, [2.0] * 3, shape, [0.27, -5.31, 5.18]))
    img, labels = render(Anatomy(1.0, np.zeros(3)), grid, "CT", np.random.default_rng(3))
    path = ds / f"sub-{sub}" / "anat" / f"sub-{sub}_CT.nii.gz"
    path.parent.mkdir(parents=True)
    nib.save(nib.Nifti1Image(np.clip(np.rint(img), -1024, 3071).astype(np.int16), grid.affine), path)
    gt = ds / "derivatives" / "ground_truth" / f"sub-{sub}" / "anat" / f"sub-{sub}_CT_label-phantom_dseg.nii.gz"
    gt.parent.mkdir(parents=True)
    nib.save(nib.Nifti1Image(labels, grid.affine), gt)
    return path
