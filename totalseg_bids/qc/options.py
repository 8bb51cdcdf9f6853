"""QC options: what a batch of entries is labelled with and where its workers run."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import UsageError
from ..core.options import ParallelOptions


@dataclass(frozen=True)
class QcOptions(ParallelOptions):
    """How :func:`~totalseg_bids.qc.batch.add_entries` writes a batch.

    ``stage`` is the name the report shows for these entries (``label``,
    ``register``, ``predict``); ``jobs``/``executor``/``scheduler``: where the
    entries are rendered (one worker unless asked: a library caller adding a
    few entries should not start a process pool).

    >>> QcOptions(stage="predict").jobs
    1
    """

    stage: str = "label"
    jobs: int | None = 1

    def __post_init__(self) -> None:
        if self.jobs is not None and self.jobs < 1:
            raise UsageError("--jobs must be >= 1", None, "e.g. -j 4")
        if not self.stage or not str(self.stage).strip():
            raise UsageError("--stage must not be empty", None, "e.g. --stage predict")
