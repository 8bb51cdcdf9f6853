"""SimpleITK registration of the CT (moving) to the MRI (fixed)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..core.atomic import atomic_path
from ..core.errors import ExternalToolError, UsageError
from ..core.nifti import Volume
from .constants import (
    _RAS_LPS,
    CT_WINDOW_HU,
    REGISTRATION_MIN_SPACING_MM,
    REGISTRATION_SAMPLING,
    REGISTRATION_SCHEDULE,
    REGISTRATION_SEED,
    REGISTRATION_THREADS,
)
from .header import ras_lps

log = logging.getLogger(__name__)


def to_sitk(data: np.ndarray, affine: np.ndarray):
    """A float32 SimpleITK image with the geometry of (data, RAS affine).

    We build it from nibabel's array and affine of record rather than letting
    ITK read the file, because ITK and nibabel disagree on qform vs sform.
    """
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(data, np.float32).transpose(2, 1, 0)))
    lps = _RAS_LPS @ np.asarray(affine, float)
    spacing = np.sqrt((lps[:3, :3] ** 2).sum(axis=0))
    img.SetSpacing([float(s) for s in spacing])
    img.SetOrigin([float(o) for o in lps[:3, 3]])
    img.SetDirection([float(d) for d in (lps[:3, :3] / spacing).ravel()])
    return img


def transform_to_ras(transform) -> np.ndarray:
    """4x4 RAS ``ct_from_mri`` matrix of a SimpleITK linear transform (LPS)."""
    import SimpleITK as sitk

    if isinstance(transform, sitk.CompositeTransform):
        transform.FlattenTransform()
        if transform.GetNumberOfTransforms() != 1:
            raise ExternalToolError("registration returned a composite transform", None,
                                    "report this with the input files")
    transform = _single(transform)
    tx = sitk.AffineTransform(3)
    tx.SetMatrix(transform.GetMatrix())
    tx.SetCenter(transform.GetCenter())
    tx.SetTranslation(transform.GetTranslation())
    a = np.array(tx.GetMatrix(), float).reshape(3, 3)
    c = np.array(tx.GetCenter(), float)
    m = np.eye(4)
    m[:3, :3] = a
    m[:3, 3] = np.array(tx.GetTranslation(), float) + c - a @ c
    return ras_lps(m)


def block_reduce(data: np.ndarray, factors: tuple[int, ...], how: str = "mean") -> np.ndarray:
    """Mean (or max) over non-overlapping blocks of ``factors`` voxels (the remainder is dropped):
    an anti-aliased downsampling many times faster than a Gaussian then a resampling.

    >>> block_reduce(np.arange(8, dtype=np.float32).reshape(2, 2, 2), (2, 1, 1)).tolist()
    [[[2.0, 3.0], [4.0, 5.0]]]
    """
    f = [max(1, int(v)) for v in factors]
    n = [s // k for s, k in zip(data.shape, f)]
    cut = np.asarray(data[: n[0] * f[0], : n[1] * f[1], : n[2] * f[2]], np.float32)
    blocks = cut.reshape(n[0], f[0], n[1], f[1], n[2], f[2])
    return blocks.max(axis=(1, 3, 5)) if how == "max" else blocks.mean(axis=(1, 3, 5), dtype=np.float32)


def coarse(data: np.ndarray, affine: np.ndarray, how: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """``data`` block-reduced to about REGISTRATION_MIN_SPACING_MM (never finer than it was), with its affine."""
    affine = np.asarray(affine, float).copy()
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    factors = np.array([int(max(1, np.floor(REGISTRATION_MIN_SPACING_MM / s + 1e-6))) for s in spacing])
    if factors.max() == 1:
        return np.asarray(data, np.float32), affine
    # a block's centre sits (f - 1) / 2 voxels from its first voxel
    affine[:3, 3] = affine[:3, :3] @ ((factors - 1) / 2) + affine[:3, 3]
    affine[:3, :3] = affine[:3, :3] * factors
    return block_reduce(data, tuple(factors), how), affine


def _registration_moving(ct: Volume):
    """CT windowed and block-averaged to about REGISTRATION_MIN_SPACING_MM.

    The MRI grids are coarser than a CT anyway; registering against a 3 mm CT
    halves the time at the same Dice as 2 mm. Cached per CT volume (the MRIs of
    one session share their CT, read once by methods._load_ct).
    """
    import weakref

    ref = _MOVING_CACHE.get("ct")
    if ref is not None and ref() is ct:
        return _MOVING_CACHE["image"]
    moving = to_sitk(*coarse(np.clip(ct.data, *CT_WINDOW_HU), ct.affine))
    _MOVING_CACHE.clear()
    _MOVING_CACHE.update(ct=weakref.ref(ct), image=moving)
    return moving


def smoothed(image, sigma_mm: float, cache: dict | None = None):
    """``image`` smoothed by a Gaussian of ``sigma_mm`` (per axis in voxels from its spacing); the same
    image for 0.

    The registration pyramid's own smoothing is a discrete Gaussian redone at
    every level of every pair (about 17 ms a level on these small images,
    several times the level's iterations); scipy's separable filter on the
    array takes about 2 ms. ``cache`` keeps the smoothed CT of a session for
    its other MRIs.
    """
    import SimpleITK as sitk
    from scipy import ndimage

    if sigma_mm <= 0:
        return image
    if cache is not None and sigma_mm in cache:
        return cache[sigma_mm]
    sigma = [sigma_mm / s for s in image.GetSpacing()[::-1]]  # array axes are z, y, x
    out = sitk.GetImageFromArray(ndimage.gaussian_filter(sitk.GetArrayViewFromImage(image), sigma, mode="nearest",
                                                         truncate=3.0))
    out.CopyInformation(image)
    if cache is not None:
        cache[sigma_mm] = out
    return out


#: the last prepared CT (one entry, held by a weak reference to its volume)
_MOVING_CACHE: dict = {}


def _method(seed: int, optimise: bool = True, level: int = 0):
    """The configured SimpleITK registration (metric, optimiser, one pyramid ``level`` of
    REGISTRATION_SCHEDULE, whose smoothing :func:`_run_from` applies beforehand), no transform yet.

    ``optimise=False`` gives the cheaper evaluator of the quality figures: the
    same metric, without the gradient images only the optimiser needs.
    """
    import SimpleITK as sitk

    s = REGISTRATION_SCHEDULE
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=s["bins"])
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(REGISTRATION_SAMPLING, seed)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetNumberOfThreads(REGISTRATION_THREADS)
    # gradients at the few sampled points only: filtering the whole moving image for its gradient
    # at every level costs more than the samples (measured: about a fifth of the time per pair)
    reg.MetricUseMovingImageGradientFilterOff()
    if not optimise:
        reg.MetricUseFixedImageGradientFilterOff()
        return reg
    reg.SetOptimizerAsRegularStepGradientDescent(learningRate=s["learning_rate"][level],
                                                 minStep=s["min_step"][level],
                                                 numberOfIterations=s["iterations"], relaxationFactor=0.5,
                                                 gradientMagnitudeTolerance=1e-6)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([s["shrink"][level]])
    reg.SetSmoothingSigmasPerLevel([0.0])
    reg.SetMetricSamplingPercentagePerLevel([s["sampling"][level]], seed)
    return reg


def focus_mask(label: np.ndarray, affine: np.ndarray, focus_mm: float):
    """The CT label dilated by ``focus_mm`` as a SimpleITK mask (the metric's support), on the
    registration's coarse CT grid."""
    import SimpleITK as sitk

    mask = sitk.Cast(to_sitk(*coarse((np.asarray(label) > 0).astype(np.float32), affine, "max")), sitk.sitkUInt8)
    spacing = np.array(mask.GetSpacing())
    radius = [int(np.ceil(focus_mm / s)) for s in spacing]
    return sitk.BinaryDilate(mask, radius, sitk.sitkBall) if focus_mm > 0 else mask


def _initial(kind: str, fixed, moving, init: str):
    """Start transform: headers (identity), or centres of geometry/moments aligned."""
    import SimpleITK as sitk

    initial = sitk.Euler3DTransform() if kind == "rigid" else sitk.AffineTransform(3)
    if init == "header":
        initial.SetCenter(fixed.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2.0 for s in fixed.GetSize()]))
        return initial
    mode = (sitk.CenteredTransformInitializerFilter.GEOMETRY if init == "geometry"
            else sitk.CenteredTransformInitializerFilter.MOMENTS)
    return sitk.CenteredTransformInitializer(fixed, moving, initial, mode)


