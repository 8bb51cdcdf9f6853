"""Statistics options: class names, where the config's datasets are, where the cases are read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.errors import MissingFileError
from ..core.options import ParallelOptions


@dataclass(frozen=True)
class StatsOptions(ParallelOptions):
    """How the statistics are gathered: class names (``labels_tsv``), the config's
    ``datasets_path`` override, and where the cases are read (``jobs``/``executor``/``scheduler``).

    >>> StatsOptions(labels_tsv="/nonexistent.tsv")
    Traceback (most recent call last):
    ...
    totalseg_bids.core.errors.MissingFileError: /nonexistent.tsv: labels table not found; give a TSV with \
columns index, name
    """

    datasets_path: str | None = None
    labels_tsv: Path | None = None

    def __post_init__(self) -> None:
        if self.labels_tsv is not None and not Path(self.labels_tsv).is_file():
            raise MissingFileError("labels table not found", self.labels_tsv, "give a TSV with columns index, name")
