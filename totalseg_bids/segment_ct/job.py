"""One unit of work: one image to label, with everything it needs to travel to a worker."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..core.bids import split_extension
from .options import SegmentOptions


@dataclass(frozen=True)
class CtJob:
    """Everything one CT needs; picklable so it can travel to a worker.

    ``options`` are the run's, resolved (classes checked, device chosen, no
    scheduler); the other fields are what the installed TotalSegmentator says
    about the task."""

    ct: Path
    bids_dir: Path
    out: Path
    options: SegmentOptions = SegmentOptions()
    class_ids: Mapping[str, int] = field(default_factory=dict)  # empty: no class map
    version: str | None = None
    task_ids: tuple[int, ...] = ()
    model_mm: float | None = None  # TotalSegmentator's resolution for this task
    weights: str | None = None  # description of locally built weights, when used

    @property
    def stem(self) -> str:
        return split_extension(self.ct.name)[0]