def register_ct_to_mri(ct: Volume, mri: Volume, kind: str = "rigid", seed: int = REGISTRATION_SEED,
                       init: str = "header", mask=None) -> tuple:
    """Rigid or affine SimpleITK transform (LPS) mapping MRI points to CT points.

    Mattes mutual information (CT and MRI intensities are unrelated), starting
    from ``init`` (headers, or aligned centres for frames with no common origin),
    the pyramid, per-level random sampling (fixed seed) and regular-step
    gradient descent of REGISTRATION_SCHEDULE with physical-shift scales.
    ``mask`` (CT space) restricts the metric to the structure at every level,
    from ``init`` while at least FOCUS_START_INSIDE of the focus region starts
    inside the MRI (a whole-image start would let a moving neighbour pull it
    off), else from where a coarse whole-image registration brings it in.
    Returns (transform, metric with the headers or None, final metric).
    """
    import SimpleITK as sitk

    if kind not in ("rigid", "affine"):
        raise UsageError(f"unknown registration kind {kind!r}", None, "use rigid or affine")
    fixed = to_sitk(mri.data, mri.affine)
    moving = _registration_moving(ct)
    previous = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(REGISTRATION_THREADS)  # the pyramid filters too
    try:
        initial = _initial(kind, fixed, moving, init)
        levels = _pyramid(fixed, moving)
        start = initial
        if mask is not None and _share_inside(mask, fixed, initial) < FOCUS_START_INSIDE:
            start = _whole_image_start(levels, fixed, initial, seed)
        result, evaluator = _run_from(levels, fixed, start, mask, seed)
        grid = _evaluation_grid(fixed)
        final = _metric(evaluator, grid, moving, result)
        header_metric = _metric(evaluator, grid, moving, sitk.Euler3DTransform())
    except RuntimeError as exc:
        raise ExternalToolError(f"SimpleITK registration failed ({str(exc).splitlines()[-1][:160]})",
                                mri.path, "check that the CT and MRI show the same anatomy, try --init "
                                "geometry, or use --method header") from None
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(previous)
    log.debug("%s: %s, metric %s -> %s", mri.path, kind, header_metric, final)
    if final is None:
        raise ExternalToolError("SimpleITK registration ended with no overlap between CT and MRI", mri.path,
                                "check that the CT and MRI show the same anatomy, or try --init geometry")
    return result, header_metric, final


