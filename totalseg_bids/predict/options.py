"""The options of a prediction run (one frozen dataclass)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.bids import label_value
from ..core.errors import UsageError
from ..core.options import BatchOptions
from ..nnunet.postprocess import KEEP_LARGEST, KeepLargest


@dataclass(frozen=True)
class PredictOptions(BatchOptions):
    """Every option of :func:`~.batch.predict` besides the inputs and the model.

    ``label_name``: the outputs' ``label-`` entity (default: the model's class
    for a binary model, else its dataset name); ``derivatives``: the folder in
    each dataset's ``derivatives/``; ``keep_largest``: largest-component filter
    (one of ``KEEP_LARGEST``); ``tta``: test-time mirroring; ``num_parts``/``part_id``:
    this run's shard; ``batch_size``: images per predictor call; ``qc_dir``: QC
    report to add every output to. Of the shared batch options, ``overwrite`` is
    True, or ``"manual"`` to replace hand-corrected labels too; ``jobs``: nnU-Net
    workers (None: 1 on the CPU, up to 3 on a GPU); ``datalad_get``: fetch
    annexed images first.
    """

    label_name: str | None = None
    derivatives: str = "labels"
    naming: str = "neuropoly"
    keep_largest: KeepLargest = "per-label"
    device: str = "auto"
    tta: bool = True
    num_parts: int = 1
    part_id: int = 0
    batch_size: int = 8
    qc_dir: str | Path | None = None

    def check(self) -> PredictOptions:
        """Refuse values no image could be predicted with, before anything is read."""
        if self.batch_size < 1:
            raise UsageError("--batch-size must be >= 1", None, "e.g. --batch-size 8")
        if self.keep_largest not in KEEP_LARGEST:
            raise UsageError(f"unknown --keep-largest {self.keep_largest!r}", None,
                             f"use one of {', '.join(KEEP_LARGEST)}")
        if self.label_name is not None:
            label_value(self.label_name)  # raises a usage error on a name without letters or digits
        return self
