"""The batch step: convert every volume in parallel; one BatchError for the ones that failed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core import cli
from ..core.datalad import ensure_content, get_requested
from ..core.options import resolve_options
from ..core.parallel import finish, run_tasks
from .case import export_file, import_file
from .options import ExportOptions
from .plan import counts_text, import_plan, plan, split_counts

log = logging.getLogger(__name__)


def _convert(func: Callable[[tuple[Path, Path]], dict], items: list[tuple[Path, Path]], out: Path,
             opts: ExportOptions, desc: str) -> list[dict]:
    """Fetch the sources (``datalad_get``), convert them, save ``out`` (``datalad_save``)."""
    ensure_content([src for src, _ in items], get=get_requested(opts.datalad_get))
    with cli.saving(opts, [out], f"totalseg_bids.export: {len(items)} volume(s) ({desc})"):
        outcomes = run_tasks(func, items, keys=[str(s) for s, _ in items], jobs=opts.jobs, executor=opts.executor,
                             scheduler=opts.scheduler, desc=desc)
        return finish(outcomes, "volumes")


def export_config(config: str | Path, out: str | Path, options: ExportOptions | None = None,
                  **kwargs: Any) -> list[dict]:
    """Every image and label of ``config`` as ``.npy`` + sidecar under ``out``: one
    record per volume; a volume that fails raises one BatchError after the others are done."""
    opts = resolve_options(ExportOptions, options, kwargs)
    ensure_content(cli.config_inputs(config, opts.datasets_path), get=get_requested(opts.datalad_get))
    items = plan(Path(config), opts.datasets_path, Path(out), opts.npy_names)
    if opts.overwrite:
        for _, dst in items:
            dst.unlink(missing_ok=True)
    records = _convert(export_file, items, Path(out), opts, "export")
    log.info("volumes per split:\n%s", counts_text(split_counts(items)))
    return records


def import_folder(folder: str | Path, out: str | Path, options: ExportOptions | None = None,
                  **kwargs: Any) -> list[dict]:
    """Every ``.npy`` volume below ``folder`` back to NIfTI under ``out`` (same relative path)."""
    opts = resolve_options(ExportOptions, options, kwargs)
    return _convert(import_file, import_plan(Path(folder), Path(out)), Path(out), opts, "import")
