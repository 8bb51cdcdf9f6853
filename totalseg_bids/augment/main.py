"""Batch step and CLI of ``python -m totalseg_bids.augment``."""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
from pathlib import Path
from typing import Sequence

from ..core import flags
from ..core import cli
from ..core.atomic import atomic_write_text, ensure_writable_dir
from ..core.errors import InputError, UsageError

log = logging.getLogger(__name__)

MANIFEST = "augment.tsv"
#: What the augmented set was made from (source manifest, recipe, counts, seed): a rerun compares it.
REQUEST_FILE = "augment_request.json"
COLUMNS = ("file", "mask", "split", "source_file", "source_mask", "has_label", "augmented", "seed", "transforms")


def read_slices(folder: Path) -> tuple[list[dict], dict | None]:
    """Rows of ``slices.tsv`` and, for an nnU-Net 2D export, its ``dataset.json``."""
    tsv = folder / "slices.tsv"
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


def split_plan(split_rows: list[dict], split: str, target: int | None, keep_originals: bool, seed: int) -> list:
    """The samples of one split: TESTING (or no target) copies its slices, else exactly ``target``."""
    from .plan import plan_split

    labelled = [r["has_label"] == "1" for r in split_rows]
    volumes = [r["images"] for r in split_rows]
    if split == "test" or target is None:
        return plan_split(labelled, volumes, len(split_rows), True, seed, split)
    if keep_originals and target < len(split_rows):
        raise UsageError(f"--target-{split} {target} is below the {len(split_rows)} originals "
                         "kept by --keep-originals", None, "raise the target or drop --keep-originals")
    return plan_split(labelled, volumes, target, keep_originals, seed, split)


def build_jobs(rows: list[dict], src: Path, out: Path, targets: dict[str, int | None], recipe: dict,
               keep_originals: bool, seed: int, layout: str = "mmseg") -> tuple[list, list[dict]]:
    """One job and one manifest row per output sample, for every split."""
    from .layout import sample_paths, sample_stem
    from .sample import Job

    jobs, manifest = [], []
    for split in ("train", "val", "test"):
        split_rows = [r for r in rows if r["split"] == split]
        for s in split_plan(split_rows, split, targets.get(split), keep_originals, seed):
            row = split_rows[s.source]
            files = row["file"].split(";")
            stem = sample_stem(files)
            name = f"{stem}_{s.name.split('-', 1)[1]}" if s.augmented else stem
            mask_ext = Path(row["mask"]).suffix or ".png"
            f_imgs, f_mask = sample_paths(layout, split, name, Path(files[0]).suffix, mask_ext, len(files))
            has_mask = bool(row["mask"])
            jobs.append(Job(tuple(src / f for f in files), src / row["mask"] if has_mask else None,
                            tuple(out / f for f in f_imgs), out / f_mask if has_mask else None,
                            recipe, s.seed, s.augmented, channel_count(row)))
            manifest.append({"file": ";".join(f_imgs), "mask": f_mask if has_mask else "", "split": split,
                             "source_file": row["file"], "source_mask": row["mask"], "has_label": row["has_label"],
                             "augmented": int(s.augmented), "seed": s.seed})
    return jobs, manifest


def write_manifest(path: Path, manifest: list[dict]) -> Path:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, COLUMNS, delimiter="\t", lineterminator="\n")
    writer.writeheader()
    writer.writerows(manifest)
    atomic_write_text(path, buf.getvalue())
    return path


def output_base(src: Path, out: Path, layout: str, meta: dict | None, dataset: tuple[int, str]) -> Path:
    """Where the samples go: ``out``, or ``out/Dataset<NNN>_<Name>`` for nnunet2d."""
    if layout != "nnunet2d":
        return out
    from ..core.nnunet import dataset_dir

    if meta is None:
        raise UsageError("--layout nnunet2d needs an nnU-Net 2D slice export", src,
                         "make the slices with totalseg_bids.slices --layout nnunet2d")
    base = dataset_dir(out, *dataset)
    if base.resolve() == src.resolve():
        raise UsageError("the augmented dataset would replace its source", base, "choose another -dnum/-dname")
    return base


def _up_to_date(base: Path, request: dict, overwrite: bool) -> bool:
    """True when ``base`` already holds the augmentation of this very request; another one is refused."""
    from ..core.config import read_request, request_difference
    from ..core.errors import OutputExistsError

    if overwrite or not (base / MANIFEST).is_file():
        return False
    old = read_request(base / REQUEST_FILE)
    diff = "made by an older version" if old is None else request_difference(old, request)
    if diff is None:
        return True
    raise OutputExistsError(f"an augmentation of another request is here ({diff})", base / MANIFEST,
                            "pass --overwrite to augment again, or choose another --out")


