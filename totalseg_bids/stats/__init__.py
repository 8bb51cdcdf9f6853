"""Dataset statistics of a data config: cases, subjects, classes, volumes, spacings, shapes.

Per dataset (the raw BIDS folder of each case) and per split, the class
table a training set is judged by: for every class the voxel share (% of all label voxels of
that group, background included) and the number of images containing it,
its volume in ml (mean/min/max over the images that contain it), and a
summary of voxel spacings and shapes (min/median/max per axis).

Stdout is one JSON line: ``{"stage": "stats", "status": "computed", "path":
<config>, "cases": N, "datasets": {dataset: {split: ...}}, "outputs": [...]}``.
``-o FILE`` writes the report by its extension: ``.tsv`` (one row per
dataset/split/class), ``.md`` (two Markdown tables) or ``.json`` (nested, the
record's ``datasets``); ``--json FILE`` writes the JSON beside another ``-o``.
Without any file the Markdown tables go to stderr, for a human reading the terminal.

Class names come from ``--labels-tsv``, a ``_dseg.tsv`` beside a label, the
``label-`` entity of binary masks, else ``class<value>``. Cases without a
label count as cases and in spacings/shapes, not in class statistics.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core import flags
from ..core import cli
from ..core.atomic import atomic_write_text
from ..core.bids import dataset_path, is_binary_label, raw_root_of
from ..core.config import SPLIT_NAMES
from ..core.derivatives import label_class_names
from ..core.errors import InputError
from ..core.options import options_from_args, resolve_options

log = logging.getLogger(__name__)

TSV_COLUMNS = ("dataset", "split", "cases", "subjects", "labelled_cases", "class_index", "class_name",
               "voxel_percent", "images_with_class", "volume_ml_mean", "volume_ml_min", "volume_ml_max",
               "spacing_min", "spacing_median", "spacing_max", "shape_min", "shape_median", "shape_max")


# ============================================================ pure functions
@dataclass
class CaseStats:
    """What one case contributes: its grid and per-class voxel counts."""

    dataset: str
    split: str
    subject: str
    spacing: tuple[float, float, float]
    shape: tuple[int, int, int]
    voxel_ml: float
    counts: dict[int, int] | None  # None: no label


def count_classes(label: np.ndarray) -> dict[int, int]:
    """Voxel count per value (background included).

    >>> count_classes(np.array([[0, 1], [1, 3]]))
    {0: 1, 1: 2, 3: 1}
    """
    values, counts = np.unique(np.asarray(label), return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts)}


def axis_summary(values: Sequence[Sequence[float]]) -> dict[str, list[float]]:
    """Per-axis min/median/max of a list of 3-vectors.

    >>> axis_summary([(1, 1, 3), (1, 2, 5)])
    {'min': [1.0, 1.0, 3.0], 'median': [1.0, 1.5, 4.0], 'max': [1.0, 2.0, 5.0]}
    """
    if not len(values):
        return {"min": [], "median": [], "max": []}
    a = np.asarray(values, float)
    return {k: [round(float(x), 4) for x in f(a, axis=0)] for k, f in
            (("min", np.min), ("median", np.median), ("max", np.max))}


def group_stats(cases: Sequence[CaseStats], names: dict[int, str]) -> dict:
    """Statistics of one dataset/split group.

    >>> c = [CaseStats("d", "train", "01", (1, 1, 1), (2, 2, 1), 0.001, {0: 3, 1: 1}),
    ...      CaseStats("d", "train", "02", (1, 1, 1), (2, 2, 1), 0.001, {0: 4})]
    >>> g = group_stats(c, {1: "sacrum"})
    >>> g["cases"], g["subjects"], g["classes"]["1"]["voxel_percent"], g["classes"]["1"]["images"]
    (2, 2, 12.5, 1)
    """
    labelled = [c for c in cases if c.counts is not None]
    total = sum(sum(c.counts.values()) for c in labelled)
    values = sorted({v for c in labelled for v in c.counts})
    classes = {}
    for v in values:
        present = [c for c in labelled if c.counts.get(v, 0) > 0]
        vox = sum(c.counts.get(v, 0) for c in labelled)
        vols = [c.counts[v] * c.voxel_ml for c in present]
        classes[str(v)] = {
            "name": "background" if v == 0 else names.get(v, f"class{v}"),
            "voxel_percent": round(100.0 * vox / total, 4) if total else 0.0,
            "images": len(present),
            "volume_ml": {"mean": round(float(np.mean(vols)), 4), "min": round(float(np.min(vols)), 4),
                          "max": round(float(np.max(vols)), 4)} if vols else None,
        }
    return {
        "cases": len(cases),
        "subjects": len({c.subject for c in cases}),
        "labelled_cases": len(labelled),
        "spacing_mm": axis_summary([c.spacing for c in cases]),
        "shape": axis_summary([c.shape for c in cases]),
        "classes": classes,
    }


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


def markdown(stats: dict) -> str:
    """Two Markdown tables: the groups (cases, subjects, grids) and the classes."""
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


# ================================================================ per case
def case_stats(item: tuple[str, str, str, Path, Path | None]) -> CaseStats:
    """Read one case: the image grid from its header, the label's class counts."""
    from ..core.nifti import grid_mismatch, load_grid, load_image, load_label, voxel_volume_ml

    dataset, split, subject, image, label = item
    grid = load_grid(image)
    load_image(image)  # NaN/inf intensities would end up in a training set unnoticed
    counts = None
    if label is not None:
        lab = load_label(label, binary=is_binary_label(label))  # a {0, 2} _seg is a mislabelled mask
        why = grid_mismatch(lab.grid, grid)
        if why:
            log.warning("%s: label not on its image's grid (%s); class statistics use the label grid",
                        label, why)
        counts = count_classes(lab.data)
        voxel_ml = voxel_volume_ml(lab.affine)
    else:
        voxel_ml = voxel_volume_ml(grid.affine)
    return CaseStats(dataset, split, subject, tuple(float(s) for s in grid.spacing),
                     tuple(int(s) for s in grid.shape), voxel_ml, counts)


