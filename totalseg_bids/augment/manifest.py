"""The augmented set's record of itself: ``augment.tsv`` (every sample back to its source slice,
seed and applied transforms) and ``augment_request.json`` (what it was made from), and the
``slices.tsv`` of the export it reads; the stdout records of samples and of the set."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ..core.atomic import atomic_write_text
from ..core.config import read_request, request_difference
from ..core.errors import InputError, OutputExistsError

#: The manifest ``totalseg_bids.slices`` writes beside its slices (the input).
SLICES_MANIFEST = "slices.tsv"
MANIFEST = "augment.tsv"
#: What the augmented set was made from (source manifest, recipe, counts, seed): a rerun compares it.
REQUEST_FILE = "augment_request.json"
COLUMNS = ("file", "mask", "split", "source_file", "source_mask", "has_label", "augmented", "seed", "transforms")


def read_slices(folder: Path) -> tuple[list[dict], dict | None]:
    """Rows of ``slices.tsv`` and, for an nnU-Net 2D export, its ``dataset.json``."""
    tsv = folder / SLICES_MANIFEST
    if not tsv.is_file():
        raise InputError("no slices.tsv", tsv, "point --slices at the output folder of totalseg_bids.slices "
                         "(nnunet2d: the Dataset<NNN>_<Name> folder)")
    with open(tsv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if not rows or not {"file", "mask", "split", "has_label", "images"} <= set(rows[0]):
        raise InputError("slices.tsv lacks file/mask/split/has_label/images columns", tsv,
                         "rerun totalseg_bids.slices")
    meta = folder / "dataset.json"
    return rows, (json.loads(meta.read_text(encoding="utf-8")) if meta.is_file() else None)


def channel_count(row: dict) -> int:
    """Real image channels of a row: one per file, or the volumes stacked in one file.

    >>> channel_count({"file": "a.png", "images": "cta.nii.gz;ncct.nii.gz"})
    2
    >>> channel_count({"file": "a_0000.png;a_0001.png", "images": "x;y"})
    2
    """
    files = row["file"].split(";")
    return len(files) if len(files) > 1 else len(row["images"].split(";"))


def sample_record(base: Path, row: dict, status: str) -> dict:
    """The result of one sample (a manifest row): its first image file, its mask, split and seed.

    >>> sample_record(Path("/aug"), {"file": "images/train/a.png", "mask": "", "split": "train",
    ...                              "augmented": "1", "seed": "7"}, "written")["path"]
    '/aug/images/train/a.png'
    """
    return {"status": status, "path": str(base / row["file"].split(";")[0]), "kind": "sample",
            "mask": str(base / row["mask"]) if row["mask"] else None, "split": row["split"],
            "augmented": bool(int(row["augmented"])), "seed": int(row["seed"])}


def manifest_record(path: Path, manifest: list[dict], status: str, tree: dict | None = None) -> dict:
    """The result of the whole set: ``augment.tsv`` and the samples per split (and, for the clot
    workflow's layout, what each ``Processed`` folder holds per split)."""
    counts = {split: sum(r["split"] == split for r in manifest) for split in ("train", "val", "test")}
    return {"status": status, "path": str(path), "kind": "manifest", "samples": len(manifest), **counts,
            **({"processed": tree} if tree else {})}


def write_manifest(path: Path, manifest: list[dict]) -> Path:
    """Write ``augment.tsv`` atomically (one row per sample, :data:`COLUMNS`)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, COLUMNS, delimiter="\t", lineterminator="\n")
    writer.writeheader()
    writer.writerows(manifest)
    atomic_write_text(path, buf.getvalue())
    return path


def read_manifest(path: Path) -> list[dict]:
    """The rows of an ``augment.tsv``."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def up_to_date(base: Path, request: dict, overwrite: bool) -> bool:
    """True when ``base`` already holds the augmentation of this very request; another one is refused."""
    if overwrite or not (base / MANIFEST).is_file():
        return False
    old = read_request(base / REQUEST_FILE)
    diff = "made by an older version" if old is None else request_difference(old, request)
    if diff is None:
        return True
    raise OutputExistsError(f"an augmentation of another request is here ({diff})", base / MANIFEST,
                            "pass --overwrite to augment again, or choose another --out")
