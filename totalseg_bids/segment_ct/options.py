"""The options of segment_ct: what TotalSegmentator runs and where its labels go."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.bids import label_value
from ..core.errors import UsageError
from ..core.options import BatchOptions, normalise_fields
from ..totalsegmentator import pick_device

DEFAULT_CLASSES = ("sacrum",)


@dataclass(frozen=True)
class SegmentOptions(BatchOptions):
    """Everything :func:`~totalseg_bids.segment_ct.segment_dataset` takes besides the raw dataset and the
    output folder.

    ``classes``/``task``/``fast``/``device``: what TotalSegmentator runs
    (``device`` ``auto``: gpu when CUDA works); ``ct_suffixes``: the images to
    label (None: CT, or MRI contrasts for ``*_mr`` tasks); ``combine``: one
    ``_dseg`` of that name instead of one ``_seg`` per class;
    ``from_existing``: a folder of outputs made elsewhere, read instead of
    running the program; ``naming``, ``qc_dir``; the batch options of
    :class:`~totalseg_bids.core.options.BatchOptions` (``jobs`` default: one CT
    at a time, since TotalSegmentator uses every core or the whole GPU by itself).

    >>> SegmentOptions(classes=["sacrum", "sacrum"]).classes
    ('sacrum', 'sacrum')
    >>> SegmentOptions(device="tpu").check()
    Traceback (most recent call last):
    ...
    totalseg_bids.core.errors.UsageError: unknown device 'tpu'; use gpu, gpu:N, cpu, mps or auto
    """

    classes: tuple[str, ...] = DEFAULT_CLASSES
    task: str = "total"
    fast: bool = False
    device: str = "auto"
    ct_suffixes: tuple[str, ...] | None = None
    combine: str | None = None
    from_existing: Path | None = None
    naming: str = "neuropoly"
    qc_dir: Path | None = None

    def __post_init__(self) -> None:
        # folders absolute: the options travel to workers unchanged
        normalise_fields(self, tuples=("classes", "ct_suffixes"), paths=("from_existing", "qc_dir"), absolute=True)

    def check(self) -> SegmentOptions:
        """Refuse values no CT could use, before the dataset is read (usage errors, exit 2)."""
        pick_device(self.device, False)
        if not self.classes:
            raise UsageError("no classes given", None, "pass --classes sacrum ...")
        if self.combine:
            label_value(self.combine)
        return self
