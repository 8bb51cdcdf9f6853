"""Building the config: DATASETS_PATH, the entries relative to it, the split, and the record of
what made it (seed, ratios, counts, tool); nothing is returned before every check has passed."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..core.bids import BidsName
from ..core.config import SPLITS, contrasts_code
from ..core.derivatives import now as derivatives_now
from ..core.errors import InputError
from ..core.options import resolve_options
from .channels import channel_paths, entry, entry_key
from .checks import Item, check_files, check_geometry, parse_items
from .labels import choose_labels
from .listing import absolute, listing
from .options import TOOL_NAME, InitConfigOptions
from .split import Entry, assign_splits, split_unit

log = logging.getLogger(__name__)


def common_datasets_path(roots: Iterable[Path]) -> Path:
    """The folder holding every dataset: the common parent of the dataset roots.

    The legacy script required one shared parent; datasets under different
    parents now get their deepest common ancestor instead of an error.

    >>> str(common_datasets_path([Path("/data/ds1"), Path("/data/ds2")]))
    '/data'
    >>> str(common_datasets_path([Path("/data/a/ds1"), Path("/data/b/ds2")]))
    '/data'
    """
    return Path(os.path.commonpath([str(Path(r).parent) for r in roots]))


def datasets_base(items: Sequence[Item], datasets_path: str | Path | None, source: Path | None) -> Path:
    """DATASETS_PATH: ``datasets_path`` if given (every file must be under it),
    else the common parent of the raw datasets."""
    if datasets_path is None:
        return common_datasets_path(sorted({i.root for i in items}))
    base = absolute(datasets_path)
    outside = [(i.path, "not under --datasets-path") for i in items if not i.path.is_relative_to(base)]
    outside += [(i.image, "image not under --datasets-path") for i in items
                if i.image is not None and not i.image.is_relative_to(base)]
    if outside:
        raise InputError(listing(outside, len(items), f"files outside {base}"), source or base,
                         "give the folder that holds every dataset to --datasets-path, or leave it out")
    return base


def build_config(labels_or_images: Sequence[str | Path], options: InitConfigOptions | None = None, *,
                 source: str | Path | None = None, **kwargs: Any) -> dict[str, Any]:
    """The data config for these labels (``type='LABEL'``) or images, as the JSON's dict.

    Every check runs before anything is returned so a caller never writes a
    partial config. ``source`` is the file named in error messages (the path
    list); relative paths are taken from the current folder.
    """
    opts = resolve_options(InitConfigOptions, options, kwargs)
    src = absolute(source) if source is not None else None
    paths = list(dict.fromkeys(absolute(p) for p in labels_or_images))
    if not paths:
        raise InputError("no files to split", src, "give at least one label or image path")

    items, problems = parse_items(paths, opts.type, src)
    check_files(items, problems, len(paths), opts.type, src, opts.datalad_get)
    if opts.type == "LABEL":
        items = choose_labels(items, opts.label_dir, opts.label, opts.allow_several_labels, src)
    base = datasets_base(items, opts.datasets_path, src)
    if opts.check_geometry:
        check_geometry(items, opts.check_geometry, src)
    channels = {i.path: channel_paths(i.image or i.path, opts.channels, i.path if i.image else None)
                for i in items} if opts.channels else {}

    entries = [Entry(i.path.relative_to(base).as_posix(), i.root.relative_to(base).as_posix() or ".",
                     i.name.subject) for i in items]
    splits = assign_splits(entries, opts.ratios, seed=opts.seed, split_by=opts.split_by, stratify=opts.stratify)
    images = [i.image if i.image is not None else i.path for i in items]
    if channels:  # entries become {"IMAGE": [channels], "LABEL": label} objects
        objects = {i.path.relative_to(base).as_posix(): entry(channels[i.path], i.path if i.image else None,
                                                              base) for i in items}
        splits = {s: [objects[p] for p in paths] for s, paths in splits.items()}
        images = [p for i in items for p in channels[i.path]]
    for s, r in zip(SPLITS, opts.ratios):
        if r > 0 and not splits[s]:
            log.warning("%s is empty: %d %s(s) are too few for a ratio of %g", s,
                        len({split_unit(e, opts.split_by) for e in entries}), opts.split_by, float(r))
    return config_dict(images, base, splits, entries, opts)


def config_dict(images: Sequence[Path], base: Path, splits: Mapping[str, list],
                entries: Sequence[Entry], opts: InitConfigOptions) -> dict[str, Any]:
    """The config JSON's content, with what made the split (seed, ratios, counts, tool)."""
    subject_of = {e.path: (e.dataset, e.subject) for e in entries}
    return {
        "TYPE": opts.type,
        "CONTRASTS": contrasts_code(BidsName.parse(p).suffix or "" for p in images),
        "DATASETS_PATH": str(base),
        **splits,
        "SEED": opts.seed,
        "SPLIT_BY": opts.split_by,
        "STRATIFY": opts.stratify,
        "SPLIT_RATIOS": {s: float(r) for s, r in zip(SPLITS, opts.ratios)},
        "COUNTS": {s: {"files": len(splits[s]), "subjects": len({subject_of[entry_key(p)] for p in splits[s]})}
                   for s in SPLITS},
        "GeneratedBy": {"Name": TOOL_NAME, "Version": __version__,
                        "Date": derivatives_now()},  # honours SOURCE_DATE_EPOCH: reruns write the same bytes
    }

