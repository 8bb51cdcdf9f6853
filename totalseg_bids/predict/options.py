"""The options of a prediction run (one frozen dataclass)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.bids import label_value
from ..core.errors import UsageError
from ..core.options import BatchOptions, normalise_fields
from ..nnunet.postprocess import POSTPROCESS, REMOVAL_FLAG_FRACTION, KeepLargest, PostProcess


@dataclass(frozen=True)
class PredictOptions(BatchOptions):
    """Every option of :func:`~.batch.predict` besides the inputs and the model.

    ``label_name``: the outputs' ``label-`` entity (default: the model's class
    for a binary model, else its dataset name); ``derivatives``: the folder in
    each dataset's ``derivatives/``; ``postprocess``: ``auto`` (nnU-Net's
    post-processing when find_best_configuration decided one for the model, else
    none), ``nnunet``, ``largest`` (the largest connected component of
    ``largest_labels``, None: every label; ``largest_mode`` ``union``: of the union
    of labels) or ``none``; ``postprocessing_file``: a ``postprocessing.pkl`` to
    apply instead of the model's; ``removal_threshold``: a label that loses more
    than this share of its voxels is flagged; ``tta``: test-time mirroring;
    ``num_parts``/``part_id``: this run's shard; ``batch_size``: images per
    predictor call; ``qc_dir``: QC report to add every output to. Of the shared
    batch options, ``overwrite`` is True, or ``"manual"`` to replace hand-corrected
    labels too; ``jobs``: nnU-Net workers (None: 1 on the CPU, up to 3 on a GPU);
    ``datalad_get``: fetch annexed images first.
    """

    label_name: str | None = None
    derivatives: str = "labels"
    naming: str = "neuropoly"
    postprocess: PostProcess = "auto"
    largest_labels: tuple[str, ...] | None = None
    largest_mode: KeepLargest = "per-label"
    postprocessing_file: str | Path | None = None
    removal_threshold: float = REMOVAL_FLAG_FRACTION
    device: str = "auto"
    tta: bool = True
    num_parts: int = 1
    part_id: int = 0
    batch_size: int = 8
    qc_dir: str | Path | None = None

    def __post_init__(self) -> None:
        normalise_fields(self, tuples=("largest_labels",), paths=("postprocessing_file", "qc_dir"))

    def check(self) -> PredictOptions:
        """Refuse values no image could be predicted with, before anything is read."""
        if self.batch_size < 1:
            raise UsageError("--batch-size must be >= 1", None, "e.g. --batch-size 8")
        if self.postprocess not in POSTPROCESS:
            raise UsageError(f"unknown --postprocess {self.postprocess!r}", None,
                             f"use one of {', '.join(POSTPROCESS)}")
        if self.largest_mode not in ("per-label", "union"):
            raise UsageError(f"unknown largest-component mode {self.largest_mode!r}", None, "use per-label or union")
        if self.largest_labels and self.postprocess != "largest":
            raise UsageError("labels for the largest component, but --postprocess is not largest", None,
                             "give --largest-component LABEL ... alone")
        if not 0 <= self.removal_threshold <= 1:
            raise UsageError("--removal-threshold must be between 0 and 1", None, "e.g. --removal-threshold 0.1")
        if self.label_name is not None:
            label_value(self.label_name)  # raises a usage error on a name without letters or digits
        return self
