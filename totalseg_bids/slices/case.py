"""One case: load its channels and label in RAS+, pick its slices, write them atomically."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.bids import dataset_path, is_binary_label
from ..core.config import SPLIT_NAMES
from ..core.display import intensity_range, to_uint8
from ..core.errors import GeometryError, InputError
from ..core.geometry import grid_mismatch
from ..core.nifti import load_image, load_label, present_values
from .cases import SliceCase
from .classes import class_lut
from .files import slice_stem, write_slice
from .options import AXES, SlicesOptions
from .planes import centre_pad, plane, select_slices, source_index, to_ras


@dataclass(frozen=True)
class SliceJob:
    """What every case of one export shares (picklable: the Dask client stays behind)."""

    options: SlicesOptions
    out: Path
    dataset_dir: Path | None = None
    mapping: dict[int, int] = field(default_factory=dict)

    @property
    def base(self) -> Path:
        """The folder the slices and the manifest go to (nnunet2d: the ``Dataset<NNN>_<Name>`` folder)."""
        return self.dataset_dir or self.out

    def window_for(self, channel: int) -> tuple[float, float] | None:
        windows = self.options.windows
        if not windows:
            return None
        return windows[channel] if len(windows) > 1 else windows[0]


@dataclass
class CaseSlices:
    """The slices written for one case (``path``: its first image; ``rows``: its manifest rows)."""

    path: Path
    rows: list[dict]
    status: str = "written"


def load_case(case: SliceCase) -> tuple[list[np.ndarray], np.ndarray | None, np.ndarray, tuple[int, ...]]:
    """The channels and label in RAS+, the first channel's orientation and source shape;
    refuses channels or a label off the first channel's grid."""
    vols = [load_image(p) for p in case.images]
    ref = vols[0].grid
    for v in vols[1:]:
        why = grid_mismatch(v.grid, ref)
        if why:
            raise GeometryError(f"channel not on the grid of {dataset_path(case.images[0])} ({why})", v.path,
                                "resample the channels onto one grid first")
    label = None
    if case.label is not None:
        lab = load_label(case.label)
        why = grid_mismatch(lab.grid, ref)
        if why:
            raise GeometryError(f"label not on its image's grid ({why})", case.label,
                                "bring it onto the image grid first")
        if int(lab.data.max()) > 255:
            raise InputError("more than 255 classes cannot be stored as uint8 masks", case.label,
                             "merge classes or export --format npy of a subset")
        label = to_ras(lab.data, lab.affine)[0]
    ras = [to_ras(v.data, v.affine) for v in vols]
    return [r[0] for r in ras], label, ras[0][2], tuple(vols[0].data.shape)


def label_values(case: SliceCase) -> list[int]:
    """Non-zero values of a case's label (first pass, to build the class mapping)."""
    if case.label is None:
        return []
    return sorted(present_values(load_label(case.label, binary=is_binary_label(case.label)).data) - {0})


def export_case(case: SliceCase, job: SliceJob) -> CaseSlices:
    """Write one case's slices; return its manifest rows."""
    opts = job.options
    channels, label, ornt, src_shape = load_case(case)
    axis = AXES[opts.axis]
    n = channels[0].shape[axis]
    split = SPLIT_NAMES[case.split]
    others = tuple(a for a in range(3) if a != axis)
    has_label = label.any(axis=others) if label is not None else np.zeros(n, bool)
    rng = np.random.default_rng([opts.seed, zlib.crc32(case.key.encode())])
    selected = select_slices(has_label, opts.only_labelled and label is not None, opts.empty_fraction, rng)
    ranges = [intensity_range(c, job.window_for(i), opts.percentile) for i, c in enumerate(channels)]
    lut, width = class_lut(job.mapping), max(3, len(str(n - 1)))
    rows = []
    for idx in selected:
        pics = [plane(c, axis, idx) for c in channels]
        pics = [p.astype(np.float32) for p in pics] if opts.format == "npy" else \
            [to_uint8(p, *r) for p, r in zip(pics, ranges)]
        mask = lut[plane(label, axis, idx)] if label is not None else None
        if opts.pad_to is not None:
            pics = [centre_pad(p, opts.pad_to, r[0] if opts.format == "npy" else 0) for p, r in zip(pics, ranges)]
            mask = centre_pad(mask, opts.pad_to, 0) if mask is not None else None
        stem = slice_stem(Path(case.key), opts.axis, idx, width)
        files, mask_path = write_slice(opts.layout, job.base, split, stem, pics, mask, opts.format)
        s_axis, s_index = source_index(ornt, src_shape, axis, idx)
        rows.append({
            "file": ";".join(f.relative_to(job.base).as_posix() for f in files),
            "mask": mask_path.relative_to(job.base).as_posix() if mask_path else "",
            "split": split, "subject": case.subject,
            "images": ";".join(str(p) for p in case.images),
            "label": str(case.label) if case.label else "",
            "axis": opts.axis, "index": idx, "source_axis": s_axis, "source_index": s_index,
            "has_label": int(has_label[idx]),
        })
    return CaseSlices(case.images[0], rows)