@dataclass(frozen=True)
class StatsOptions:
    """How the statistics are gathered: class names (``labels_tsv``) and where the cases are read."""

    datasets_path: str | None = None
    labels_tsv: Path | None = None
    jobs: int | None = None
    executor: str = "local"
    scheduler: object = None

    def __post_init__(self) -> None:
        if self.labels_tsv is not None and not Path(self.labels_tsv).is_file():
            from ..core.errors import MissingFileError

            raise MissingFileError("labels table not found", self.labels_tsv, "give a TSV with columns index, name")


def config_stats(config: str | Path, options: StatsOptions | None = None, **kwargs) -> dict:
    """``{dataset: {split: group stats}}`` for a config (see :func:`group_stats`).

    A case that cannot be read raises one BatchError once the others are read
    (``.done``: their :class:`CaseStats`): statistics of part of a config would mislead.
    """
    from ..core.config import check_cases, load_config
    from ..core.parallel import finish, run_tasks

    opts = resolve_options(StatsOptions, options, kwargs)
    cfg = load_config(config, opts.datasets_path, require=("TRAINING",))
    cases = cfg.cases()
    if not cases:
        raise InputError("the config lists no cases", config, "add entries to TRAINING/VALIDATION/TESTING")
    check_cases(cases, config)  # a duplicate would be counted twice
    items = [(raw_root_of(c.image).name, SPLIT_NAMES[c.split], c.subject, c.image, c.label) for c in cases]
    outcomes = run_tasks(case_stats, items, keys=[dataset_path(c.image) for c in cases], jobs=opts.jobs,
                         executor=opts.executor, scheduler=opts.scheduler, desc="stats")
    per_case: list[CaseStats] = finish(outcomes, "cases")
    names = label_class_names([c.label for c in cases if c.label is not None], opts.labels_tsv)
    stats: dict = {}
    for dataset in sorted({c.dataset for c in per_case}):
        stats[dataset] = {}
        for split in ("train", "val", "test"):
            group = [c for c in per_case if c.dataset == dataset and c.split == split]
            if group:
                stats[dataset][split] = group_stats(group, names)
        stats[dataset]["all"] = group_stats([c for c in per_case if c.dataset == dataset], names)
    return stats


