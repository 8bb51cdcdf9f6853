"""augment options: how many samples, from which recipe, in which layout; built once and passed down."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.errors import UsageError
from ..core.options import BatchOptions
from .layout import LAYOUTS, AugmentLayout


@dataclass(frozen=True)
class AugmentOptions(BatchOptions):
    """Everything :func:`~totalseg_bids.augment.batch.augment` takes besides the slice and output folders.

    ``target_train``/``target_val``: samples to write per split (None: the
    split's slices are copied, as TESTING always is); ``recipe``: an
    albumentations ``Compose`` saved with ``A.save`` (None: the clot recipe);
    ``keep_originals`` counts the source slices into the targets; ``seed``
    decides sampling and transforms; ``layout`` defaults to the input's;
    ``dataset_id``/``dataset_name`` name the nnunet2d output dataset. The batch
    options say where samples are made, whether another request's output is
    replaced (``overwrite``), and datalad.
    """

    target_train: int | None = None
    target_val: int | None = None
    recipe: Path | None = None
    keep_originals: bool = False
    seed: int = 0
    layout: AugmentLayout | None = None
    dataset_id: int = 502
    dataset_name: str = "SlicesAugmented"

    def __post_init__(self) -> None:
        for name in ("target_train", "target_val"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise UsageError(f"--{name.replace('_', '-')} must be >= 0", None, "e.g. --target-train 1000")
        if self.layout not in (None, *LAYOUTS):
            raise UsageError(f"unknown --layout {self.layout!r}", None, f"use one of {', '.join(LAYOUTS)}")
        if self.jobs is not None and self.jobs < 1:
            raise UsageError("--jobs must be >= 1", None, "e.g. -j 4")

    @property
    def targets(self) -> dict[str, int | None]:
        """``{split: target}`` for the splits that are augmented.

        >>> AugmentOptions(target_train=10).targets
        {'train': 10, 'val': None}
        """
        return {"train": self.target_train, "val": self.target_val}

    @property
    def dataset(self) -> tuple[int, str]:
        """The nnunet2d output dataset as ``(id, name)``."""
        return self.dataset_id, self.dataset_name