def _pyramid(fixed, moving) -> list[tuple]:
    """(fixed, moving) smoothed for each level of REGISTRATION_SCHEDULE, once per pair
    (the smoothed CT once per session, :func:`smoothed`'s cache)."""
    cache = _MOVING_CACHE.setdefault("smoothed", {})
    return [(smoothed(fixed, sigma), smoothed(moving, sigma, cache)) for sigma in REGISTRATION_SCHEDULE["sigma_mm"]]


def _run_from(levels: list[tuple], fixed, start, mask, seed: int) -> tuple:
    """One registration from ``start`` (focused on ``mask`` where given): (transform, the quality
    evaluator, focused like the registration).

    One pass per pyramid level on the images of :func:`_pyramid`. The coarse
    levels stop at a coarse step (they only need to bring the structure within
    a voxel); the full-resolution level starts with a small step, so its costly
    iterations refine instead of travelling.
    """
    transform = start
    for level in range(len(levels)):
        transform = _level(levels, fixed, transform, mask, seed, level)
    evaluator = _method(seed, optimise=False)
    if mask is not None:
        _restrict(None, evaluator, fixed, mask, transform, seed)
    return transform, evaluator


def _level(levels: list[tuple], fixed, start, mask, seed: int, level: int):
    """One pyramid level of :func:`_run_from`, from ``start``."""
    reg = _method(seed, level=level)
    if mask is not None:
        _restrict(reg, None, fixed, mask, start, seed)
    reg.SetInitialTransform(start, inPlace=False)
    return _single(reg.Execute(*levels[level]))


