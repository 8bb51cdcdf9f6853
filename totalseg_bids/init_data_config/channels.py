"""Several images per case (``--channels``): each channel named like the case's image with other
entities and suffix (``ce-contrast_CT CT``: a CT angiography and the plain CT of the same
subject), found beside it, on its grid; the config's entries then become objects
``{"IMAGE": [channel 0, channel 1, ...], "LABEL": label}`` (docs/conventions.md section 4)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..core.bids import BidsName, dataset_path
from ..core.errors import GeometryError, InputError, UsageError
from ..core.nifti import load_grid

#: the entities a channel keeps from its case's image; the others come from its spec
KEPT = ("sub", "ses")


def parse_channel(spec: str) -> tuple[dict[str, str], str]:
    """The entities and suffix of a channel spec.

    >>> parse_channel("ce-contrast_CT"), parse_channel("acq-bone_CT"), parse_channel("T2w")
    (({'ce': 'contrast'}, 'CT'), ({'acq': 'bone'}, 'CT'), ({}, 'T2w'))
    """
    *pairs, suffix = spec.split("_")
    entities = {}
    for pair in pairs:
        key, sep, value = pair.partition("-")
        if not sep or not key.isalpha() or not value.isalnum() or key in KEPT:
            raise UsageError(f"bad --channels entry {spec!r}", None,
                             "write each channel as [entity-value_...]SUFFIX, e.g. ce-contrast_CT or CT")
        entities[key] = value
    if not suffix.isalnum():
        raise UsageError(f"bad --channels entry {spec!r}", None, "end each channel with its suffix, e.g. CT")
    return entities, suffix


def channel_name(image: BidsName, spec: str) -> BidsName:
    """The name of channel ``spec`` of the case whose image is ``image``.

    >>> channel_name(BidsName.parse("sub-CS1_ce-contrast_CT.nii.gz"), "CT").filename
    'sub-CS1_CT.nii.gz'
    """
    entities, suffix = parse_channel(spec)
    kept = tuple((k, v) for k, v in image.entities if k in KEPT)
    return BidsName((*kept, *entities.items()), suffix, extension=image.extension)


def channel_paths(image: Path, specs: Sequence[str], label: Path | None = None) -> list[Path]:
    """The channel images of one case, beside ``image`` and on its grid; ``image`` must be one of
    them (the label is drawn on it)."""
    name = BidsName.parse(image)
    paths = [image.parent / channel_name(name, spec).filename for spec in specs]
    if image not in paths:
        raise InputError(f"its image {image.name} is not one of --channels {' '.join(specs)}", label or image,
                         "name the label's image among the channels")
    grid = load_grid(image)
    for path in paths:
        if not path.is_file():
            raise InputError(f"channel missing for {dataset_path(image)} (--channels {' '.join(specs)})", path,
                             "add the channel image or leave the case out of the list")
        other = load_grid(path)
        if other.shape != grid.shape or not np.allclose(other.affine, grid.affine, atol=1e-4):
            raise GeometryError(f"channel not on the grid of {image.name}", path, "resample it onto that image")
    return paths


def entry(paths: Sequence[Path], label: Path | None, base: Path) -> dict:
    """The config entry of a case with several channels (paths relative to ``base``)."""
    out: dict = {"IMAGE": [p.relative_to(base).as_posix() for p in paths]}
    if label is not None:
        out["LABEL"] = label.relative_to(base).as_posix()
    return out


def entry_key(item: str | dict) -> str:
    """The file a config entry is split by: the path, or an object's label (else its first channel).

    >>> entry_key({"IMAGE": ["a_CT.nii.gz", "b_CT.nii.gz"]}), entry_key("c_seg.nii.gz")
    ('a_CT.nii.gz', 'c_seg.nii.gz')
    """
    return item if isinstance(item, str) else item.get("LABEL") or item["IMAGE"][0]
