"""Finding the cases: every image of a BIDS dataset or a config, its ROI mask and its labels."""

from __future__ import annotations

from pathlib import Path

from ..core.bids import (
    BINARY_LABEL_SUFFIXES,
    IMAGE_DATATYPES,
    NAMINGS,
    BidsName,
    is_ct_suffix,
    label_value,
    raw_root_of,
    split_extension,
    subject_dir,
)
from ..core.config import load_config
from ..core.errors import MissingFileError
from ..core.folders import CROPPED, derivative_dir
from ..core.index import find_images
from .case import CropCase
from .options import CropOptions


def resolve_roi_dir(roi_dir: str | Path, raw_root: Path) -> Path:
    """A derivative name (``labels``) resolves inside ``<raw>/derivatives/``; a path is kept.

    >>> str(resolve_roi_dir("labels", Path("/d")))
    '/d/derivatives/labels'
    >>> str(resolve_roi_dir("/x/labels", Path("/d")))
    '/x/labels'
    """
    p = Path(roi_dir)
    if p.is_absolute() or len(p.parts) > 1 or p.exists():
        return p
    return derivative_dir(raw_root, str(roi_dir))


def find_roi(image: Path, roi_dir: Path, roi_label: str) -> tuple[Path | None, str]:
    """The ROI mask for ``image``: on its own grid if present, else the same
    subject/session's mask of another image (a CT's), preferring CT.

    Returns the path (or None) and a description of where it looked.
    """
    name = BidsName.parse(image)
    value = label_value(roi_label)
    folder = roi_dir / subject_dir(name, "x").parent
    own = [folder / dt / name.derivative(roi_label, naming=n).filename
           for dt in dict.fromkeys([image.parent.name, *IMAGE_DATATYPES]) for n in NAMINGS]
    for cand in own:
        if cand.exists() or cand.is_symlink():
            return cand, str(folder)
    others: list[Path] = []
    for dt_dir in sorted(p for p in folder.glob("*") if p.is_dir()):
        for f in sorted(dt_dir.glob("*.nii*")):
            n = BidsName.try_parse(f.name)
            if (n is None or not n.is_derivative or n.get("label") != value
                    or n.deriv_suffix not in BINARY_LABEL_SUFFIXES
                    or n.subject != name.subject or n.session != name.session):
                continue
            others.append(f)
    others.sort(key=lambda f: (not is_ct_suffix(BidsName.parse(f.name).suffix), f.name))
    return (others[0] if others else None), str(folder)


def labels_for_image(image: Path, label_root: Path, label_suffix: str | None) -> list[Path]:
    """Labels of ``image`` in ``label_root`` (either naming: ``<image stem>_label-X_seg``
    or ``<entities>_space-<suffix>_label-X_mask``) ending with ``label_suffix``
    (e.g. ``_label-sacrum_seg``); all of them when None."""
    name = BidsName.parse(image)
    folder = label_root / subject_dir(name, "x").parent
    out = []
    for f in sorted(folder.glob("*/sub-*.nii*")):
        n = BidsName.try_parse(f.name)
        if n is None or not n.is_derivative or n.source().filename != name.filename:
            continue
        if label_suffix and not split_extension(f.name)[0].endswith(label_suffix.removesuffix(".nii.gz")):
            continue
        out.append(f)
    return out


def cases_from_bids(bids_dir: str | Path, out: str | Path | None, opts: CropOptions) -> list[CropCase]:
    """One case per raw image of ``opts.contrasts`` in a BIDS dataset; ``out`` defaults to
    ``<bids_dir>/derivatives/cropped``."""
    bids_dir = Path(bids_dir)
    files = find_images(bids_dir, opts.contrasts)
    if not files:
        raise MissingFileError(f"no images with suffix {', '.join(opts.contrasts)}", bids_dir,
                               "check --contrasts (e.g. --contrasts CT T2w)")
    roi_root = resolve_roi_dir(opts.roi_dir, bids_dir)
    if not roi_root.is_dir():
        raise MissingFileError("ROI folder not found", roi_root, "check --roi-dir (a derivatives name or a path)")
    label_root = resolve_roi_dir(opts.label_dir, bids_dir) if opts.label_dir else None
    out_root = Path(out) if out else derivative_dir(bids_dir, CROPPED)
    cases = []
    for f in files:
        roi, searched = find_roi(f.path, roi_root, opts.roi_label)
        labels = tuple(labels_for_image(f.path, label_root, opts.label_suffix)) if label_root else ()
        cases.append(CropCase(f.path, roi, labels, out_root, bids_dir, searched))
    return cases


def cases_from_config(config: str | Path, out: str | Path | None, opts: CropOptions) -> list[CropCase]:
    """One case per config image channel; the case's label goes with its first channel. ``out``
    defaults to each raw dataset's ``derivatives/cropped``."""
    cases = []
    for c in load_config(config, opts.datasets_path).cases():
        for i, img in enumerate(c.images):
            raw = raw_root_of(img)
            out_root = Path(out) if out else derivative_dir(raw, CROPPED)
            roi, searched = find_roi(img, resolve_roi_dir(opts.roi_dir, raw), opts.roi_label)
            labels = (c.label,) if (c.label is not None and i == 0) else ()
            cases.append(CropCase(img, roi, labels, out_root, raw, searched))
    return cases
