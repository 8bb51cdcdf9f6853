"""The options of ``model export`` (one frozen dataclass)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..nnunet.naming import DEFAULT_CONFIGURATION, DEFAULT_PLANS
from ..nnunet.paths import DEFAULT_TRAINER


@dataclass(frozen=True)
class ExportOptions:
    """Which trained configuration to export: nnU-Net's configuration, folds, trainer and plans,
    from ``results`` (default ``$nnUNet_results``)."""

    configuration: str = DEFAULT_CONFIGURATION
    folds: tuple[str, ...] = ("0",)
    trainer: str = DEFAULT_TRAINER
    plans: str = DEFAULT_PLANS
    results: str | Path | None = None

    def __post_init__(self) -> None:
        # lists from callers and the CLI become tuples, so the options stay hashable
        object.__setattr__(self, "folds", tuple(str(f) for f in self.folds))
