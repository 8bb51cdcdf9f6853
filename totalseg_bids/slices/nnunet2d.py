"""The nnU-Net 2D layout's metadata: ``dataset.json`` for ``NaturalImage2DIO`` and the config's
TRAINING/VALIDATION split as ``splits_final.json`` (written through the nnU-Net adapter)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from ..core.bids import BidsName, is_ct_suffix
from ..nnunet.dataset import write_dataset_json, write_splits


def channel_names(images: Sequence[Path], names: Sequence[str] | None = None) -> list[str]:
    """The ``channel_names`` of ``dataset.json``: ``names``, else the image suffixes; a CT channel is
    ``CTwindowed`` (windowed uint8 PNG: nnU-Net's CT normalisation in HU would be wrong, z-score is right).

    >>> channel_names([Path("sub-01_CT.nii.gz"), Path("sub-01_T2w.nii.gz")])
    ['CTwindowed', 'T2w']
    """
    if names:
        return list(names)
    suffixes = [BidsName.parse(p).suffix or f"channel{i}" for i, p in enumerate(images)]
    return [f"{s}windowed" if is_ct_suffix(s) else str(s) for s in suffixes]


def write_nnunet_metadata(base: Path, images: Sequence[Path], rows: list[dict], names: Mapping[int, str],
                          mapping: Mapping[int, int], channels: Sequence[str] | None, axis: str) -> None:
    """``dataset.json`` and ``splits_final.json`` of the 2D nnU-Net dataset in ``base``; ``images``
    are one case's channels (they name the channels), ``rows`` the manifest rows."""
    chan = channel_names(images, channels)
    train_cases = sorted({r["file"].split(";")[0].split("/")[-1][:-9]: r["split"] for r in rows
                          if r["split"] != "test"}.items())
    labels = {"background": 0} | {names[src]: dst for src, dst in mapping.items()}
    write_dataset_json(base, {str(i): n for i, n in enumerate(chan)}, labels, len(train_cases), ".png",
                       "NaturalImage2DIO", base.name, description=f"{axis} slices exported by totalseg_bids.slices")
    write_splits(base, [k for k, s in train_cases if s == "train"], [k for k, s in train_cases if s == "val"])
    for d in ("imagesTr", "labelsTr", "imagesTs"):
        (base / d).mkdir(parents=True, exist_ok=True)
