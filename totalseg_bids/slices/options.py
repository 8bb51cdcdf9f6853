"""Slice export options: which axis and slices, how intensities are scaled, which file format and layout."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from ..core.display import parse_window
from ..core.errors import UsageError
from ..core.options import BatchOptions, normalise_fields

#: The slice axis, in RAS+ world orientation.
Axis = Literal["sagittal", "coronal", "axial"]
AXES: dict[str, int] = {name: i for i, name in enumerate(get_args(Axis))}
#: Slice files: uint8 PNG or TIFF (windowed), or raw float32 NPY.
Format = Literal["png", "tif", "npy"]
FORMATS: tuple[str, ...] = get_args(Format)
#: MMSegmentation's images/masks folders, or an nnU-Net 2D raw dataset.
Layout = Literal["mmseg", "nnunet2d"]
LAYOUTS: tuple[str, ...] = get_args(Layout)


@dataclass(frozen=True)
class SlicesOptions(BatchOptions):
    """How a config becomes 2D slices: axis, which slices, intensity scaling, file format and layout.

    ``window``: CT windows (names or ``W,L``), one for all channels or one per
    channel; without it each volume is scaled by its ``percentile`` range.
    ``dataset_id``/``dataset_name``: the ``Dataset<NNN>_<Name>`` of ``layout
    nnunet2d``. The batch options say where cases run, whether an export from
    the same request is redone, and datalad.

    >>> SlicesOptions(window=["bone"]).windows
    ((2000.0, 500.0),)
    """

    axis: Axis = "axial"
    only_labelled: bool = False
    empty_fraction: float = 0.1
    window: tuple[str, ...] | None = None
    percentile: tuple[float, float] = (1.0, 99.0)
    format: Format = "png"
    layout: Layout = "mmseg"
    dataset_id: int = 501
    dataset_name: str = "Slices"
    channels: tuple[str, ...] | None = None
    labels_tsv: Path | None = None
    seed: int = 0
    folds: int | None = None
    datasets_path: str | None = None
    pad_to: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        normalise_fields(self, tuples=("window", "channels", "percentile", "pad_to"))
        if self.pad_to is not None and (len(self.pad_to) != 2 or min(self.pad_to) < 1):
            raise UsageError(f"--pad-to needs two sizes >= 1, not {list(self.pad_to)}", None, "e.g. --pad-to 256 256")
        if self.axis not in AXES or self.format not in FORMATS or self.layout not in LAYOUTS:
            raise UsageError(f"unknown --axis {self.axis!r}, --format {self.format!r} or --layout {self.layout!r}",
                             None, f"use --axis {'|'.join(AXES)}, --format {'|'.join(FORMATS)}, "
                                   f"--layout {'|'.join(LAYOUTS)}")
        if not 0 <= self.empty_fraction <= 1:
            raise UsageError("--empty-fraction must be in [0, 1]", None, "e.g. --empty-fraction 0.1")
        if self.layout == "nnunet2d" and self.format != "png":
            raise UsageError("--layout nnunet2d writes PNG", None, "use --format png (or --layout mmseg)")
        if self.layout == "nnunet2d" and not self.dataset_name.isalnum():
            raise UsageError(f"dataset name {self.dataset_name!r} must be letters and digits", None,
                             "e.g. -dname Slices")
        _ = self.windows  # a bad window is a usage error now, not in a worker

    @property
    def windows(self) -> tuple[tuple[float, float], ...] | None:
        """The ``(width, level)`` of each ``window`` (names and ``W,L`` parsed)."""
        if not self.window:
            return None
        return tuple(parse_window(w) if isinstance(w, str) else (float(w[0]), float(w[1])) for w in self.window)
