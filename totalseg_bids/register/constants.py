"""Names, defaults and registration settings shared by the register modules."""

from __future__ import annotations


import numpy as np

from ..core.bids import CT_SUFFIXES

METHODS = ("header", "rigid", "affine", "sct", "ants-rigid", "ants-affine", "ants-syn")
INTERPOLATIONS = ("nearest", "label")
DEFAULT_CONTRASTS = ("T1w", "T2w")
DEFAULT_CT_SUFFIXES = CT_SUFFIXES
DEFAULT_LABEL = "sacrum"
SCT_COMMAND = "sct_register_multimodal"
SCT_TIMEOUT_S = 1800
#: CT window (HU) fed to registration: soft tissue to bone, air and metal clipped,
#: so mutual information is driven by anatomy rather than the table or streaks.
CT_WINDOW_HU = (-200.0, 1000.0)
#: Registration works on a CT resampled to at least this spacing (mm): MRI grids
#: are coarser anyway (phantoms: 3 mm halves the time at the same Dice as 2 mm).
REGISTRATION_MIN_SPACING_MM = 3.0
#: Fixed seed and one thread: ITK's threaded metric sums in a varying order,
#: so only single-threaded registration gives bit-identical transforms across
#: runs and ``-j`` values (measured: no slower on 2 cores; parallelism comes
#: from ``-j`` over subjects).
REGISTRATION_SEED = 20240601
REGISTRATION_THREADS = 1
#: share of the MRI voxels sampled for the quality figures (metric with the headers and after)
REGISTRATION_SAMPLING = 0.05
#: Pyramid, sampling and optimiser of rigid/affine, profiled on the phantom pairs
#: (benchmarks/bench_register.py): three levels are needed from 20 mm / 15 deg; the coarse levels
#: get a large share of their few voxels and stop at a 0.05 mm step; the full-resolution level
#: samples 3 % (its iterations are what costs) and refines from a 0.25 mm step down to 0.01 mm.
REGISTRATION_SCHEDULE = {"shrink": (4, 2, 1), "sigma_mm": (2.0, 1.0, 0.0), "sampling": (0.2, 0.1, 0.03),
                         "iterations": 100, "learning_rate": 1.0, "min_step": 0.01, "bins": 24,
                         "coarse_min_step": 0.05, "fine_learning_rate": 0.25}
_RAS_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
