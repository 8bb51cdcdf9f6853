"""Registration options: built once from the CLI and passed down to every pair."""

from __future__ import annotations

from dataclasses import dataclass

INITS = ("header", "geometry", "moments")
ON_FAILURE = ("error", "header", "keep")


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

    init: str = "header"
    focus_mm: float | None = None
    max_shift_mm: float = 30.0
    max_rotation_deg: float = 20.0
    on_failure: str = "keep"
    min_edge_contrast: float = 2.5

    def check(self) -> RegOptions:
        from ..core.errors import UsageError

        if self.init not in INITS or self.on_failure not in ON_FAILURE:
            raise UsageError(f"unknown --init {self.init!r} or --on-failure {self.on_failure!r}", None,
                             f"use --init {'|'.join(INITS)} and --on-failure {'|'.join(ON_FAILURE)}")
        if self.focus_mm is not None and self.focus_mm < 0:
            raise UsageError("--focus-mm must be >= 0", None, "e.g. --focus-mm 15")
        if self.min_edge_contrast < 0:
            raise UsageError("--min-edge-contrast must be >= 0", None, "e.g. --min-edge-contrast 2.5, or 0 for no check")
        return self
