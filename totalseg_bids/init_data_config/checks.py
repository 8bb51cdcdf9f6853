"""Checking the listed files before a config names them: each of the declared TYPE, present (or
fetched), a readable NIfTI, paired with its image, and (``--check-geometry``) on its image's grid,
binary where its name says so, not empty. Every problem is reported in one error."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.bids import BidsName, image_for_label, is_binary_label, raw_root_of
from ..core.datalad import ensure_content, get_command, get_requested, is_annex_pointer
from ..core.errors import GeometryError, InputError
from ..core.geometry import Grid, grid_mismatch
from ..core.nifti import load_grid, load_nifti, read_data
from ..core.progress import progress
from .listing import SHOWN, listing
from .options import GeometryMode

log = logging.getLogger(__name__)


@dataclass
class Item:
    """A listed file with its parsed name, its image (LABEL) and raw dataset root."""

    path: Path
    name: BidsName
    root: Path
    image: Path | None = None


def parse_items(paths: Sequence[Path], type: str, source: Path | None) -> tuple[list[Item], list[tuple[Path, str]]]:
    """Parse names and check each file is of the declared TYPE; wrong TYPE is
    its own error because its fix (list other files / change --type) differs."""
    items: list[Item] = []
    problems: list[tuple[Path, str]] = []
    wrong: list[tuple[Path, str]] = []
    for path in paths:
        try:
            name = BidsName.parse(path)
            root = raw_root_of(path)
        except InputError as exc:
            problems.append((path, exc.problem))
            continue
        if type == "LABEL" and not name.is_derivative:
            wrong.append((path, "an image, not a label"))
        elif type == "IMAGE" and name.is_derivative:
            wrong.append((path, f"a label (_{name.deriv_suffix}), not an image"))
        else:
            items.append(Item(path, name, root))
    if wrong:
        other = "IMAGE" if type == "LABEL" else "LABEL"
        raise InputError(listing(wrong, len(paths), f"files do not match --type {type}"),
                         source or wrong[0][0],
                         f"list only {type.lower()} files, or use --type {other} if they all are")
    return items, problems


def check_files(items: list[Item], problems: list[tuple[Path, str]], total: int, type: str,
                 source: Path | None, datalad_get: bool) -> None:
    """Existence, pairing and annex content of every file; all problems in one error."""
    annexed: list[Path] = []
    for item in items:
        if is_annex_pointer(item.path):
            annexed.append(item.path)
        elif not item.path.exists():
            problems.append((item.path, "file not found"))
            continue
        elif item.path.is_dir():
            problems.append((item.path, "is a folder"))
            continue
        elif not readable_nifti(item.path, problems):
            continue
        if type == "LABEL":
            try:
                item.image = image_for_label(item.path)
            except InputError as exc:
                problems.append((item.path, exc.problem))
                continue
            if is_annex_pointer(item.image):
                annexed.append(item.image)
            elif item.image.exists():
                readable_nifti(item.image, problems)
    annexed = list(dict.fromkeys(annexed))
    if annexed and get_requested(datalad_get) and not problems:
        ensure_content(annexed, get=True)
        annexed = []
    if not problems and not annexed:
        return
    everything = problems + [(p, "annexed, content not present") for p in annexed]
    fixes = []
    if problems:
        fixes.append("fix or remove the listed paths (relative ones are looked up from the current folder, "
                     "then the list's folder)")
    if annexed:
        fixes.append(f"run `{get_command(annexed[:SHOWN])}{' ...' if len(annexed) > SHOWN else ''}` "
                     "or pass --datalad-get")
    raise InputError(listing(everything, total, "listed files unusable"), source or everything[0][0],
                     "; ".join(fixes))


def readable_nifti(path: Path, problems: list[tuple[Path, str]]) -> bool:
    """Whether ``path`` has a readable 3D NIfTI header (cheap: no voxel data is
    read), so a text file or a sidecar named like a label never lands in a config."""
    try:
        load_grid(path)
    except InputError as exc:
        problems.append((path, exc.problem))
        return False
    return True



def check_pairs(pairs: Sequence[tuple[Path, Path | None]]) -> list[tuple[Path, str]]:
    """Problems of ``(label, image)`` pairs that nnU-Net would trip on later:
    label off its image's grid, non-binary ``_seg``/``_mask``, empty label.
    ``(image, None)`` only checks the image header is a readable 3D NIfTI."""
    problems: list[tuple[Path, str]] = []
    for label, image in progress(pairs, desc="headers"):
        try:
            if image is None:
                load_grid(label)
                continue
            img = load_nifti(label, check_forms=False)
            data = read_data(img, label)
            why = grid_mismatch(Grid.of(img), load_grid(image))
            if why:
                problems.append((label, f"not on its image's grid: {why}"))
            if not np.any(data):
                problems.append((label, "empty label (all zero)"))
            elif is_binary_label(label) and np.any((data != 0) & (data != 1)):
                values = np.unique(data)
                problems.append((label, f"not binary (values {values[:6].tolist()}"
                                        f"{'...' if values.size > 6 else ''})"))
        except InputError as exc:
            problems.append((Path(exc.path or label), exc.problem))
    return problems


def check_geometry(items: Sequence[Item], mode: GeometryMode, src: Path | None) -> None:
    """Labels off their image's grid: one GeometryError (``error``) or a warning each (``warn``)."""
    bad = check_pairs([(i.path, i.image) for i in items])
    if bad and mode == "error":
        raise GeometryError(listing(bad, len(items), "files fail --check-geometry"), src or bad[0][0],
                            "resample the labels onto their images (nearest neighbour) or fix them, "
                            "or pass --check-geometry warn")
    for path, why in bad:
        log.warning("%s: %s", path, why)

