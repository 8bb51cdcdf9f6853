"""What to predict: the image lists of a config split or a BIDS query, and this run's shard of them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..core.bids import raw_root_of
from ..core.config import SPLITS, load_config
from ..core.errors import InputError, TotalsegBidsError, UsageError
from ..core.index import find_images
from ..core.parallel import shard
from .options import PredictOptions


def collect_inputs(config: str | Path | None = None, split: str = "TESTING", bids_dir: str | Path | None = None,
                   contrasts: Sequence[str] | None = None,
                   datasets_path: str | Path | None = None) -> list[tuple[Path, ...]]:
    """The image lists (one tuple of channels per case) from a config split or a BIDS query."""
    if (config is None) == (bids_dir is None):
        raise UsageError("give either --config or --bids-dir", None, "e.g. --config test_sacrum.json")
    if config is not None:
        cfg = load_config(config, datasets_path)
        splits = list(SPLITS) if split.upper() == "ALL" else [split]
        cases = cfg.cases(splits)
        if not cases:
            raise InputError(f"the config lists no {split} image", cfg.path, "choose another --split")
        return [tuple(c.images) for c in cases]
    if not contrasts:
        raise UsageError("--bids-dir needs --contrasts", None, "e.g. --contrasts T1w T2w")
    files = find_images(bids_dir, contrasts)
    if not files:
        raise InputError(f"no {'/'.join(contrasts)} image found", bids_dir, "check --contrasts and the folder")
    return [(f.path,) for f in files]


def shard_inputs(inputs: Sequence[tuple[Path, ...]], opts: PredictOptions) -> list[tuple[Path, ...]]:
    """This run's part of the inputs (``num_parts``/``part_id``), in a stable order."""
    return shard(sorted(inputs, key=lambda c: str(c[0])), opts.num_parts, opts.part_id)


def derivative_roots(inputs: Sequence[tuple[Path, ...]], opts: PredictOptions) -> list[Path]:
    """The derivative folders this run's outputs go to (what ``--datalad-save`` saves),
    known before anything is predicted; inputs outside a BIDS dataset have none."""
    roots: list[Path] = []
    for images in shard_inputs(inputs, opts):
        try:
            root = raw_root_of(images[0]) / "derivatives" / opts.derivatives
        except TotalsegBidsError:
            continue
        if root not in roots:
            roots.append(root)
    return roots
