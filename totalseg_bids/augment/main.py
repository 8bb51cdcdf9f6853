"""Batch step and CLI of ``python -m totalseg_bids.augment``."""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from ..core import flags
from ..core import cli
from ..core.atomic import atomic_write_text, ensure_writable_dir
from ..core.errors import InputError, UsageError
from ..core.options import options_from_args, resolve_options
from .options import LAYOUTS, AugmentOptions

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


def build_jobs(rows: list[dict], src: Path, out: Path, recipe: dict,
               options: AugmentOptions) -> tuple[list, list[dict]]:
    """One job and one manifest row per output sample, for every split (``options.layout`` resolved)."""
    from .layout import sample_paths, sample_stem
    from .sample import Job

    jobs, manifest = [], []
    for split in ("train", "val", "test"):
        split_rows = [r for r in rows if r["split"] == split]
        plan = split_plan(split_rows, split, options.targets.get(split), options.keep_originals, options.seed)
        for s in plan:
            row = split_rows[s.source]
            files = row["file"].split(";")
            stem = sample_stem(files)
            name = f"{stem}_{s.name.split('-', 1)[1]}" if s.augmented else stem
            mask_ext = Path(row["mask"]).suffix or ".png"
            f_imgs, f_mask = sample_paths(options.layout, split, name, Path(files[0]).suffix, mask_ext, len(files))
            has_mask = bool(row["mask"])
            jobs.append(Job(tuple(src / f for f in files), src / row["mask"] if has_mask else None,
                            tuple(out / f for f in f_imgs), out / f_mask if has_mask else None,
                            recipe, s.seed, s.augmented, channel_count(row)))
            manifest.append({"file": ";".join(f_imgs), "mask": f_mask if has_mask else "", "split": split,
                             "source_file": row["file"], "source_mask": row["mask"], "has_label": row["has_label"],
                             "augmented": int(s.augmented), "seed": s.seed})
    return jobs, manifest


def sample_record(base: Path, row: dict, status: str) -> dict:
    """The result of one sample (a manifest row): its first image file, its mask, split and seed.

    >>> sample_record(Path("/aug"), {"file": "images/train/a.png", "mask": "", "split": "train",
    ...                              "augmented": "1", "seed": "7"}, "written")["path"]
    '/aug/images/train/a.png'
    """
    return {"status": status, "path": str(base / row["file"].split(";")[0]), "kind": "sample",
            "mask": str(base / row["mask"]) if row["mask"] else None, "split": row["split"],
            "augmented": bool(int(row["augmented"])), "seed": int(row["seed"])}


def manifest_record(path: Path, manifest: list[dict], status: str) -> dict:
    """The result of the whole set: ``augment.tsv`` and the samples per split."""
    counts = {split: sum(r["split"] == split for r in manifest) for split in ("train", "val", "test")}
    return {"status": status, "path": str(path), "kind": "manifest", "samples": len(manifest), **counts}


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
    from ..nnunet.dataset import dataset_dir

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


def augment(src: Path, out: Path, options: AugmentOptions | None = None, **kwargs: Any) -> list[dict]:
    """Write the augmented dataset and ``augment.tsv``: one record per sample, then the manifest's.

    ``layout`` defaults to the layout of ``src`` (mmseg, or nnunet2d when it has a ``dataset.json``).
    A rerun of the same request is a no-op (every record ``skipped``); a different one needs
    ``overwrite``. Samples that fail raise one :class:`BatchError` once the others are
    written (``done``: their records); the manifest is then not written, so the set never looks whole.
    """
    import albumentations as A

    from ..core.config import Case, request_record
    from .recipe import load_recipe

    options = resolve_options(AugmentOptions, options, kwargs)
    recipe = A.to_dict(load_recipe(options.recipe))
    rows, meta = read_slices(src)
    options = replace(options, layout=options.layout or ("nnunet2d" if meta is not None else "mmseg"))
    base = output_base(src, out, options.layout, meta, options.dataset)
    request = request_record([Case("TRAINING", (Path(src).resolve() / "slices.tsv",), None)], {
        "recipe": json.dumps(recipe, sort_keys=True), "targets": options.targets,
        "keep_originals": options.keep_originals, "seed": options.seed, "layout": options.layout,
        "dataset": list(options.dataset)})
    if _up_to_date(base, request, options.overwrite):
        log.info("%s is up to date with its request; nothing to do", base / MANIFEST)
        manifest = read_manifest(base / MANIFEST)
        return [*(sample_record(base, r, "skipped") for r in manifest),
                manifest_record(base / MANIFEST, manifest, "skipped")]
    ensure_writable_dir(base)
    return _write_samples(rows, src, base, meta, recipe, request, options)


def _write_samples(rows, src: Path, base: Path, meta, recipe: dict, request: dict,
                   options: AugmentOptions) -> list[dict]:
    """Every sample (in parallel), then the layout's metadata, the request and the manifest last."""
    from ..core.atomic import atomic_write_json
    from ..core.parallel import finish, run_tasks
    from .sample import run_job

    job_list, manifest = build_jobs(rows, src, base, recipe, options)
    if options.layout == "clotseg":
        _write_clot_trees(rows, src, base, options.jobs)
    outcomes = run_tasks(run_job, job_list, keys=[m["file"] for m in manifest], jobs=options.jobs, desc="augment")
    for row, outcome in zip(manifest, outcomes):
        if outcome.ok:
            row["transforms"] = outcome.value
            outcome.value = sample_record(base, row, "written")
    records = finish(outcomes, "samples")
    if options.layout == "nnunet2d":
        from .nnunet_out import write_nnunet_meta

        write_nnunet_meta(src, base, meta, manifest)
    atomic_write_json(base / REQUEST_FILE, request)
    path = write_manifest(base / MANIFEST, manifest)  # last: its presence means the set is whole
    return [*records, manifest_record(path, manifest, "written")]


def read_manifest(path: Path) -> list[dict]:
    """The rows of an ``augment.tsv``."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _write_clot_trees(rows: list[dict], src: Path, out: Path, jobs: int | None) -> None:
    from ..core.parallel import finish, run_tasks
    from .original import copy_sliced, original_items, write_volume

    items = original_items(rows, out)
    finish(run_tasks(write_volume, items, keys=[str(d) for _, d in items], jobs=jobs, desc="original"), "volumes")
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
    p.add_argument("--layout", choices=LAYOUTS, default=None,
                   help="default: the layout of --slices; clotseg: "
                        "Processed/{Original,Sliced,Augmented}/{Training,Validation,Testing}/{images,masks}")
    flags.add_dataset_id(p, dest="dataset_id", default=502, help="nnunet2d output dataset id (default 502)")
    p.add_argument("-dname", "--dataset-name", default="SlicesAugmented",
                   help="nnunet2d output dataset name (default SlicesAugmented)")
    p.add_argument("--seed", type=int, default=0, help="seed of sampling and transforms")
    cli.add_batch_args(p, dask=False)
    return p


def _run(args: argparse.Namespace) -> int:
    options = options_from_args(AugmentOptions, args)
    if args.slices.resolve() == args.out.resolve():
        raise UsageError("--out must differ from --slices", None, "write to a new folder")
    cli.report("augment", lambda: augment(args.slices, args.out, options))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)


if __name__ == "__main__":
    raise SystemExit(main())
