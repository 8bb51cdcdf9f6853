"""One label per image: keeping the labels of one derivative folder or one structure, and refusing
several left for one image (they would silently become extra training cases)."""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from pathlib import Path

from ..core.bids import dataset_path
from ..core.errors import InputError
from ..core.folders import DERIVATIVES
from .checks import Item

log = logging.getLogger(__name__)


def label_folder(path: Path, root: Path) -> str:
    """The derivatives folder holding a label (``labels``, ``reg-labels``, ...).

    >>> label_folder(Path("/d/ds/derivatives/labels/sub-01/anat/x.nii.gz"), Path("/d/ds"))
    'labels'
    """
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return ""
    return parts[1] if len(parts) > 2 and parts[0] == DERIVATIVES else ""


def choose_labels(items: list[Item], label_dir: str | None = None, label: str | None = None,
                  allow_several: bool = False, source: Path | None = None) -> list[Item]:
    """One label per image: keep those under ``derivatives/<label_dir>`` and
    with ``label-<label>``; several left for one image are an error (a
    structure, a prediction or a second derivative folder would silently become
    extra training cases) unless ``allow_several``."""
    kept = [i for i in items if (label_dir is None or label_folder(i.path, i.root) == label_dir)
            and (label is None or i.name.get("label") == label)]
    if not kept:
        what = " and ".join(x for x in (f"--label-dir {label_dir}" if label_dir else "",
                                         f"--label {label}" if label else "") if x)
        folders = sorted({label_folder(i.path, i.root) for i in items} - {""})
        names = sorted({str(i.name.get("label")) for i in items if i.name.get("label")})
        raise InputError(f"no listed label matches {what}", source or items[0].path,
                         f"label folders listed: {', '.join(folders) or 'none'}; "
                         f"label names: {', '.join(names) or 'none'}")
    by_image: dict[Path, list[Item]] = defaultdict(list)
    for i in kept:
        by_image[i.image or i.path].append(i)
    several = {img: group for img, group in by_image.items() if len(group) > 1}
    if several and not allow_several:
        img, group = next(iter(several.items()))
        more = f" (+{len(several) - 1} more image(s))" if len(several) > 1 else ""
        files = ", ".join(os.path.relpath(g.path, g.root) for g in group)
        raise InputError(f"{len(group)} labels for {dataset_path(img)}: {files}{more}",
                         source or group[0].path,
                         "choose one with --label-dir NAME or --label NAME, or pass --allow-several-labels "
                         "to keep each as its own case")
    for img, group in several.items():
        log.warning("%s: %d labels kept as separate cases (--allow-several-labels)", dataset_path(img), len(group))
    return kept

