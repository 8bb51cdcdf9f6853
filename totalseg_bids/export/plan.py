"""Which file each volume of a config becomes: ``<out>/<split>/<stem>.npy``, the stem by the
chosen naming, refusing two volumes that would share a name."""

from __future__ import annotations

from pathlib import Path

from ..core.bids import BidsName, raw_root_of
from ..core.config import SPLIT_NAMES, check_cases, load_config
from ..core.errors import InputError
from ..core.npy_volume import npy_stems
from .options import NpyNames


def plan(config: Path, datasets_path: str | None, out: Path, names: NpyNames = "bids") -> list[tuple[Path, Path]]:
    """(source NIfTI, target .npy) for every image and label of the config."""
    cases = load_config(config, datasets_path).cases()
    check_cases(cases, config, strict_splits=True)
    ids = [npy_stems([Path(p) for p in c.images], None, names)[0] for c in cases]
    clash = len(set(ids)) < len(ids) and names == "clot"  # one subject id in two datasets: the dataset leads
    items: dict[Path, Path] = {}
    for case in cases:
        images = list(dict.fromkeys(Path(p) for p in case.images))
        label = Path(case.label) if case.label is not None else None
        prefix = f"{raw_root_of(images[0]).name}_" if clash else ""
        folder = out / SPLIT_NAMES.get(case.split, case.split.lower())
        for src, stem in zip([*images, *([label] if label else [])], npy_stems(images, label, names, prefix)):
            dst = folder / f"{stem}.npy"
            if items.setdefault(dst, src) != src:
                raise InputError(f"two volumes would both be written as {dst.name}", src,
                                 "use --npy-names bids, or give the cases distinct subject labels")
    return [(src, dst) for dst, src in items.items()]


def import_plan(folder: Path, out: Path) -> list[tuple[Path, Path]]:
    """(source .npy, target NIfTI) for every ``.npy`` volume below ``folder``, same relative path."""
    return [(p, out / p.relative_to(folder).with_suffix(".nii.gz")) for p in sorted(folder.rglob("*.npy"))]


#: The split folders in the order the lung tutorial reports them, with its headings.
SPLIT_HEADINGS = {"train": "Training data", "val": "Validation data", "test": "Test data"}


def split_counts(items: list[tuple[Path, Path]]) -> dict[str, dict[str, int]]:
    """Images and masks written per split folder (a label source is a mask).

    >>> split_counts([(Path("sub-1_CT.nii.gz"), Path("o/train/sub-1_CT.npy")),
    ...               (Path("sub-1_CT_label-lungs_seg.nii.gz"), Path("o/train/sub-1_CT_label-lungs_seg.npy"))])
    {'train': {'images': 1, 'masks': 1}}
    """
    counts: dict[str, dict[str, int]] = {}
    for src, dst in items:
        name = BidsName.try_parse(src.name)
        kind = "masks" if name is not None and name.is_derivative else "images"
        split = counts.setdefault(dst.parent.name, {"images": 0, "masks": 0})
        split[kind] += 1
    return {s: counts[s] for s in (*SPLIT_HEADINGS, *sorted(set(counts) - set(SPLIT_HEADINGS))) if s in counts}


def counts_text(counts: dict[str, dict[str, int]]) -> str:
    """The counts per split as the lung tutorial reports its data (one line per split).

    >>> print(counts_text({"train": {"images": 216, "masks": 216}, "test": {"images": 3, "masks": 0}}))
    Training data: 216 images, 216 masks
    Test data: 3 images, 0 masks
    """
    return "\n".join(f"{SPLIT_HEADINGS.get(s, s)}: {c['images']} images, {c['masks']} masks"
                     for s, c in counts.items())
