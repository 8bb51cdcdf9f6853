"""QC options: what a batch of entries is labelled with and how many workers write it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QcOptions:
    """How :func:`~totalseg_bids.qc.batch.add_entries` writes a batch.

    ``stage`` is the name the report shows for these entries (``label``,
    ``register``, ``predict``); ``jobs`` the worker processes (None: every CPU core).
    """

    stage: str = "label"
    jobs: int | None = 1

    def __post_init__(self) -> None:
        from ..core.errors import UsageError

        if self.jobs is not None and self.jobs < 1:
            raise UsageError("--jobs must be >= 1", None, "e.g. -j 4")
        if not self.stage or not str(self.stage).strip():
            raise UsageError("--stage must not be empty", None, "e.g. --stage predict")