def augment(src: Path, out: Path, targets: dict[str, int | None], recipe_path: Path | None = None,
            keep_originals: bool = False, seed: int = 0, jobs: int | None = None, layout: str | None = None,
            dataset: tuple[int, str] = (502, "SlicesAugmented"), overwrite: bool = False) -> Path:
    """Write the augmented dataset and ``augment.tsv``; returns the manifest path.

    ``layout`` defaults to the layout of ``src`` (mmseg, or nnunet2d when it has a ``dataset.json``).
    A rerun of the same request is a no-op; a different one needs ``overwrite``.
    """
    import albumentations as A

    from ..core.atomic import atomic_write_json
    from ..core.config import Case, request_record
    from ..core.parallel import raise_for_failures, run_tasks
    from .recipe import load_recipe
    from .sample import run_job

    recipe = A.to_dict(load_recipe(recipe_path))
    rows, meta = read_slices(src)
    layout = layout or ("nnunet2d" if meta is not None else "mmseg")
    base = output_base(src, out, layout, meta, dataset)
    request = request_record([Case("TRAINING", (Path(src).resolve() / "slices.tsv",), None)], {
        "recipe": json.dumps(recipe, sort_keys=True), "targets": targets, "keep_originals": keep_originals,
        "seed": seed, "layout": layout, "dataset": list(dataset)})
    if _up_to_date(base, request, overwrite):
        log.info("%s is up to date with its request; nothing to do", base / MANIFEST)
        return base / MANIFEST
    ensure_writable_dir(base)
    job_list, manifest = build_jobs(rows, src, base, targets, recipe, keep_originals, seed, layout)
    if layout == "clotseg":
        _write_clot_trees(rows, src, base, jobs)
    outcomes = run_tasks(run_job, job_list, keys=[m["file"] for m in manifest], jobs=jobs, desc="augment")
    raise_for_failures(outcomes, "samples")
    for row, outcome in zip(manifest, outcomes):
        row["transforms"] = outcome.value
    if layout == "nnunet2d":
        from .nnunet_out import write_nnunet_meta

        write_nnunet_meta(src, base, meta, manifest)
    atomic_write_json(base / REQUEST_FILE, request)
    return write_manifest(base / MANIFEST, manifest)  # last: its presence means the set is whole


def _write_clot_trees(rows: list[dict], src: Path, out: Path, jobs: int | None) -> None:
    from ..core.parallel import raise_for_failures, run_tasks
    from .original import copy_sliced, original_items, write_volume

    items = original_items(rows, out)
    raise_for_failures(run_tasks(write_volume, items, keys=[str(d) for _, d in items], jobs=jobs,
                                 desc="original"), "volumes")
    copy_sliced(rows, src, out)


def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser(
        "augment", "Augment 2D slices to exact per-split sample counts (albumentations).",
        epilog="example:\n  python -m totalseg_bids.augment --slices slices --out aug "
               "--target-train 2000 --target-val 400 --seed 1 -j 2")
    p.add_argument("--slices", required=True, type=Path,
                   help="output of totalseg_bids.slices (mmseg folder, or the nnunet2d Dataset<NNN>_<Name> folder)")
    flags.add_out(p, dest="out", required=True,
                  help="output folder (nnunet2d: the nnUNet_raw folder that gets Dataset<NNN>_<Name>)")
    p.add_argument("--target-train", type=int, default=None, metavar="N", help="training samples to write")
    p.add_argument("--target-val", type=int, default=None, metavar="M", help="validation samples to write")
    p.add_argument("--recipe", type=Path, default=None,
                   help="albumentations Compose saved with A.save (default: the six-transform clot recipe)")
    p.add_argument("--keep-originals", action="store_true", help="count the source slices into the targets")
    p.add_argument("--layout", choices=("mmseg", "nnunet2d", "clotseg"), default=None,
                   help="default: the layout of --slices; clotseg: "
                        "Processed/{Original,Sliced,Augmented}/{Training,Validation,Testing}/{images,masks}")
    flags.add_dataset_id(p, dest="dataset_id", default=502, help="nnunet2d output dataset id (default 502)")
    p.add_argument("-dname", "--dataset-name", default="SlicesAugmented",
                   help="nnunet2d output dataset name (default SlicesAugmented)")
    p.add_argument("--seed", type=int, default=0, help="seed of sampling and transforms")
    cli.add_batch_args(p, dask=False)
    return p


def _run(args: argparse.Namespace) -> int:
    for name in ("target_train", "target_val"):
        if getattr(args, name) is not None and getattr(args, name) < 0:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 0", None, "e.g. --target-train 1000")
    if args.slices.resolve() == args.out.resolve():
        raise UsageError("--out must differ from --slices", None, "write to a new folder")
    print(augment(args.slices, args.out, {"train": args.target_train, "val": args.target_val},
                  args.recipe, args.keep_originals, args.seed, args.jobs, args.layout,
                  (args.dataset_id, args.dataset_name), args.overwrite))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)


if __name__ == "__main__":
    raise SystemExit(main())
