"""The statistics as a report: TSV rows (one per dataset/split/class), two Markdown tables or JSON,
chosen by the ``-o`` file's extension; an identical file is left alone."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from ..core.atomic import atomic_write_text
from ..core.errors import UsageError

TSV_COLUMNS = ("dataset", "split", "cases", "subjects", "labelled_cases", "class_index", "class_name",
               "voxel_percent", "images_with_class", "volume_ml_mean", "volume_ml_min", "volume_ml_max",
               "spacing_min", "spacing_median", "spacing_max", "shape_min", "shape_median", "shape_max")


def _vec(v: Sequence[float]) -> str:
    return "x".join(f"{x:g}" for x in v)


def to_rows(stats: dict) -> list[dict]:
    """Flatten ``{dataset: {split: group}}`` to TSV rows (one per class)."""
    rows = []
    for dataset, splits in stats.items():
        for split, g in splits.items():
            base = {"dataset": dataset, "split": split, "cases": g["cases"], "subjects": g["subjects"],
                    "labelled_cases": g["labelled_cases"],
                    "spacing_min": _vec(g["spacing_mm"]["min"]), "spacing_median": _vec(g["spacing_mm"]["median"]),
                    "spacing_max": _vec(g["spacing_mm"]["max"]), "shape_min": _vec(g["shape"]["min"]),
                    "shape_median": _vec(g["shape"]["median"]), "shape_max": _vec(g["shape"]["max"])}
            classes = g["classes"] or {"": None}
            for idx, c in classes.items():
                vol = (c or {}).get("volume_ml") or {}
                rows.append(base | {
                    "class_index": idx, "class_name": (c or {}).get("name", ""),
                    "voxel_percent": (c or {}).get("voxel_percent", ""),
                    "images_with_class": (c or {}).get("images", ""),
                    "volume_ml_mean": vol.get("mean", ""), "volume_ml_min": vol.get("min", ""),
                    "volume_ml_max": vol.get("max", "")})
    return rows


def image_tables(stats: dict) -> str:
    """A slice export's class table per split, in the form of MMSegmentation's dataset pages
    (class name, pixel percentage, number of images containing the class)."""
    out = []
    for dataset, splits in stats.items():
        for split, g in splits.items():
            out += [f"{dataset} {split}: {g['images']} images", "",
                    "| class name | pixel percentage | Num. images in this category |",
                    "| --- | --- | --- |"]
            out += [f"| {c['name']} | {c['voxel_percent']:.2f} | {c['images']} |" for c in g["classes"].values()]
            out.append("")
    return "\n".join(out)


def markdown(stats: dict) -> str:
    """Two Markdown tables: the groups (cases, subjects, grids) and the classes (a slice export:
    :func:`image_tables`)."""
    if any(g.get("kind") == "slices" for splits in stats.values() for g in splits.values()):
        return image_tables(stats)
    out = ["| dataset | split | cases | subjects | labelled | spacing mm (min / median / max) "
           "| shape (min / median / max) |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    for dataset, splits in stats.items():
        for split, g in splits.items():
            sp, sh = g["spacing_mm"], g["shape"]
            out.append(f"| {dataset} | {split} | {g['cases']} | {g['subjects']} | {g['labelled_cases']} | "
                       f"{_vec(sp['min'])} / {_vec(sp['median'])} / {_vec(sp['max'])} | "
                       f"{_vec(sh['min'])} / {_vec(sh['median'])} / {_vec(sh['max'])} |")
    out += ["", "| dataset | split | class | voxel % | images with class | volume ml mean (min-max) |",
            "| --- | --- | --- | --- | --- | --- |"]
    for dataset, splits in stats.items():
        for split, g in splits.items():
            for idx, c in g["classes"].items():
                vol = c["volume_ml"]
                v = f"{vol['mean']:.2f} ({vol['min']:.2f}-{vol['max']:.2f})" if vol else "-"
                out.append(f"| {dataset} | {split} | {idx} {c['name']} | {c['voxel_percent']:.2f} | "
                           f"{c['images']} | {v} |")
    return "\n".join(out) + "\n"


def tsv(stats: dict) -> str:
    """The TSV report: a header of :data:`TSV_COLUMNS`, one row per dataset/split/class."""
    rows = to_rows(stats)
    return "\t".join(TSV_COLUMNS) + "\n" + "".join("\t".join(str(r[c]) for c in TSV_COLUMNS) + "\n" for r in rows)


def to_json(stats: dict) -> str:
    """The nested statistics, ``{dataset: {split: group}}``, as indented JSON."""
    return json.dumps(stats, indent=2, ensure_ascii=False) + "\n"


#: Report formats of ``-o``, by file extension.
REPORTS: dict[str, Callable[[dict], str]] = {".tsv": tsv, ".md": markdown, ".json": to_json}


def report_format(path: Path) -> str:
    """The report format of an ``-o`` file, from its extension.

    >>> report_format(Path("stats.md")), report_format(Path("out/S.TSV"))
    ('.md', '.tsv')
    """
    suffix = Path(path).suffix.lower()
    if suffix not in REPORTS:
        raise UsageError(f"-o {path}: unknown report format {suffix or '(no extension)'}", None,
                         "name it .tsv, .md or .json")
    return suffix


def write_report(stats: dict, path: Path, fmt: str | None = None) -> Path:
    """Write ``stats`` to ``path`` in ``fmt`` (default: by its extension), atomically.

    An identical file is left alone: a rerun then changes nothing (a datalad-saved,
    locked file stays a saved link instead of becoming a modified copy)."""
    text = REPORTS[fmt or report_format(path)](stats)
    try:
        if Path(path).read_text(encoding="utf-8") == text:
            return path
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write_text(path, text)
    return path
