"""The batch step: plan every split's samples, make them in parallel, then the layout's metadata,
the request and the manifest last (its presence means the set is whole)."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..core import cli
from ..core.atomic import atomic_write_json, ensure_writable_dir
from ..core.config import Case, request_record
from ..core.datalad import ensure_content, get_requested
from ..core.errors import UsageError
from ..core.options import resolve_options
from ..core.parallel import finish, run_tasks
from ..nnunet.dataset import dataset_dir
from .case import Job, run_job
from .layout import sample_paths, sample_stem
from .manifest import (
    MANIFEST,
    REQUEST_FILE,
    SLICES_MANIFEST,
    channel_count,
    manifest_record,
    read_manifest,
    read_slices,
    sample_record,
    up_to_date,
    write_manifest,
)
from .nnunet2d import write_nnunet_meta
from .options import AugmentOptions
from .original import copy_sliced, original_items, tree_counts, tree_table, write_volume
from .plan import split_plan
from .recipe import load_recipe

log = logging.getLogger(__name__)


def build_jobs(rows: list[dict], src: Path, out: Path, recipe: dict,
               options: AugmentOptions) -> tuple[list[Job], list[dict]]:
    """One job and one manifest row per output sample, for every split (``options.layout`` resolved)."""
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
            f_imgs, f_mask = sample_paths(options.layout or "mmseg", split, name, Path(files[0]).suffix, mask_ext,
                                          len(files))
            has_mask = bool(row["mask"])
            jobs.append(Job(tuple(src / f for f in files), src / row["mask"] if has_mask else None,
                            tuple(out / f for f in f_imgs), out / f_mask if has_mask else None,
                            recipe, s.seed, s.augmented, channel_count(row)))
            manifest.append({"file": ";".join(f_imgs), "mask": f_mask if has_mask else "", "split": split,
                             "source_file": row["file"], "source_mask": row["mask"], "has_label": row["has_label"],
                             "augmented": int(s.augmented), "seed": s.seed})
    return jobs, manifest


def output_base(src: Path, out: Path, layout: str, meta: dict | None, dataset: tuple[int, str]) -> Path:
    """Where the samples go: ``out``, or ``out/Dataset<NNN>_<Name>`` for nnunet2d."""
    if layout != "nnunet2d":
        return out
    if meta is None:
        raise UsageError("--layout nnunet2d needs an nnU-Net 2D slice export", src,
                         "make the slices with totalseg_bids.slices --layout nnunet2d")
    base = dataset_dir(out, *dataset)
    if base.resolve() == src.resolve():
        raise UsageError("the augmented dataset would replace its source", base, "choose another -dnum/-dname")
    return base


def augment(slices: str | Path, out: str | Path, options: AugmentOptions | None = None,
            **kwargs: Any) -> list[dict]:
    """Write the augmented dataset and ``augment.tsv``: one record per sample, then the manifest's.

    ``slices`` is an output folder of ``totalseg_bids.slices``; ``layout`` defaults to its layout
    (mmseg, or nnunet2d when it has a ``dataset.json``).
    A rerun of the same request is a no-op (every record ``skipped``); a different one needs
    ``overwrite``. Samples that fail raise one :class:`BatchError` once the others are
    written (``done``: their records); the manifest is then not written, so the set never looks whole.
    """
    import albumentations as A

    options = resolve_options(AugmentOptions, options, kwargs)
    src, out = Path(slices), Path(out)
    if src.resolve() == out.resolve():
        raise UsageError("--out must differ from --slices", None, "write to a new folder")
    recipe = A.to_dict(load_recipe(options.recipe))
    rows, meta = read_slices(src)
    options = replace(options, layout=options.layout or ("nnunet2d" if meta is not None else "mmseg"))
    base = output_base(src, out, options.layout or "mmseg", meta, options.dataset)
    request = request_record([Case("TRAINING", (src.resolve() / SLICES_MANIFEST,), None)], {
        "recipe": json.dumps(recipe, sort_keys=True), "targets": options.targets,
        "keep_originals": options.keep_originals, "seed": options.seed, "layout": options.layout,
        "dataset": list(options.dataset)})
    if up_to_date(base, request, bool(options.overwrite)):
        log.info("%s is up to date with its request; nothing to do", base / MANIFEST)
        manifest = read_manifest(base / MANIFEST)
        return [*(sample_record(base, r, "skipped") for r in manifest),
                manifest_record(base / MANIFEST, manifest, "skipped", _tree(rows, manifest, options))]
    ensure_writable_dir(base)
    with cli.saving(options, [base], f"totalseg_bids.augment: {src.name} augmented ({options.layout})"):
        return _write_samples(rows, src, base, meta, recipe, request, options)


def _write_samples(rows: list[dict], src: Path, base: Path, meta: dict | None, recipe: dict, request: dict,
                   options: AugmentOptions) -> list[dict]:
    """Every sample (in parallel), then the layout's metadata, the request and the manifest last."""
    job_list, manifest = build_jobs(rows, src, base, recipe, options)
    ensure_content(list(dict.fromkeys(p for j in job_list for p in (*j.images, j.mask) if p is not None)),
                   get=get_requested(options.datalad_get))
    if options.layout == "clotseg":
        _write_clot_trees(rows, src, base, options)
    outcomes = run_tasks(run_job, job_list, keys=[m["file"] for m in manifest], jobs=options.jobs,
                         executor=options.executor, scheduler=options.scheduler, desc="augment")
    for row, outcome in zip(manifest, outcomes):
        if outcome.ok:
            row["transforms"] = outcome.value
            outcome.value = sample_record(base, row, "written")
    records = finish(outcomes, "samples")
    if options.layout == "nnunet2d" and meta is not None:
        write_nnunet_meta(src, base, meta, manifest)
    atomic_write_json(base / REQUEST_FILE, request)
    path = write_manifest(base / MANIFEST, manifest)  # last: its presence means the set is whole
    return [*records, manifest_record(path, manifest, "written", _tree(rows, manifest, options))]


def _tree(rows: list[dict], manifest: list[dict], options: AugmentOptions) -> dict | None:
    """The clot layout's counts per folder and split (also logged as the workflow's table), else None."""
    if options.layout != "clotseg":
        return None
    counts = tree_counts(rows, manifest)
    log.info("samples per split (Original: cases, Sliced: slices, Augmented: samples):\n%s", tree_table(counts))
    return counts


def _write_clot_trees(rows: list[dict], src: Path, out: Path, options: AugmentOptions) -> None:
    """The clot workflow's ``Processed/Original`` (source volumes as ``.npy``) and ``Processed/Sliced``."""
    volumes = [Path(p) for r in rows for p in (*r["images"].split(";"), r.get("label", "")) if p]
    ensure_content(list(dict.fromkeys(volumes)), get=get_requested(options.datalad_get))
    items = original_items(rows, out)
    finish(run_tasks(write_volume, items, keys=[str(d) for _, d in items], jobs=options.jobs,
                     executor=options.executor, scheduler=options.scheduler, desc="original"), "volumes")
    copy_sliced(rows, src, out)
