"""World-coordinate helpers: RAS/LPS conversion and moving a label through a transform."""

from __future__ import annotations

import numpy as np

from .constants import _RAS_LPS


def ras_lps(matrix: np.ndarray) -> np.ndarray:
    """Convert a 4x4 world transform between RAS (nibabel) and LPS (ITK).

    The conversion is its own inverse.

    >>> m = np.eye(4); m[:3, 3] = [1.0, 2.0, 3.0]
    >>> ras_lps(m)[:3, 3].tolist()
    [-1.0, -2.0, 3.0]
    >>> bool(np.allclose(ras_lps(ras_lps(m)), m))
    True
    """
    return _RAS_LPS @ np.asarray(matrix, float) @ _RAS_LPS


def moved_label_affine(label_affine: np.ndarray, ct_from_mri: np.ndarray) -> np.ndarray:
    """The label affine that makes header resampling apply ``ct_from_mri``.

    ``ct_from_mri`` maps an MRI world point to the CT world point that holds
    the same anatomy (RAS). Resampling reads ``label[inv(A) @ T @ y]`` for each
    MRI point ``y``, which is header resampling with ``A' = inv(T) @ A``: one
    code path (bounding-box cropping, per-label linear) for every method.

    >>> a = np.diag([2.0, 2.0, 2.0, 1.0])
    >>> bool(np.allclose(moved_label_affine(a, np.eye(4)), a))
    True
    >>> t = np.eye(4); t[0, 3] = 5.0
    >>> float(moved_label_affine(a, t)[0, 3])
    -5.0
    """
    return np.linalg.inv(np.asarray(ct_from_mri, float)) @ np.asarray(label_affine, float)
