"""Where a sample goes: the mmseg layout of ``slices``, nnU-Net 2D, or the clot workflow's ``Processed`` tree."""

from __future__ import annotations

import re
from typing import Literal, get_args

#: Where samples go: the mmseg folders of ``slices``, an nnU-Net 2D dataset, the clot workflow's tree.
AugmentLayout = Literal["mmseg", "nnunet2d", "clotseg"]
LAYOUTS: tuple[str, ...] = get_args(AugmentLayout)
CLOT_SPLITS = {"train": "Training", "val": "Validation", "test": "Testing"}
_CHANNEL = re.compile(r"_\d{4}$")


def sample_stem(files: list[str]) -> str:
    """The sample name of a source row: the file stem, without nnU-Net's ``_0000`` when one file per channel.

    >>> sample_stem(["imagesTr/S_sub-01_axial-012_0000.png", "imagesTr/S_sub-01_axial-012_0001.png"])
    'S_sub-01_axial-012'
    >>> sample_stem(["images/train/sub-01_axial-012.png"])
    'sub-01_axial-012'
    """
    stem = files[0].rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return _CHANNEL.sub("", stem) if len(files) > 1 else stem


def sample_paths(layout: AugmentLayout, split: str, name: str, ext: str, mask_ext: str, n_files: int = 1,
                 stage: str = "Augmented") -> tuple[list[str], str]:
    """Relative image paths (one, or one per channel ``_0000``...) and mask path of one sample.

    >>> sample_paths("mmseg", "val", "s_aug-000001", ".png", ".png")
    (['images/val/s_aug-000001.png'], 'masks/val/s_aug-000001.png')
    >>> sample_paths("clotseg", "val", "s", ".png", ".png", 1, "Sliced")
    (['Processed/Sliced/Validation/images/s.png'], 'Processed/Sliced/Validation/masks/s.png')
    >>> sample_paths("nnunet2d", "test", "c", ".png", ".png", 2)
    (['imagesTs/c_0000.png', 'imagesTs/c_0001.png'], 'labelsTs/c.png')
    """
    if layout == "nnunet2d":
        tr = "Ts" if split == "test" else "Tr"
        return [f"images{tr}/{name}_{c:04d}{ext}" for c in range(n_files)], f"labels{tr}/{name}{mask_ext}"
    if layout == "clotseg":
        img_dir = mask_dir = f"Processed/{stage}/{CLOT_SPLITS[split]}"
        img_dir, mask_dir = f"{img_dir}/images", f"{mask_dir}/masks"
    else:
        img_dir, mask_dir = f"images/{split}", f"masks/{split}"
    names = [f"{name}{ext}"] if n_files == 1 else [f"{name}_{c:04d}{ext}" for c in range(n_files)]
    return [f"{img_dir}/{n}" for n in names], f"{mask_dir}/{name}{mask_ext}"
