"""The batch step: refuse clashing outputs, fetch the inputs, crop every case in parallel, save."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..core import cli
from ..core.bids import dataset_path
from ..core.datalad import ensure_content, get_requested
from ..core.errors import UsageError
from ..core.options import resolve_options
from ..core.parallel import finish, run_tasks
from .case import CropCase, CropResult, crop_case
from .discovery import cases_from_bids, cases_from_config
from .options import CropOptions


def _task(item: tuple[CropCase, CropOptions]) -> CropResult:
    case, opts = item
    return crop_case(case, opts)


def case_inputs(cases: Sequence[CropCase]) -> list[Path]:
    """Every file the cases read (images, ROI masks, labels), once each."""
    return list(dict.fromkeys(p for c in cases for p in (c.image, c.roi, *c.labels) if p is not None))


def crop_batch(cases: Sequence[CropCase], options: CropOptions | None = None, **kwargs: Any) -> list[CropResult]:
    """Crop every case in parallel; the results, or one BatchError listing the failed
    cases (``.done``: the results of the others, whose outputs are complete).

    Annexed inputs without content are fetched first with ``datalad_get`` (else one
    error names them all); with ``datalad_save`` the output folders are saved at the
    end, also when some cases failed.
    """
    opts = resolve_options(CropOptions, options, kwargs)
    seen: dict[Path, Path] = {}
    for c in cases:
        out = c.output(opts)
        if out in seen and seen[out] != c.image:
            raise UsageError(f"two inputs map to the same output {out}", c.image, "give each dataset its own --out")
        seen[out] = c.image
    ensure_content(case_inputs(cases), get=get_requested(opts.datalad_get))
    per_case = replace(opts, scheduler=None)  # a Dask client stays here, never shipped with each task
    roots = sorted({c.out_root for c in cases if c.out_root is not None})
    with cli.saving(opts, roots, f"totalseg_bids.crop: {len(cases)} image(s) cropped to label-{opts.roi_label}"):
        outcomes = run_tasks(_task, [(c, per_case) for c in cases], keys=[dataset_path(c.image) for c in cases],
                             jobs=opts.jobs, executor=opts.executor, scheduler=opts.scheduler, desc="crop")
        return finish(outcomes, "images")


def crop_dataset(bids_dir: str | Path, out: str | Path | None = None, options: CropOptions | None = None,
                 **kwargs: Any) -> list[CropResult]:
    """Crop every image of ``options.contrasts`` in a raw BIDS dataset (and its labels) into ``out``
    (default ``<bids_dir>/derivatives/cropped``)."""
    opts = resolve_options(CropOptions, options, kwargs)
    return crop_batch(cases_from_bids(bids_dir, out, opts), opts)


def crop_config(config: str | Path, out: str | Path | None = None, options: CropOptions | None = None,
                **kwargs: Any) -> list[CropResult]:
    """Crop every image channel of a data config (and each case's label with its first channel)."""
    opts = resolve_options(CropOptions, options, kwargs)
    return crop_batch(cases_from_config(config, out, opts), opts)
