"""Export options: the file format and naming of the exported volumes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from ..core.errors import UsageError
from ..core.options import BatchOptions

#: The export formats (3D volumes with a geometry sidecar).
ExportFormat = Literal["npy"]
EXPORT_FORMATS: tuple[str, ...] = get_args(ExportFormat)
#: File names: ``<BIDS stem>.npy``, or the clot workflow's names.
NpyNames = Literal["bids", "clot"]
NPY_NAMES: tuple[str, ...] = get_args(NpyNames)


@dataclass(frozen=True)
class ExportOptions(BatchOptions):
    """How a config is exported (or a folder imported back); paths are the call's arguments.

    ``npy_names``: ``bids`` (<BIDS stem>.npy) or ``clot`` (the clot workflow's names).
    ``overwrite``: convert again volumes whose ``.npy`` and sidecar exist; the other batch
    options say where the volumes are converted and whether datalad fetches and saves.

    >>> ExportOptions(npy_names="nifti")
    Traceback (most recent call last):
    ...
    totalseg_bids.core.errors.UsageError: unknown --format 'npy' or --npy-names 'nifti'; use --format npy and \
--npy-names bids|clot
    """

    format: ExportFormat = "npy"
    npy_names: NpyNames = "bids"
    datasets_path: str | None = None

    def __post_init__(self) -> None:
        if self.format not in EXPORT_FORMATS or self.npy_names not in NPY_NAMES:
            raise UsageError(f"unknown --format {self.format!r} or --npy-names {self.npy_names!r}", None,
                             f"use --format {'|'.join(EXPORT_FORMATS)} and --npy-names {'|'.join(NPY_NAMES)}")
