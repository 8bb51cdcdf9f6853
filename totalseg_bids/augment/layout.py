"""Where a sample goes: the mmseg layout of ``slices`` or the clot workflow's ``Processed`` tree."""

from __future__ import annotations

LAYOUTS = ("mmseg", "clotseg")
CLOT_SPLITS = {"train": "Training", "val": "Validation", "test": "Testing"}


def sample_paths(layout: str, split: str, name: str, ext: str, mask_ext: str,
                 stage: str = "Augmented") -> tuple[str, str]:
    """Relative image and mask paths of one sample.

    >>> sample_paths("mmseg", "val", "s_aug-000001", ".png", ".png")
    ('images/val/s_aug-000001.png', 'masks/val/s_aug-000001.png')
    >>> sample_paths("clotseg", "val", "s", ".png", ".png", "Sliced")
    ('Processed/Sliced/Validation/images/s.png', 'Processed/Sliced/Validation/masks/s.png')
    """
    if layout == "clotseg":
        base = f"Processed/{stage}/{CLOT_SPLITS[split]}"
        return f"{base}/images/{name}{ext}", f"{base}/masks/{name}{mask_ext}"
    return f"images/{split}/{name}{ext}", f"masks/{split}/{name}{mask_ext}"
