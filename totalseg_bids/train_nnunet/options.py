"""The options of a training run (one frozen dataclass)."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import UsageError
from ..nnunet.naming import DEFAULT_CONFIGURATION, DEFAULT_PLANS
from ..nnunet.paths import DEFAULT_TRAINER


@dataclass(frozen=True)
class TrainOptions:
    """What to train: nnU-Net's configuration, folds, trainer and plans, on which device.

    ``device`` None picks cuda when torch sees a GPU; ``preprocess`` False reuses
    an earlier plan/preprocess; ``extra_args`` go to ``nnUNetv2_train`` as they are.
    """

    configuration: str = DEFAULT_CONFIGURATION
    folds: tuple[str, ...] = ("0",)
    trainer: str = DEFAULT_TRAINER
    plans: str = DEFAULT_PLANS
    device: str | None = None
    preprocess: bool = True
    extra_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # lists from callers and the CLI become tuples, so the options stay hashable and frozen
        object.__setattr__(self, "folds", tuple(str(f) for f in self.folds))
        object.__setattr__(self, "extra_args", tuple(self.extra_args))
        if not self.folds:
            raise UsageError("no fold to train", None, "give folds, e.g. 0 or \"0 1 2 3 4\"")
