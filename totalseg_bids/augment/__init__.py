"""Augment 2D slices to exact per-split target counts with albumentations.

Reads the output of ``totalseg_bids.slices`` (mmseg folder or nnU-Net 2D
dataset; channels stacked in one file or one file per channel) and writes
``--target-train`` training and ``--target-val`` validation samples: source
slices are drawn evenly across volumes, stratified by "slice has label" so the
split's positive/empty ratio is kept. The recipe's spatial transforms run once
on all channels and the mask (masks nearest-neighbour, never
intensity-adjusted); its intensity transforms run on each image channel with
their own random parameters. TESTING slices are copied, never augmented.
Every sample carries its own seed, so the output bytes do not depend on
``-j``, and ``augment.tsv`` records the source slice, the seed and the applied
transforms with their parameters. Layouts: mmseg, nnunet2d (``dataset.json``
and ``splits_final.json`` keep every sample in its source's split) and the clot
workflow's ``Processed/{Original,Sliced,Augmented}`` tree.

``python -m totalseg_bids.augment --slices slices --out aug --target-train 2000``;
library callers pass :class:`AugmentOptions` (or its fields as keywords) to
:func:`augment`. Modules: :mod:`.options`, :mod:`.recipe` (the albumentations
recipe), :mod:`.plan` (which source slice each sample comes from),
:mod:`.transforms` (the recipe on one sample), :mod:`.layout` (where samples
go), :mod:`.manifest`, :mod:`.nnunet2d`, :mod:`.original` (the clot trees),
:mod:`.case` (one sample), :mod:`.batch`, :mod:`.cli`.
"""

from .batch import augment, build_jobs, output_base
from .case import Job, read_array, read_channels, run_job, write_array, write_channels
from .cli import get_parser, main
from .layout import CLOT_SPLITS, LAYOUTS, AugmentLayout, sample_paths, sample_stem
from .manifest import (
    COLUMNS,
    MANIFEST,
    REQUEST_FILE,
    SLICES_MANIFEST,
    channel_count,
    manifest_record,
    read_manifest,
    read_slices,
    sample_record,
    write_manifest,
)
from .nnunet2d import case_id, write_nnunet_meta
from .options import AugmentOptions
from .original import copy_sliced, original_items, write_volume
from .plan import Sample, even_draw, plan_split, split_plan, strata_quota
from .recipe import default_recipe, load_recipe, split_recipe
from .transforms import channel_seed, transform

__all__ = [
    "AugmentLayout", "AugmentOptions", "CLOT_SPLITS", "COLUMNS", "Job", "LAYOUTS", "MANIFEST", "REQUEST_FILE",
    "SLICES_MANIFEST", "Sample", "augment", "build_jobs", "case_id", "channel_count", "channel_seed", "copy_sliced",
    "default_recipe", "even_draw", "get_parser", "load_recipe", "main", "manifest_record", "original_items",
    "output_base", "plan_split", "read_array", "read_channels", "read_manifest", "read_slices", "run_job",
    "sample_paths", "sample_record", "sample_stem", "split_plan", "split_recipe", "strata_quota", "transform",
    "write_array", "write_channels", "write_manifest", "write_nnunet_meta", "write_volume",
]
