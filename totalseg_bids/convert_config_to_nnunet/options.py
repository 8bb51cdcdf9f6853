"""The options of a conversion (one frozen dataclass) and the closed choices they take."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from ..core.errors import UsageError
from ..core.nifti import QFORM_SFORM_TOLERANCE_MM
from ..core.options import BatchOptions
from ..nnunet.splits import DEFAULT_SEED

#: nnU-Net's image readers a dataset may name (``overwrite_image_reader_writer``).
Reader = Literal["SimpleITKIO", "NibabelIO", "NibabelIOWithReorient"]
READERS: tuple[str, ...] = get_args(Reader)
#: How unchanged files are placed in the dataset.
LinkMode = Literal["symlink", "hardlink", "copy"]
LINK_MODES: tuple[str, ...] = get_args(LinkMode)
FILE_ENDING = ".nii.gz"
DEFAULT_NAME = "SacrumDataset"


@dataclass(frozen=True)
class ConvertOptions(BatchOptions):
    """Every option of :func:`~.batch.convert` besides the config, the output folder and the dataset id and name.

    ``labels`` (foreground names for values 1, 2, ...) or ``labels_json`` (a file or
    dict, with an optional remap) set the label map, else the files' ``label-``
    entity does; ``channels`` names the channels; ``reader`` is nnU-Net's image
    reader; ``link`` how unchanged files are placed; ``datasets_path`` overrides
    the config's; ``verify`` runs nnU-Net's integrity check; ``form_tolerance``
    (mm) is the qform/sform gap above which a file is rewritten; ``folds``: the
    cross-validation folds of ``splits_final.json``, drawn by subject from ``seed``
    (None: 5, or one per subject when there are fewer; 1: the config's own split,
    see :mod:`totalseg_bids.nnunet.splits`); ``jobs`` None picks serial or a pool
    from the cohort size (the shared batch options:
    :class:`~totalseg_bids.core.options.BatchOptions`).
    """

    labels: Sequence[str] | None = None
    labels_json: str | Path | dict | None = None
    channels: Sequence[str] | None = None
    reader: Reader = "SimpleITKIO"
    link: LinkMode = "symlink"
    datasets_path: str | Path | None = None
    verify: bool = False
    form_tolerance: float = QFORM_SFORM_TOLERANCE_MM
    folds: int | None = None
    seed: int = DEFAULT_SEED

    def check(self) -> ConvertOptions:
        """Refuse option values that contradict each other before any file is read."""
        if self.reader not in READERS:
            raise UsageError(f"unknown reader {self.reader!r}", None, f"use one of {', '.join(READERS)}")
        if self.link not in LINK_MODES:
            raise UsageError(f"unknown link mode {self.link!r}", None, f"use one of {', '.join(LINK_MODES)}")
        if self.labels and self.labels_json:
            raise UsageError("--labels and --labels-json exclude each other", None, "give one of them")
        if self.folds is not None and self.folds < 1:
            raise UsageError(f"--folds {self.folds} must be at least 1", None, "e.g. --folds 5")
        if self.form_tolerance < 0:
            raise UsageError("--form-tolerance must be >= 0", None, f"e.g. --form-tolerance {QFORM_SFORM_TOLERANCE_MM}")
        return self
