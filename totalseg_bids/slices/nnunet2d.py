"""The nnU-Net 2D layout's metadata: ``dataset.json`` for ``NaturalImage2DIO`` and the cross-validation
folds as ``splits_final.json``, drawn by subject as the 3D conversion draws them (the nnU-Net adapter)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from ..core.bids import BidsName, is_ct_suffix
from ..nnunet.dataset import write_dataset_json, write_folds
from ..nnunet.splits import FoldCase, make_folds

#: the manifest's split names, as the data config spells them
CONFIG_SPLIT = {"train": "TRAINING", "val": "VALIDATION"}


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


def nnunet_folds(units: Sequence[tuple[str, str, str]], folds: int | None, seed: int) -> list[dict]:
    """The cross-validation folds of the 2D dataset; ``units``: (case id, ``dataset/sub-<label>``, train|val)."""
    return make_folds([FoldCase(case, subject, CONFIG_SPLIT[split]) for case, subject, split in units], folds, seed)


def write_nnunet_metadata(base: Path, images: Sequence[Path], rows: list[dict], names: Mapping[int, str],
                          mapping: Mapping[int, int], channels: Sequence[str] | None, axis: str,
                          folds: int | None = None, seed: int = 0) -> None:
    """``dataset.json`` and ``splits_final.json`` of the 2D nnU-Net dataset in ``base``; ``images``
    are one case's channels (they name the channels), ``rows`` the manifest rows."""
    chan = channel_names(images, channels)
    train_cases = sorted({r["file"].split(";")[0].split("/")[-1][:-9]: (r["split"], r["subject"]) for r in rows
                          if r["split"] != "test"}.items())
    labels = {"background": 0} | {names[src]: dst for src, dst in mapping.items()}
    write_dataset_json(base, {str(i): n for i, n in enumerate(chan)}, labels, len(train_cases), ".png",
                       "NaturalImage2DIO", base.name, description=f"{axis} slices exported by totalseg_bids.slices")
    write_folds(base, nnunet_folds([(k, subject, s) for k, (s, subject) in train_cases], folds, seed))
    for d in ("imagesTr", "labelsTr", "imagesTs"):
        (base / d).mkdir(parents=True, exist_ok=True)
