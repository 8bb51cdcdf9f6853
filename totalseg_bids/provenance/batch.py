"""Many labels: every one marked (one unusable label does not stop the others), or shown."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.options import resolve_options
from ..core.parallel import finish, run_tasks
from .case import mark_one, show_one
from .options import ManualOptions


def mark_manual_labels(labels: Sequence[str | Path], options: ManualOptions | None = None,
                       **kwargs: Any) -> list[dict]:
    """Mark every label as corrected by hand; the records of the sidecars written.

    One unusable label does not stop the others: the batch ends in one
    ``BatchError`` listing the failures, with the written sidecars in ``.done``.
    Labels are marked one after the other: a sidecar is a few hundred bytes.
    """
    opts = resolve_options(ManualOptions, options, kwargs)
    paths = [Path(p) for p in labels]
    outcomes = run_tasks(mark_one, [(p, opts) for p in paths], keys=[str(p) for p in paths], jobs=1)
    return finish(outcomes, "label(s)")


def show(labels: Sequence[str | Path]) -> list[dict]:
    """The ``GeneratedBy`` of each label's sidecar (see :func:`~.case.show_one`).

    >>> show(["/nonexistent/sub-01_T2w_label-sacrum_seg.nii.gz"])[0]["status"]
    'generated'
    """
    return [show_one(label) for label in labels]
