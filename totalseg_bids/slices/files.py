"""Slice files: their names, their bytes (PNG, TIFF, NPY) and where each layout puts them."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..core.atomic import atomic_path
from ..core.bids import split_extension
from ..core.errors import UsageError
from .options import FORMATS, Format, Layout


def encode_image(array: np.ndarray, fmt: Format) -> bytes:
    """Encode a 2D (H, W) or (H, W, C) array as png, tif or npy bytes.

    >>> encode_image(np.zeros((2, 2), np.uint8), "png")[:4]
    b'\\x89PNG'
    """
    buf = io.BytesIO()
    if fmt == "npy":
        np.save(buf, array)
    elif fmt == "tif":
        import tifffile

        tifffile.imwrite(buf, array, photometric="minisblack" if array.ndim == 2 or array.shape[-1] != 3 else "rgb")
    elif fmt == "png":
        from PIL import Image

        if array.ndim == 3 and array.shape[-1] == 2:  # 2 channels: RGB with an empty blue
            array = np.concatenate([array, np.zeros_like(array[..., :1])], axis=-1)
        Image.fromarray(array).save(buf, format="PNG")
    else:
        raise UsageError(f"unknown format {fmt!r}", None, f"use one of {', '.join(FORMATS)}")
    return buf.getvalue()


def slice_stem(image: Path, axis: str, index: int, width: int = 3) -> str:
    """``<image stem>_<axis>-<index>``; the axis name is a BIDS-like key so the
    entities of the image stay parseable.

    >>> slice_stem(Path("sub-01_ses-02_acq-sag_T2w.nii.gz"), "axial", 12)
    'sub-01_ses-02_acq-sag_T2w_axial-012'
    """
    return f"{split_extension(Path(image).name)[0]}_{axis}-{index:0{width}d}"


def slice_paths(layout: Layout, base: Path, split: str, stem: str, channels: int, fmt: Format
                ) -> tuple[list[Path], Path]:
    """The image file(s) and the mask file of one slice under ``base``: nnunet2d writes one
    PNG per channel (``<case>_0000.png``...) in ``imagesTr``/``imagesTs``, mmseg one file with
    the channels stacked in ``images/<split>``.

    >>> [p.as_posix() for p in slice_paths("mmseg", Path("o"), "val", "s_axial-001", 2, "tif")[0]]
    ['o/images/val/s_axial-001.tif']
    >>> imgs, mask = slice_paths("nnunet2d", Path("Dataset501_Slices"), "test", "s_axial-001", 2, "png")
    >>> [p.name for p in imgs]
    ['Slices_s_axial-001_0000.png', 'Slices_s_axial-001_0001.png']
    >>> mask.as_posix()
    'Dataset501_Slices/labelsTs/Slices_s_axial-001.png'
    """
    if layout == "nnunet2d":
        img_dir, lab_dir = ("imagesTs", "labelsTs") if split == "test" else ("imagesTr", "labelsTr")
        case_id = f"{base.name.split('_', 1)[1]}_{stem}"
        return [base / img_dir / f"{case_id}_{c:04d}.png" for c in range(channels)], base / lab_dir / f"{case_id}.png"
    return [base / "images" / split / f"{stem}.{fmt}"], base / "masks" / split / f"{stem}.{fmt}"


def write_slice(layout: Layout, base: Path, split: str, stem: str, pictures: list[np.ndarray],
                mask: np.ndarray | None, fmt: Format) -> tuple[list[Path], Path | None]:
    """Write one slice's pictures (and mask) atomically; the files written."""
    files, mask_path = slice_paths(layout, base, split, stem, len(pictures), fmt)
    if layout == "nnunet2d":
        payloads = [encode_image(pic, "png") for pic in pictures]
    else:
        payloads = [encode_image(pictures[0] if len(pictures) == 1 else np.stack(pictures, axis=-1), fmt)]
    for path, payload in zip(files, payloads):
        _write(path, payload)
    if mask is None:
        return files, None
    _write(mask_path, encode_image(mask, "png" if layout == "nnunet2d" else fmt))
    return files, mask_path


def _write(path: Path, payload: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)
