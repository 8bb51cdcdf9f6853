"""Crop options: which ROI and labels, how much margin, what resampling; built once and passed down."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from ..core.bids import Naming
from ..core.errors import UsageError
from ..core.folders import LABELS
from ..core.geometry import LABEL_INTERPOLATIONS, LabelInterp
from ..core.options import BatchOptions, normalise_fields
from .naming import res_value

#: How images are resampled: linear, or cubic B-spline (the spline order of each).
ImageInterp = Literal["linear", "bspline"]
IMAGE_ORDERS: dict[str, int] = dict(zip(get_args(ImageInterp), (1, 3)))
DEFAULT_CONTRASTS = ("CT", "T1w", "T2w")


@dataclass(frozen=True, kw_only=True)
class CropOptions(BatchOptions):
    """How cases are found (ROI, labels, contrasts), cut, resampled, named and run.

    ``roi_label``: the ROI structure (``label-<name>``); ``roi_dir``: a derivative
    name inside ``<bids>/derivatives/`` or a path; ``label_dir``/``label_suffix``:
    labels cropped along (``--bids-dir`` only); at most one of ``spacing``,
    ``factor``, ``shape``. The batch options (:class:`~totalseg_bids.core.options.BatchOptions`)
    say where cases run, whether done outputs are redone, and datalad.

    >>> CropOptions(roi_label="sacrum", spacing=[2, 2, 2]).res
    '2mm'
    >>> CropOptions(roi_label="sacrum", factor=3, shape=(8, 8, 8))
    Traceback (most recent call last):
    ...
    totalseg_bids.core.errors.UsageError: --spacing, --factor and --shape are alternatives; give at most one
    """

    roi_label: str
    roi_dir: str | Path = LABELS
    contrasts: tuple[str, ...] = DEFAULT_CONTRASTS
    label_dir: str | None = LABELS
    label_suffix: str | None = None
    datasets_path: str | None = None
    margin_mm: float = 20.0
    spacing: tuple[float, float, float] | None = None
    factor: float | None = None
    shape: tuple[int, int, int] | None = None
    image_interp: ImageInterp = "linear"
    label_interp: LabelInterp = "nearest"
    naming: Naming = "neuropoly"

    def __post_init__(self) -> None:
        normalise_fields(self, tuples=("spacing", "shape", "contrasts"))
        if sum(x is not None for x in (self.spacing, self.factor, self.shape)) > 1:
            raise UsageError("--spacing, --factor and --shape are alternatives", None, "give at most one")
        if self.margin_mm < 0:
            raise UsageError("--margin-mm must be >= 0", None, "e.g. --margin-mm 20")
        if self.spacing is not None and any(s <= 0 for s in self.spacing):
            raise UsageError("--spacing values must be > 0", None, "e.g. --spacing 2 2 2")
        if self.factor is not None and self.factor <= 0:
            raise UsageError("--factor must be > 0", None, "e.g. --factor 3")
        if self.shape is not None and any(int(s) < 1 for s in self.shape):
            raise UsageError("--shape values must be >= 1", None, "e.g. --shape 64 64 64")
        if self.image_interp not in IMAGE_ORDERS:
            raise UsageError(f"unknown --image-interp {self.image_interp!r}", None, "use linear or bspline")
        if self.label_interp not in LABEL_INTERPOLATIONS:
            raise UsageError(f"unknown --label-interp {self.label_interp!r}", None, "use nearest or label")

    @property
    def res(self) -> str | None:
        """The ``res-`` entity of the outputs (None: not resampled)."""
        return res_value(self.spacing, self.factor, None)

    @property
    def resampled(self) -> bool:
        """Whether the crop is resampled onto a new voxel size (``spacing`` or ``factor``)."""
        return self.spacing is not None or self.factor is not None
