"""Registration options: built once from the CLI and passed down to every pair."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from ..core.bids import Naming
from ..core.errors import UsageError
from ..core.geometry import LabelInterp
from ..core.options import BatchOptions, normalise_fields
from .constants import DEFAULT_CONTRASTS, DEFAULT_CT_SUFFIXES, DEFAULT_LABEL, INTERPOLATIONS, METHODS, Method

#: Where registration starts: the headers, or the image centres / intensity moments aligned first.
Init = Literal["header", "geometry", "moments"]
#: What a flagged pair writes: nothing (error), the header transfer, or the flagged result.
OnFailure = Literal["error", "header", "keep"]
INITS: tuple[str, ...] = get_args(Init)
ON_FAILURE: tuple[str, ...] = get_args(OnFailure)


@dataclass(frozen=True)
class RegOptions:
    """How rigid/affine registration starts, what it looks at, and when it has failed.

    ``init``: ``header`` starts from the NIfTI headers (world frames shared);
    ``geometry``/``moments`` first align the centres of the two images (or
    their intensity moments), for scanners with no common origin.
    ``focus_mm``: restrict the metric to the CT label dilated by this many mm
    (None: whole image). A pair is suspicious when the metric ends worse than
    the header's, the correction exceeds ``max_shift_mm``/``max_rotation_deg``,
    or the label leaves the MRI, or its boundary is hardly sharper on the MRI
    than around it (edge contrast below ``min_edge_contrast``; 0 turns that
    check off); ``on_failure`` says what is then written.
    """

    init: Init = "header"
    focus_mm: float | None = None
    max_shift_mm: float = 30.0
    max_rotation_deg: float = 20.0
    on_failure: OnFailure = "keep"
    min_edge_contrast: float = 2.5

    def check(self) -> RegOptions:
        if self.init not in INITS or self.on_failure not in ON_FAILURE:
            raise UsageError(f"unknown --init {self.init!r} or --on-failure {self.on_failure!r}", None,
                             f"use --init {'|'.join(INITS)} and --on-failure {'|'.join(ON_FAILURE)}")
        if self.focus_mm is not None and self.focus_mm < 0:
            raise UsageError("--focus-mm must be >= 0", None, "e.g. --focus-mm 15")
        if self.min_edge_contrast < 0:
            raise UsageError("--min-edge-contrast must be >= 0", None,
                             "e.g. --min-edge-contrast 2.5, or 0 for no check")
        return self


@dataclass(frozen=True)
class LabelSpec:
    """Which label to transfer, from the CLI's --label / --label-value / --labels-dseg.

    ``name`` is the structure in the output name; ``value`` a class to extract;
    ``dseg`` the multi-class map's name; ``keep_dseg`` transfers all classes.
    """

    name: str = DEFAULT_LABEL
    value: int | None = None
    dseg: str | None = None
    keep_dseg: bool = False

    @property
    def kind(self) -> str:
        return "dseg" if self.keep_dseg else "seg"


@dataclass(frozen=True)
class RegisterOptions(BatchOptions):
    """Everything :func:`~totalseg_bids.register.register_dataset` takes besides its primary inputs.

    The primary inputs stay arguments of the function, since they say *what*
    is transferred rather than *how*: the raw dataset, the CT label folder,
    the output folder, and the explicit ``mri``/``ct_label`` pair that
    replaces discovery. Each pair of a batch carries these options (without
    ``scheduler``, which stays with the caller), so the per-pair step reads
    them from one place.

    ``spec``: which label; ``method``/``interp``: how it is moved; ``reg``:
    rigid/affine/ANTs settings; ``contrasts``/``ct_suffixes``: which images
    pair up; ``mri_label_origins``: label origins (``Manual``, ``nnU-Net``,
    ``TotalSegmentator``, ``any``) of labels already on an MRI used instead of
    the CT label; ``num_parts``/``part_id``: this run does every ``num_parts``-th planned MRI from the
    ``part_id``-th (array tasks, machines); ``save_message``: the datalad commit message; ``qc_dir``:
    the QC report to add each output to; the shared batch options
    (:class:`~totalseg_bids.core.options.BatchOptions`): ``overwrite``
    (``"manual"`` also replaces hand-corrected labels), ``jobs``/``executor``/
    ``scheduler``, ``datalad_get``/``datalad_save``.

    >>> RegisterOptions(contrasts=["T2w"]).contrasts
    ('T2w',)
    >>> RegisterOptions(method="warp").check()
    Traceback (most recent call last):
    ...
    totalseg_bids.core.errors.UsageError: unknown method/interpolation 'warp'/'nearest'; ...
    """

    spec: LabelSpec = LabelSpec()
    method: Method = "header"
    interp: LabelInterp = "nearest"
    reg: RegOptions = RegOptions()
    contrasts: tuple[str, ...] = DEFAULT_CONTRASTS
    ct_suffixes: tuple[str, ...] = DEFAULT_CT_SUFFIXES
    naming: Naming = "neuropoly"
    mri_label_origins: tuple[str, ...] = ()
    qc_dir: Path | None = None
    num_parts: int = 1
    part_id: int = 0
    save_message: str | None = None

    def __post_init__(self) -> None:
        normalise_fields(self, tuples=("contrasts", "ct_suffixes", "mri_label_origins"), paths=("qc_dir",))

    def check(self) -> RegisterOptions:
        """Refuse unknown values before any file is read (usage errors, exit 2)."""
        if self.method not in METHODS or self.interp not in INTERPOLATIONS:
            raise UsageError(f"unknown method/interpolation {self.method!r}/{self.interp!r}", None,
                             f"use --method {'|'.join(METHODS)} and --interp {'|'.join(INTERPOLATIONS)}")
        self.reg.check()
        return self
