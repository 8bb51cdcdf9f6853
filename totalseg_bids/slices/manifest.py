"""An export's record of itself: ``slices.tsv`` (every file back to its volume, split, axis and index)
and ``slices_request.json`` (what it was made from), so a rerun of the same request does nothing
and a different one is refused rather than mixed in."""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path

from ..core.atomic import atomic_write_json, atomic_write_text
from ..core.config import Case, read_request, request_difference, request_record
from ..core.errors import OutputError
from .cases import SliceCase
from .options import SlicesOptions

log = logging.getLogger(__name__)

MANIFEST = "slices.tsv"
#: What the export was made from (cases, options, input sizes/times): a rerun compares it.
REQUEST_FILE = "slices_request.json"
MANIFEST_COLUMNS = ("file", "mask", "split", "subject", "images", "label", "axis", "index",
                    "source_axis", "source_index", "has_label")


def request(cases: Sequence[SliceCase], opts: SlicesOptions, out: Path, dataset_dir: Path | None) -> dict:
    """What this export is made from (the options that change its files), for :func:`up_to_date`."""
    return request_record([Case(c.split, c.images, c.label) for c in cases], {
        "channels": list(opts.channels or []), "labels_tsv": str(opts.labels_tsv or ""), "out": out,
        "axis": opts.axis, "only_labelled": opts.only_labelled, "empty_fraction": opts.empty_fraction,
        "windows": opts.windows, "percentile": opts.percentile, "fmt": opts.format, "layout": opts.layout,
        "dataset_dir": dataset_dir, "seed": opts.seed, "folds": opts.folds if opts.layout == "nnunet2d" else None,
        "pad_to": list(opts.pad_to or [])})


def up_to_date(base: Path, wanted: dict, overwrite: bool) -> bool:
    """True when the export in ``base`` came from this very request; a different one is refused."""
    manifest = base / MANIFEST
    if not manifest.exists() or overwrite:
        return False
    old = read_request(base / REQUEST_FILE)
    diff = "made by an older version" if old is None else request_difference(old, wanted)
    if diff is None:
        log.info("%s is up to date with the config; nothing to do", manifest)
        return True
    raise OutputError(f"an export from another request is here ({diff})", manifest,
                      "pass --overwrite to export again, or choose another --out")


def slice_count(base: Path) -> int:
    """The slices an existing manifest lists."""
    with open(base / MANIFEST, encoding="utf-8") as fh:
        return sum(1 for _ in fh) - 1


def remove_previous(base: Path) -> None:
    """Delete the files the previous export's manifest lists, then the manifest."""
    manifest = base / MANIFEST
    if not manifest.exists():
        return
    with open(manifest, encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            for rel in [*row["file"].split(";"), row["mask"]]:
                if rel:
                    (base / rel).unlink(missing_ok=True)
    manifest.unlink()


def write_manifest(base: Path, rows: Sequence[dict], wanted: dict) -> Path:
    """The request, then the manifest last: its presence means the export is whole."""
    lines = ["\t".join(MANIFEST_COLUMNS)] + ["\t".join(str(r[c]) for c in MANIFEST_COLUMNS) for r in rows]
    atomic_write_json(base / REQUEST_FILE, wanted)
    atomic_write_text(base / MANIFEST, "\n".join(lines) + "\n")
    return base / MANIFEST
