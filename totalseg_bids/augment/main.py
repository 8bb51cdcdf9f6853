"""Batch step and CLI of ``python -m totalseg_bids.augment``."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path
from typing import Sequence

from ..core import flags
from ..core import cli
from ..core.atomic import atomic_write_text, ensure_writable_dir
from ..core.errors import InputError, UsageError

MANIFEST = "augment.tsv"
COLUMNS = ("file", "mask", "split", "source_file", "source_mask", "has_label", "augmented", "seed", "transforms")


def read_slices(folder: Path) -> list[dict]:
    """Rows of ``slices.tsv`` (the mmseg layout of ``totalseg_bids.slices``)."""
    tsv = folder / "slices.tsv"
    if not tsv.is_file():
        raise InputError("no slices.tsv", tsv, "point --slices at the --out folder of totalseg_bids.slices")
    with open(tsv, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if not rows or not {"file", "mask", "split", "has_label", "images"} <= set(rows[0]):
        raise InputError("slices.tsv lacks file/mask/split/has_label/images columns", tsv,
                         "rerun totalseg_bids.slices with --layout mmseg")
    return rows


def build_jobs(rows: list[dict], src: Path, out: Path, targets: dict[str, int | None], recipe: dict,
               keep_originals: bool, seed: int, layout: str = "mmseg") -> tuple[list, list[dict]]:
    """One job and one manifest row per output sample, for every split."""
    from .layout import sample_paths
    from .plan import plan_split
    from .sample import Job

    jobs, manifest = [], []
    for split in ("train", "val", "test"):
        split_rows = [r for r in rows if r["split"] == split]
        target = targets.get(split)
        if split == "test" or target is None:
            plan = plan_split([r["has_label"] == "1" for r in split_rows], [r["images"] for r in split_rows],
                              len(split_rows), True, seed, split)
        else:
            if keep_originals and target < len(split_rows):
                raise UsageError(f"--target-{split} {target} is below the {len(split_rows)} originals "
                                 "kept by --keep-originals", None, "raise the target or drop --keep-originals")
            plan = plan_split([r["has_label"] == "1" for r in split_rows], [r["images"] for r in split_rows],
                              target, keep_originals, seed, split)
        for s in plan:
            row = split_rows[s.source]
            stem, ext = Path(row["file"]).stem, Path(row["file"]).suffix
            name = f"{stem}_{s.name.split('-', 1)[1]}" if s.augmented else stem
            f_img, f_mask = sample_paths(layout, split, name, ext, Path(row["mask"]).suffix)
            jobs.append(Job(src / row["file"], src / row["mask"], out / f_img, out / f_mask,
                            recipe, s.seed, s.augmented))
            manifest.append({"file": f_img, "mask": f_mask, "split": split, "source_file": row["file"],
                             "source_mask": row["mask"], "has_label": row["has_label"],
                             "augmented": int(s.augmented), "seed": s.seed})
    return jobs, manifest


def copy_sliced(rows: list[dict], src: Path, out: Path) -> None:
    """The clot workflow's ``Processed/Sliced`` tree: the source slices as they are."""
    from ..core.atomic import atomic_copy
    from .layout import sample_paths

    for row in rows:
        f_img, f_mask = sample_paths("clotseg", row["split"], Path(row["file"]).stem, Path(row["file"]).suffix,
                                     Path(row["mask"]).suffix, "Sliced")
        atomic_copy(src / row["file"], out / f_img)
        atomic_copy(src / row["mask"], out / f_mask)


def augment(src: Path, out: Path, targets: dict[str, int | None], recipe_path: Path | None = None,
            keep_originals: bool = False, seed: int = 0, jobs: int | None = None, layout: str = "mmseg") -> Path:
    """Write the augmented dataset and ``augment.tsv``; returns the manifest path."""
    import albumentations as A

    from ..core.parallel import raise_for_failures, run_tasks
    from .recipe import load_recipe
    from .sample import run_job

    recipe = A.to_dict(load_recipe(recipe_path))
    ensure_writable_dir(out)
    rows = read_slices(src)
    job_list, manifest = build_jobs(rows, src, out, targets, recipe, keep_originals, seed, layout)
    if layout == "clotseg":
        copy_sliced(rows, src, out)
    outcomes = run_tasks(run_job, job_list, keys=[m["file"] for m in manifest], jobs=jobs, desc="augment")
    raise_for_failures(outcomes, "samples")
    for row, outcome in zip(manifest, outcomes):
        row["transforms"] = outcome.value
    buf = io.StringIO()
    writer = csv.DictWriter(buf, COLUMNS, delimiter="\t", lineterminator="\n")
    writer.writeheader()
    writer.writerows(manifest)
    atomic_write_text(out / MANIFEST, buf.getvalue())
    return out / MANIFEST


def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser(
        "augment", "Augment 2D slices to exact per-split sample counts (albumentations).",
        epilog="example:\n  python -m totalseg_bids.augment --slices slices --out aug "
               "--target-train 2000 --target-val 400 --seed 1 -j 2")
    p.add_argument("--slices", required=True, type=Path, help="output folder of totalseg_bids.slices (mmseg)")
    flags.add_out(p, dest="out", required=True, help="output folder (mmseg layout + augment.tsv)")
    p.add_argument("--target-train", type=int, default=None, metavar="N", help="training samples to write")
    p.add_argument("--target-val", type=int, default=None, metavar="M", help="validation samples to write")
    p.add_argument("--recipe", type=Path, default=None,
                   help="albumentations Compose saved with A.save (default: the six-transform clot recipe)")
    p.add_argument("--keep-originals", action="store_true", help="count the source slices into the targets")
    p.add_argument("--layout", choices=("mmseg", "clotseg"), default="mmseg",
                   help="clotseg: Processed/{Sliced,Augmented}/{Training,Validation,Testing}/{images,masks}")
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
                  args.recipe, args.keep_originals, args.seed, args.jobs, args.layout))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)


if __name__ == "__main__":
    raise SystemExit(main())
