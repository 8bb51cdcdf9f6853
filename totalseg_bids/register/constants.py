"""Names, defaults and registration settings shared by the register modules."""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

from ..core.bids import CT_SUFFIXES
from ..core.geometry import LabelInterp

#: How a CT label reaches the MRI grid: through the headers, SimpleITK, SCT or ANTs.
Method = Literal["header", "rigid", "affine", "sct", "ants-rigid", "ants-affine", "ants-syn"]
METHODS: tuple[str, ...] = get_args(Method)
INTERPOLATIONS: tuple[str, ...] = get_args(LabelInterp)
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
#: Pyramid, sampling and optimiser of rigid/affine, per level, profiled on the phantom pairs
#: (benchmarks/bench_register.py): three levels are needed from 20 mm / 15 deg. An iteration costs
#: about 0.15 / 0.6 / 1.5 ms at levels 1 / 2 / 3, so the coarse levels do the travelling (a large
#: share of their few voxels, steps from 1 mm down to 0.05 mm) and the full-resolution level, 3 %
#: sampled, only refines (from 0.25 mm down to 0.01 mm).
REGISTRATION_SCHEDULE = {"shrink": (4, 2, 1), "sigma_mm": (2.0, 1.0, 0.0), "sampling": (0.2, 0.1, 0.03),
                         "learning_rate": (1.0, 0.5, 0.25), "min_step": (0.05, 0.05, 0.01),
                         "iterations": 100, "bins": 24}
#: How much worse than the header's (relative) the quality metric may end before a pair is flagged: the
#: metric is evaluated on every other MRI voxel, and a registration that keeps an already aligned header
#: within a fraction of a voxel leaves it a few tenths of a percent either side.
METRIC_WORSE_TOLERANCE = 0.01
_RAS_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