def tsv(stats: dict) -> str:
    """The TSV report: a header of :data:`TSV_COLUMNS`, one row per dataset/split/class."""
    rows = to_rows(stats)
    return "\t".join(TSV_COLUMNS) + "\n" + "".join("\t".join(str(r[c]) for c in TSV_COLUMNS) + "\n" for r in rows)


#: Report formats of ``-o``, by file extension.
REPORTS = {".tsv": tsv, ".md": markdown,
           ".json": lambda stats: json.dumps(stats, indent=2, ensure_ascii=False) + "\n"}


def report_format(path: Path) -> str:
    """The report format of an ``-o`` file, from its extension.

    >>> report_format(Path("stats.md")), report_format(Path("out/S.TSV"))
    ('.md', '.tsv')
    """
    suffix = Path(path).suffix.lower()
    if suffix not in REPORTS:
        from ..core.errors import UsageError

        raise UsageError(f"-o {path}: unknown report format {suffix or '(no extension)'}", None,
                         "name it .tsv, .md or .json")
    return suffix


# =================================================================== CLI
def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser("stats", __doc__.splitlines()[0],
                         epilog="stdout: one JSON line (status computed, path = the config, cases, datasets, "
                                "outputs).\nWithout -o/--json the Markdown tables go to stderr.\n"
                                "examples:\n  python -m totalseg_bids.stats --config train.json -o stats.tsv "
                                "--json stats.json\n  python -m totalseg_bids.stats --config train.json -o stats.md")
    p.add_argument("--config", required=True, type=Path, help="data config (docs/conventions.md section 4)")
    p.add_argument("--datasets-path", default=None, help="override the config's DATASETS_PATH")
    p.add_argument("--labels-tsv", type=Path, default=None, help="index/name table (a _dseg.tsv) for class names")
    flags.add_out(p, dest="output", default=None, metavar="OUT.tsv|OUT.md|OUT.json",
                  help="write the report here, in the format of its extension")
    p.add_argument("--json", type=Path, default=None, metavar="OUT.json", help="also write the JSON here")
    p.add_argument("-j", "--jobs", type=int, default=None, metavar="N", help="parallel workers")
    cli.add_datalad_args(p)
    return p


def _write_if_changed(path: Path, text: str) -> None:
    """Leave an identical file alone: a rerun then changes nothing (a datalad-saved,
    locked file stays a saved link instead of becoming a modified copy)."""
    try:
        if Path(path).read_text(encoding="utf-8") == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write_text(path, text)


def _run(args: argparse.Namespace) -> int:
    reports = [(path, fmt) for path, fmt in ((args.output, args.output and report_format(args.output)),
                                             (args.json, ".json")) if path is not None]
    cli.fetch_inputs(args, cli.config_inputs(args.config, args.datasets_path))
    stats = config_stats(args.config, options_from_args(StatsOptions, args))
    for path, fmt in reports:
        _write_if_changed(path, REPORTS[fmt](stats))
    cli.save_outputs(args, [path for path, _ in reports])
    if not reports and not args.quiet:
        sys.stderr.write(markdown(stats))
    cases = sum(splits["all"]["cases"] for splits in stats.values())
    cli.emit("stats", [{"status": "computed", "path": args.config, "cases": cases, "datasets": stats,
                        "outputs": [path for path, _ in reports]}])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)
