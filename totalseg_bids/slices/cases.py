"""The cases of an export: a data config's entries, each image's channels and label, checked
together before anything is read (channel counts, slice names)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.bids import raw_root_of, split_extension
from ..core.config import check_cases, load_config
from ..core.errors import InputError, UsageError
from ..core.nifti import load_grid
from .options import AXES, SlicesOptions
from .planes import plane_shape


@dataclass
class SliceCase:
    """One config entry: its split, image channels, label and subject (``<dataset>/sub-<label>``)."""

    split: str
    images: tuple[Path, ...]
    label: Path | None
    subject: str
    dataset: str = ""  # set only when image names clash across datasets: it then leads the slice names

    @property
    def key(self) -> str:
        """The case's name in the slice names: the first image's stem (after its dataset on a clash).

        >>> SliceCase("TRAINING", (Path("ds/sub-01/anat/sub-01_T2w.nii.gz"),), None, "ds/sub-01").key
        'sub-01_T2w'
        """
        stem = split_extension(self.images[0].name)[0]
        return f"{self.dataset}_{stem}" if self.dataset else stem


def config_cases(config: Path, datasets_path: str | None) -> list[SliceCase]:
    """Cases of a config; refuses duplicates, mismatched pairs and subjects in two splits."""
    cfg_cases = load_config(config, datasets_path, require=("TRAINING",)).cases()
    # duplicates, image/label of other subjects, subjects in two splits
    check_cases(cfg_cases, config, strict_splits=True)
    cases = [SliceCase(c.split, tuple(c.images), c.label, f"{raw_root_of(c.images[0]).name}/sub-{c.subject}")
             for c in cfg_cases]
    if not cases:
        raise InputError("the config lists no cases", config, "add entries to TRAINING/VALIDATION/TESTING")
    stems = Counter(c.key for c in cases)
    if any(n > 1 for n in stems.values()):  # as convert_config_to_nnunet's case ids: the dataset leads
        for c in cases:
            c.dataset = re.sub(r"[^A-Za-z0-9-]+", "-", raw_root_of(c.images[0]).name).strip("-") or "x"
    return cases


def check_channels(cases: Sequence[SliceCase], opts: SlicesOptions) -> int:
    """The one channel count every case has, checked against the options (before any work)."""
    n_channels = {len(c.images) for c in cases}
    if len(n_channels) != 1:
        raise InputError(f"cases have different channel counts {sorted(n_channels)}", cases[0].images[0],
                         "give every config entry the same number of IMAGE channels")
    n_ch, channel_names = n_channels.pop(), opts.channels
    if opts.layout == "mmseg" and opts.format == "png" and n_ch > 3:
        raise UsageError(f"{n_ch} channels do not fit an RGB PNG", None, "use --format tif or npy")
    if opts.window and len(opts.window) not in (1, n_ch):
        raise UsageError(f"{len(opts.window)} windows for {n_ch} channels", None, "give one window or one per channel")
    if channel_names and len(channel_names) != n_ch:
        raise UsageError(f"{len(channel_names)} --channels names for {n_ch} channels", None,
                         "give one name per IMAGE channel")
    stems: set[str] = set()
    for c in cases:
        if c.key in stems:
            raise InputError(f"two cases share the slice name {c.key}", c.images[0],
                             "export datasets with clashing names separately")
        stems.add(c.key)
    return n_ch


def check_padding(cases: Sequence[SliceCase], opts: SlicesOptions) -> None:
    """Every slice fits ``opts.pad_to`` (read from the images' headers, before anything is written); one
    error names the largest case and how many do not fit."""
    if opts.pad_to is None:
        return
    sizes = []
    for case in cases:
        grid = load_grid(case.images[0])
        sizes.append((plane_shape(grid.shape, grid.affine, AXES[opts.axis]), case.images[0]))
    over = [(size, path) for size, path in sizes if size[0] > opts.pad_to[0] or size[1] > opts.pad_to[1]]
    if over:
        (rows, cols), path = max(over, key=lambda item: item[0][0] * item[0][1])
        raise InputError(f"{opts.axis} slices of {rows}x{cols} do not fit --pad-to {opts.pad_to[0]} {opts.pad_to[1]} "
                         f"({len(over)} of {len(cases)} cases too large)", path,
                         "crop or resample the volumes first, or pad to a larger size")
