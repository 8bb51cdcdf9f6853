"""Gathering the files of a config (a path list or a query of BIDS datasets), dropping the labels
the QC review marked, then building and writing the config."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.errors import UsageError
from ..core.options import resolve_options
from ..core.qc.marks import filter_labels, read_marks
from .case import make_config
from .listing import absolute, default_output, read_path_list
from .options import InitConfigOptions
from .query import query_bids

log = logging.getLogger(__name__)


def apply_qc_marks(paths: list[Path], opts: InitConfigOptions) -> list[Path]:
    """``paths`` without the labels ``opts.qc_marks`` drops (each dropped one is logged)."""
    if opts.qc_marks is None:
        return paths
    kept, dropped = filter_labels(paths, read_marks(opts.qc_marks), opts.exclude, opts.require_pass)
    for lab, why in dropped:
        log.warning("dropped %s (%s)", lab, why)
    return kept


def config_from_list(txt: str | Path, out: str | Path | None = None, options: InitConfigOptions | None = None,
                     **kwargs: Any) -> dict[str, Any]:
    """The config of the files a path list names, written to ``out`` (default: the list with
    ``.json`` for ``.txt``, the legacy behaviour); the stdout record."""
    opts = resolve_options(InitConfigOptions, options, kwargs)
    for flag, value in (("--label-suffix", opts.label_suffix), ("--contrasts", opts.contrasts)):
        if value:
            raise UsageError(f"{flag} only applies to --bids-dir", None,
                             "list exactly the files you want in the --txt file")
    paths = read_path_list(txt, datasets_path=opts.datasets_path)
    output = Path(out) if out is not None else default_output(absolute(txt))
    if absolute(output) == absolute(txt):
        raise UsageError("the output would overwrite the --txt list", output, "choose another -o path")
    return make_config(apply_qc_marks(paths, opts), output, opts, source=txt)


def config_from_bids(bids_dirs: Sequence[str | Path], out: str | Path | None,
                     options: InitConfigOptions | None = None, **kwargs: Any) -> dict[str, Any]:
    """The config of the labels (``label_dir``, ``label_suffix``) or images (``contrasts``) of
    BIDS datasets, written to ``out``; the stdout record."""
    opts = resolve_options(InitConfigOptions, options, kwargs)
    if out is None:
        raise UsageError("--bids-dir needs -o OUT.json (there is no list file to write it beside)", None,
                         "add e.g. -o train_sacrum.json")
    paths = query_bids(bids_dirs, opts.type, opts.label_dir, opts.label_suffix, opts.contrasts)
    return make_config(apply_qc_marks(paths, opts), Path(out), opts, source=bids_dirs[0])
