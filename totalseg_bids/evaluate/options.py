"""Evaluation options: built once from the CLI (or by a library caller) and carried to every case."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from ..core.errors import UsageError
from ..core.options import BatchOptions, normalise_fields
from .labels import parse_label_specs

#: ``--resample-to``: the grid a prediction is brought onto when the two grids differ.
ResampleTo = Literal["ref"]
RESAMPLE_TO: tuple[str, ...] = get_args(ResampleTo)
DEFAULT_TOLERANCE_MM = 2.0


@dataclass(frozen=True)
class EvaluateOptions(BatchOptions):
    """How every case is measured, besides which files it pairs.

    ``labels``: the classes to measure (values ``"1"``, names ``"sacrum"`` or
    ``"1=sacrum"``; empty: every class either file names or holds);
    ``tolerance_mm``: the normalised surface Dice's tolerance; ``resample_to``:
    ``"ref"`` brings a prediction on another grid onto the reference's (nearest
    neighbour through world coordinates), None refuses such a pair; ``qc_dir``:
    the QC report whose entries get the figures; ``chill``: references without a
    prediction are left out instead of refused (nnU-Net's ``-chill``). ``jobs``/``executor``/
    ``scheduler``/``datalad_get`` come from :class:`BatchOptions` (evaluation
    writes no derivative, so ``overwrite`` and ``datalad_save`` are unused).

    >>> EvaluateOptions(labels=["1", "2=L5"]).labels
    ('1', '2=L5')
    >>> EvaluateOptions(tolerance_mm=-1).check()
    Traceback (most recent call last):
    ...
    totalseg_bids.core.errors.UsageError: --tolerance-mm must be >= 0, got -1; e.g. --tolerance-mm 2
    """

    labels: tuple[str, ...] = ()
    tolerance_mm: float = DEFAULT_TOLERANCE_MM
    resample_to: ResampleTo | None = None
    qc_dir: Path | None = None
    chill: bool = False

    def __post_init__(self) -> None:
        normalise_fields(self, tuples=("labels",), paths=("qc_dir",), absolute=True)

    def check(self) -> EvaluateOptions:
        """Refuse impossible values before any file is read (usage errors, exit 2)."""
        if not self.tolerance_mm >= 0:
            raise UsageError(f"--tolerance-mm must be >= 0, got {self.tolerance_mm:g}", None, "e.g. --tolerance-mm 2")
        if self.resample_to is not None and self.resample_to not in RESAMPLE_TO:
            raise UsageError(f"unknown --resample-to {self.resample_to!r}", None,
                             f"use --resample-to {'|'.join(RESAMPLE_TO)}")
        parse_label_specs(self.labels)
        return self
