"""One entry's checks: load image and label, measure, compare, render; problems become flags."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..bids import is_binary_label
from ..errors import TotalsegBidsError
from ..geometry import apply_affine, axcodes, dice, grid_mismatch, resample_label
from ..nifti import Volume, load_image, load_label
from .figures import label_figures
from .render import Views, render_views

log = logging.getLogger(__name__)


def _flag(level: str, code: str, message: str) -> dict[str, str]:
    return {"level": level, "code": code, "message": message}


def _short(exc: BaseException) -> str:
    if isinstance(exc, TotalsegBidsError):
        return exc.problem
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"


def orientation(affine: np.ndarray) -> str:
    try:
        return axcodes(affine)
    except Exception:  # noqa: BLE001 - a degenerate affine has no orientation
        return "?"


def _load(path, loader, what: str, geometry: dict[str, Any], flags: list[dict[str, str]]):
    """Load ``path`` with ``loader``; a missing or unreadable file becomes an error flag."""
    if path is None:
        flags.append(_flag("error", f"missing_{what}", "no image for this label" if what == "image"
                           else "no label given"))
        return None
    try:
        vol = loader(path)
    except Exception as exc:  # noqa: BLE001 - QC reports bad data, it does not stop on it
        if isinstance(exc, FileNotFoundError):
            flags.append(_flag("error", f"missing_{what}", f"{what} file is missing"))
        else:
            flags.append(_flag("error", f"{what}_unreadable", f"{what}: {_short(exc)}"))
        return None
    geometry[what] = {"orientation": orientation(vol.affine), "shape": list(vol.data.shape),
                      "spacing_mm": [round(float(s), 4) for s in vol.grid.spacing]}
    return vol


def _label_flags(lab, label_path, figures: dict[str, Any], flags: list[dict[str, str]]) -> None:
    """Findings about a readable label: empty, at the edge, fragmented, values its name forbids."""
    figures.update(label_figures(lab.data, lab.affine))
    if figures["empty"]:
        flags.append(_flag("error", "empty_label", "label is empty"))
    if figures["touches_edge"]:
        flags.append(_flag("warning", "touches_edge", "label touches the edge of its field of view"))
    expected = max(1, len(figures["classes"]))
    if figures["components"] > expected:
        flags.append(_flag("warning", "components",
                           f"{figures['components']} connected components (expected {expected})"))
    values = sorted(int(v) for v in figures["classes"])
    if label_path is not None and is_binary_label(label_path) and values and values != [1]:
        flags.append(_flag("error", "label_values", f"a _seg/_mask label must hold 0 and 1 only, "
                                                    f"found values {[0] + values}"))


def _compare(img, lab, cmp_vol, figures: dict[str, Any]):
    """The comparison label on the image grid (header resampling, so misalignment stays
    visible), with its volume, Dice and centroid shift against the label."""
    on_image = Volume(resample_label(cmp_vol.data, cmp_vol.affine, img.grid), img.affine)
    figures["compare_volume_ml"] = label_figures(on_image.data, img.affine)["volume_ml"]
    if lab is not None and figures.get("grid_match"):
        figures["dice_vs_compare"] = round(dice(lab.data, on_image.data), 4)
        a, b = np.argwhere(lab.data > 0), np.argwhere(on_image.data > 0)
        if len(a) and len(b):
            ca, cb = apply_affine(img.affine, np.stack([a.mean(axis=0), b.mean(axis=0)]))
            figures["centroid_shift_mm"] = round(float(np.linalg.norm(ca - cb)), 2)
    return on_image


def _render(img, lab, cmp_on_image, flags: list[dict[str, str]]) -> Views | None:
    try:
        views = render_views(img, lab, cmp_on_image)
    except Exception as exc:  # noqa: BLE001 - a rendering bug must not stop the pipeline
        log.debug("QC rendering failed", exc_info=True)
        flags.append(_flag("error", "render_failed", f"could not render: {_short(exc)}"))
        return None
    if not views.inside_fov:
        flags.append(_flag("error", "outside_fov", "label lies outside the image field of view"))
    return views


def evaluate_entry(image, label, compare_label=None) -> tuple[dict[str, Any], Views | None]:
    """Load, measure and render one entry; problems become flags, never exceptions.

    Returns the record's data part (figures, flags, geometry) and the views
    (None when there is no readable image).
    """
    flags: list[dict[str, str]] = []
    info: dict[str, Any] = {"figures": {}, "geometry": {}, "flags": flags}
    figures = info["figures"]
    lab = _load(label, load_label, "label", info["geometry"], flags)  # a label problem is named first
    img = _load(image, load_image, "image", info["geometry"], flags)
    cmp_vol = None
    if compare_label is not None:
        try:
            cmp_vol = load_label(compare_label)
        except Exception as exc:  # noqa: BLE001
            flags.append(_flag("warning", "compare_unreadable", f"comparison label: {_short(exc)}"))
    if lab is not None:
        _label_flags(lab, label, figures, flags)
    if lab is not None and img is not None:
        why = grid_mismatch(img.grid, lab.grid)
        figures["grid_match"], figures["grid_mismatch"] = why is None, why
        if why:
            flags.append(_flag("error", "grid_mismatch", f"label and image grids differ: {why} "
                                                         "(label shown resampled through the headers)"))
    cmp_on_image = _compare(img, lab, cmp_vol, figures) if cmp_vol is not None and img is not None else None
    views = _render(img, lab, cmp_on_image, flags) if img is not None else None
    return info, views
