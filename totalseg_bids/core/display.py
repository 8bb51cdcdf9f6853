"""Intensity windowing to 8-bit pictures, shared by the QC views and the 2D slice export.

One convention everywhere a volume becomes a picture:

* a window is ``(width, level)`` (CT, in HU): the range ``[level - width/2,
  level + width/2]``; named presets are in :data:`WINDOWS`;
* without a window the range is two percentiles of the finite voxels (MRI);
  NaN and infinite voxels (outside a field of view) never move the range, and
  a flat image gets a unit range instead of a division by zero;
* :func:`to_uint8` maps the range linearly to 0..255, clipped, and NaN
  becomes 0 (black) *after* windowing, so an image with NaN outside its field
  of view shows as black there and correct grey values elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import UsageError

#: Named CT windows ``(width, level)`` in HU.
WINDOWS = {"brain": (80.0, 40.0), "bone": (2000.0, 500.0), "soft": (400.0, 40.0)}


def parse_window(text: str) -> tuple[float, float]:
    """``brain``/``bone``/``soft`` or ``W,L`` -> ``(width, level)``.

    >>> parse_window("bone"), parse_window("1500,300")
    ((2000.0, 500.0), (1500.0, 300.0))
    >>> parse_window("0,40")
    Traceback (most recent call last):
    ...
    totalseg_bids.core.errors.UsageError: window width must be > 0 in '0,40'; e.g. 400,40
    """
    if text in WINDOWS:
        return WINDOWS[text]
    try:
        w, lvl = (float(x) for x in text.split(","))
    except ValueError:
        raise UsageError(f"bad window {text!r}", None, f"use {', '.join(WINDOWS)} or W,L e.g. 1500,300") from None
    if not w > 0:
        raise UsageError(f"window width must be > 0 in {text!r}", None, "e.g. 400,40")
    return w, lvl


def window_range(window: tuple[float, float]) -> tuple[float, float]:
    """``(low, high)`` of a ``(width, level)`` window.

    >>> window_range((1500.0, 300.0))
    (-450.0, 1050.0)
    """
    width, level = window
    return float(level - width / 2), float(level + width / 2)


def percentile_range(values: np.ndarray, percentiles: Sequence[float] = (1.0, 99.0)) -> tuple[float, float]:
    """``(low, high)`` percentiles of the finite values; a flat or empty input gets a unit range.

    The array keeps its dtype (no float64 copy of a large volume); non-finite
    voxels are dropped only when there are any.

    >>> percentile_range(np.arange(101.0), (1, 99))
    (1.0, 99.0)
    >>> percentile_range(np.array([np.nan, 0.0, 10.0, np.inf]), (0, 100))
    (0.0, 10.0)
    >>> percentile_range(np.full(4, 7.0)), percentile_range(np.array([np.nan]))
    ((7.0, 8.0), (0.0, 1.0))
    """
    v = np.asarray(values)
    if np.issubdtype(v.dtype, np.floating):
        finite = np.isfinite(v)
        if not finite.all():
            v = v[finite]
    if not v.size:
        return 0.0, 1.0
    lo, hi = (float(x) for x in np.percentile(v, percentiles))
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


def intensity_range(values: np.ndarray, window: tuple[float, float] | None,
                    percentiles: Sequence[float] = (1.0, 99.0)) -> tuple[float, float]:
    """``(low, high)`` of ``window`` when given, else :func:`percentile_range` of ``values``.

    >>> intensity_range(np.arange(101.), None, (1, 99))
    (1.0, 99.0)
    >>> intensity_range(np.zeros(3), (80.0, 40.0), (1, 99))
    (0.0, 80.0)
    """
    if window is not None:
        return window_range(window)
    return percentile_range(values, percentiles)


def to_uint8(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map ``[low, high]`` linearly to 0..255, clipped; NaN becomes 0 after windowing.

    An empty range (``high <= low``) gives an all-black picture.

    >>> to_uint8(np.array([-1.0, 0.0, 0.5, 1.0, 2.0, np.nan]), 0.0, 1.0).tolist()
    [0, 0, 128, 255, 255, 0]
    >>> to_uint8(np.array([-1000., 40., 80., 3000.]), 0., 80.).tolist()
    [0, 128, 255, 255]
    >>> to_uint8(np.array([5.0, np.nan]), 5.0, 5.0).tolist()
    [0, 0]
    """
    if not high > low:
        return np.zeros(np.shape(values), np.uint8)
    scaled = (np.asarray(values, dtype=np.float32) - low) / (high - low) * 255.0
    scaled = np.nan_to_num(scaled, nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
