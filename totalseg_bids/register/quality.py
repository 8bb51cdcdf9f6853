"""How far a registration moved the label, and whether to trust it."""

from __future__ import annotations

import numpy as np

from .constants import METRIC_WORSE_TOLERANCE
from .options import RegOptions


def correction_size(ct_from_mri: np.ndarray, point: np.ndarray) -> tuple[float, float]:
    """(shift at ``point`` in mm, rotation angle in degrees) of a RAS 4x4 transform.

    >>> t = np.eye(4); t[0, 3] = 3.0; t[1, 3] = 4.0
    >>> correction_size(t, np.zeros(3))
    (5.0, 0.0)
    """
    m = np.asarray(ct_from_mri, float)
    p = np.asarray(point, float)
    shift = float(np.linalg.norm(m[:3, :3] @ p + m[:3, 3] - p))
    u, _, vt = np.linalg.svd(m[:3, :3])
    r = u @ vt
    angle = float(np.degrees(np.arccos(np.clip((np.trace(r) - 1) / 2, -1.0, 1.0))))
    return round(shift, 3), round(angle, 3)


def quality_flags(metric_header: float | None, metric_after: float, shift_mm: float, rotation_deg: float,
                  opts: RegOptions, header_shift_mm: float = 0.0, edges: float | None = None) -> dict[str, bool]:
    """Sidecar keys of a suspicious registration (empty dict: nothing suspicious).

    The Mattes metric is lower when better; ``header_shift_mm`` is the part of
    the correction an ``--init`` other than header asked for on purpose;
    ``edges`` is the :func:`edge_contrast` of the label on the MRI, the one
    figure that does not trust the optimiser's own metric.

    >>> quality_flags(-0.5, -0.4, 2.0, 1.0, RegOptions())
    {'MetricWorseThanHeader': True}
    >>> quality_flags(-0.806, -0.804, 0.3, 0.2, RegOptions())  # an aligned header, kept within noise
    {}
    >>> quality_flags(-0.5, -0.6, 50.0, 1.0, RegOptions())
    {'CorrectionBeyondLimit': True}
    >>> quality_flags(None, -0.6, 2.0, 1.0, RegOptions())
    {}
    >>> quality_flags(-0.5, -0.6, 2.0, 1.0, RegOptions(), edges=1.1)
    {'LabelEdgesWeak': True}
    """
    flags: dict[str, bool] = {}
    if metric_header is not None and metric_after > metric_header + METRIC_WORSE_TOLERANCE * abs(metric_header):
        flags["MetricWorseThanHeader"] = True
    if shift_mm - header_shift_mm > opts.max_shift_mm or rotation_deg > opts.max_rotation_deg:
        flags["CorrectionBeyondLimit"] = True
    if edges is not None and edges < opts.min_edge_contrast:
        flags["LabelEdgesWeak"] = True
    return flags


def label_centre(data: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """World centre (RAS) of a label's voxels (the image centre when empty).

    From per-axis voxel counts, without an (N, 3) index array.

    >>> m = np.zeros((3, 3, 3)); m[2, 1, 0] = 1
    >>> label_centre(m, np.eye(4)).tolist()
    [2.0, 1.0, 0.0]
    """
    mask = np.asarray(data) > 0
    total = int(mask.sum())
    if not total:
        centre = (np.asarray(np.shape(data), float) - 1) / 2
    else:
        axes = ((1, 2), (0, 2), (0, 1))
        centre = np.array([float(np.arange(mask.shape[a]) @ mask.sum(axis=axes[a], dtype=np.int64)) / total
                           for a in range(3)])
    return np.asarray(affine, float)[:3, :3] @ centre + np.asarray(affine, float)[:3, 3]


def edge_contrast(mri: np.ndarray, label: np.ndarray) -> float | None:
    """How much sharper the MRI is on the label's boundary than around it.

    Mean gradient magnitude (Gaussian, 1 voxel) on the label's one-voxel
    boundary over the mean in a band 2-4 voxels away on both sides: a label
    sitting on its structure's edges gives several times 1, a misplaced one
    about 1, whatever the metric says. Computed on the label's bounding box
    only. None for an empty label.

    >>> img = np.zeros((24, 24, 24), np.float32); img[8:16, 8:16, 8:16] = 100
    >>> lab = (img > 0).astype(np.uint8)
    >>> edge_contrast(img, lab) > 3 > edge_contrast(img, np.roll(lab, 4, axis=0))
    True
    """
    from scipy import ndimage

    lab = np.asarray(label) > 0
    if not lab.any():
        return None
    box = tuple(slice(max(0, int(idx.min()) - 6), int(idx.max()) + 7)
                for idx in (np.nonzero(lab.any(axis=ax))[0] for ax in ((1, 2), (0, 2), (0, 1))))
    lab = lab[box]
    grad = ndimage.gaussian_gradient_magnitude(np.asarray(mri, np.float32)[box], sigma=1.0)
    cross = ndimage.generate_binary_structure(3, 1)
    grown = [ndimage.binary_dilation(lab, cross, iterations=k) for k in (1, 2, 4)]
    shrunk = [ndimage.binary_erosion(lab, cross, iterations=k) for k in (1, 2)]
    boundary = grown[0] & ~shrunk[0]
    band = (grown[2] & ~grown[1]) | shrunk[1]
    if not band.any():
        return None
    return round(float(grad[boundary].mean() / max(float(grad[band].mean()), 1e-6)), 3)