#: a focused registration starts from ``--init`` when at least this share of the focus region
#: lies inside the MRI there; below it, a coarse whole-image registration first brings it in
FOCUS_START_INSIDE = 0.1


def _share_inside(mask, fixed, transform) -> float:
    """Share of the focus region (CT space) that ``transform`` maps inside the MRI's field of view."""
    import SimpleITK as sitk

    on_fixed = sitk.Resample(mask, fixed, transform, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    inside = float(sitk.GetArrayViewFromImage(on_fixed).sum()) * float(np.prod(fixed.GetSpacing()))
    total = float(sitk.GetArrayViewFromImage(mask).sum()) * float(np.prod(mask.GetSpacing()))
    return inside / total if total else 0.0


def _whole_image_start(levels: list[tuple], fixed, initial, seed: int):
    """The coarse levels of a whole-image registration from ``initial``: a start for a focused one
    that is within reach even when the image centres are far apart (a partial MRI field of view)."""
    transform = initial
    for level in range(len(levels) - 1):
        transform = _level(levels, fixed, transform, None, seed, level)
    return transform


def _single(transform):
    """The one linear transform inside a registration's composite result."""
    import SimpleITK as sitk

    if isinstance(transform, sitk.CompositeTransform):
        transform.FlattenTransform()
        transform = transform.GetNthTransform(0)
    return transform.Downcast()


def _restrict(reg, evaluator, fixed, mask, initial, seed: int) -> None:
    """Metric only where the focus mask is: on the CT, and on the MRI where the start transform puts it
    (for the registration ``reg`` and/or the quality ``evaluator``; None: not that one).

    The random samples are drawn on the MRI grid; sampling more of it keeps
    about as many samples inside a small focus region as the whole image gets.
    """
    import SimpleITK as sitk

    on_fixed = sitk.Resample(mask, fixed, initial, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    share = float(sitk.GetArrayViewFromImage(on_fixed).mean())
    if share <= 0:
        return  # the start puts the focus outside the MRI: let the whole image bring it in
    for r in (reg, evaluator):
        if r is not None:
            r.SetMetricMovingMask(mask)
            r.SetMetricSamplingPercentage(min(1.0, REGISTRATION_SAMPLING / share), seed)


def _evaluation_grid(fixed):
    """Every other MRI voxel along each axis of 32 voxels or more: SimpleITK's evaluation reads
    every fixed voxel whatever the sampling set, and this grid gives the same comparison
    (headers vs result) at a fifth of the cost."""
    import SimpleITK as sitk

    return sitk.Shrink(fixed, [2 if n >= 32 else 1 for n in fixed.GetSize()])


def _metric(reg, grid, moving, transform) -> float | None:
    """The metric at ``transform`` on ``grid`` (None where the images do not overlap)."""
    reg.SetInitialTransform(transform, inPlace=False)
    try:
        return float(reg.MetricEvaluate(grid, moving))
    except RuntimeError:
        return None


def transform_record(transform) -> dict:
    """The transform as sidecar JSON: ITK type and parameters, enough to rebuild
    it (``sitk.<Type>()``, ``SetFixedParameters``, ``SetParameters``)."""
    return {"Type": transform.GetName(), "Parameters": [float(v) for v in transform.GetParameters()],
            "FixedParameters": [float(v) for v in transform.GetFixedParameters()]}


def write_transform(transform, path: Path) -> Path:
    """Save a SimpleITK transform atomically (ITK text format for ``.txt``)."""
    import SimpleITK as sitk

    with atomic_path(path) as tmp:
        sitk.WriteTransform(transform, str(tmp))
    return path
