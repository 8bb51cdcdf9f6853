"""bidsify options: how a download's files are named and converted, built once and passed to every layout."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from ..core.bids import NAMINGS, label_value
from ..core.errors import UsageError
from ..core.options import BatchOptions, normalise_fields
from .arrays import affine_from

MrSuffix = Literal["T1w", "T2w"]
MR_SUFFIXES: tuple[str, ...] = get_args(MrSuffix)


@dataclass(frozen=True)
class BidsifyOptions(BatchOptions):
    """Everything :func:`~totalseg_bids.bidsify.bidsify` takes besides the source name and the folders.

    Each layout reads the fields it knows: ``mr_suffix`` (synthrad2023 without
    an overview), ``classes`` (totalsegmentator, mrspineseg, goldatlas, dicom),
    ``config``/``subject_regex``/``session_regex``/``keep_derived`` (dicom;
    goldatlas reads ``config``), ``pattern``, ``label_pattern``,
    ``label_name``, ``suffix``, ``spacing``, ``orientation`` (pattern; ``spacing`` and
    ``orientation`` also the layouts without geometry: ctich's jpgs, clotseg, finding-lungs'
    2D slices; ``orientation`` None: the layout's own default, RAS for pattern).
    ``combine`` (dicom, goldatlas): the RTSTRUCT ROIs of an image as one
    ``_dseg`` of that name (classes in ``classes`` order, else the structure set's).
    ``mask_threshold`` (masks read from 2D slices or arrays: pattern, ctich,
    finding-lungs, clotseg): a voxel above it is in the mask (default half
    the range of the mask's type: 127.5 for 8-bit, exact for 0/1 masks).
    ``naming`` names the label derivatives; ``dry_run`` plans and writes
    nothing; ``strict`` makes skipped series an error once the others are
    written; ``command`` is recorded in ``code/bidsify.json``.
    """

    mr_suffix: MrSuffix | None = None
    classes: Sequence[str] | None = None
    config: Path | None = None
    subject_regex: str | None = None
    session_regex: str | None = None
    keep_derived: bool = False
    strict: bool = False
    pattern: str | None = None
    label_pattern: str | None = None
    label_name: str = "mask"
    suffix: str | None = None
    spacing: Sequence[float] | None = None
    orientation: str | None = None
    combine: str | None = None
    mask_threshold: float | None = None
    naming: str = "neuropoly"
    dry_run: bool = False
    command: str = ""
    #: dicom: a scratch folder (on the output's file system) where series are converted once while they
    #: are planned, instead of a sidecar pass first; set by :func:`~totalseg_bids.bidsify.bidsify` for a new output
    work_dir: Path | None = None

    def __post_init__(self) -> None:
        normalise_fields(self, tuples=("classes", "spacing"), paths=("config", "work_dir"))
        if self.mr_suffix not in (None, *MR_SUFFIXES) or self.naming not in NAMINGS:
            raise UsageError(f"unknown --mr-suffix {self.mr_suffix!r} or --naming {self.naming!r}", None,
                             f"use --mr-suffix {'|'.join(MR_SUFFIXES)} and --naming {'|'.join(NAMINGS)}")
        if self.spacing is not None and (len(self.spacing) != 3 or min(self.spacing) <= 0):
            raise UsageError(f"--spacing needs three sizes > 0, not {list(self.spacing)}", None,
                             "e.g. --spacing 1 1 2.5")
        if self.orientation is not None:
            affine_from((1.0, 1.0, 1.0), self.orientation)  # three letters such as RAS or LPS
        if self.combine is not None:
            label_value(self.combine)  # letters and digits
        if self.jobs is not None and self.jobs < 1:
            raise UsageError("--jobs must be >= 1", None, "e.g. -j 4")
