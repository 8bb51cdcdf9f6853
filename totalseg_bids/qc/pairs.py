"""Which image each label is shown over: paired by position, found from the label's BIDS name,
or read from a data config."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.bids import BidsName, dataset_path, image_for_label
from ..core.config import load_config
from ..core.errors import InputError, TotalsegBidsError, UsageError

log = logging.getLogger(__name__)

#: An entry's (background image, label); either may be None (then the entry is flagged).
Pair = tuple[Any, Any]


def entry_pairs(images: Sequence[Path] | None = None, labels: Sequence[Path] | None = None,
                config: Path | None = None, datasets_path: Path | None = None,
                splits: Sequence[str] | None = None) -> list[Pair]:
    """The ``(image, label)`` of every entry asked for: ``config`` (its ``splits``), or
    ``images`` with ``labels`` (by position), ``labels`` alone (images from their names)
    or ``images`` alone. A combination that cannot be meant is a usage error."""
    if config and (images or labels):
        raise UsageError("--config cannot be combined with --images/--labels", None, "use one or the other")
    if config:
        pairs: list[Pair] = [(c.image, c.label) for c in
                             load_config(config, datasets_path).cases(splits, check_exists=False)]
        if not pairs:
            raise UsageError("the config lists no entries", config, "check its splits")
    elif labels and images:
        if len(images) != len(labels):
            raise UsageError(f"{len(images)} --images but {len(labels)} --labels", None,
                             "give one image per label, in the same order (or --labels alone)")
        pairs = list(zip(images, labels))
    elif labels:
        pairs = pairs_from_labels(labels)
    elif images:
        pairs = [(img, None) for img in images]
    else:
        raise UsageError("nothing to show", None, "give --labels (and --images) or --config")
    check_pairs(pairs)
    return pairs


def check_pairs(pairs: Sequence[Pair]) -> None:
    """Refuse an image paired with a label of another subject/session (by BIDS name)."""
    for img, lab in pairs:
        if img is None or lab is None:
            continue
        a, b = BidsName.try_parse(img), BidsName.try_parse(lab)
        if a is not None and b is not None and (a.subject, a.session) != (b.subject, b.session):
            raise InputError(f"label of sub-{b.subject} given for image {dataset_path(img)}", lab,
                             "give --images and --labels in the same order")


def pairs_from_labels(labels: Sequence[Path]) -> list[Pair]:
    """Each label with the image its BIDS name points to; a missing label or one whose image
    cannot be found keeps None there (a flagged entry rather than a stopped batch)."""
    pairs: list[Pair] = []
    for lab in labels:
        if not (Path(lab).exists() or Path(lab).is_symlink()):
            pairs.append((None, lab))  # flagged as a missing label, whatever its name
            continue
        try:
            pairs.append((image_for_label(lab), lab))
        except TotalsegBidsError as exc:  # flagged as "no image" rather than stopping the batch
            log.warning("%s", exc)
            pairs.append((None, lab))
    return pairs
