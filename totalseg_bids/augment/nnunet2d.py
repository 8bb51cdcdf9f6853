"""``dataset.json`` and ``splits_final.json`` of an augmented nnU-Net 2D dataset."""

from __future__ import annotations

from pathlib import Path

from ..core.atomic import atomic_copy
from ..nnunet.dataset import read_folds, write_dataset_json, write_folds
from ..nnunet.naming import SPLITS_FILE
from ..nnunet.splits import carry_folds


def case_id(image: str) -> str:
    """nnU-Net case id of a channel file path.

    >>> case_id("imagesTr/S_sub-01_axial-012_aug-000003_0001.png")
    'S_sub-01_axial-012_aug-000003'
    """
    return image.rsplit("/", 1)[-1][: -len("_0000.png")]


def write_nnunet_meta(src: Path, base: Path, meta: dict, manifest: list[dict]) -> None:
    """Channels and labels of the source ``dataset.json``; numTraining from the samples, and the folds of
    the source's ``splits_final.json`` (drawn by subject), each sample in the folds of the slice it came from:
    an augmented copy is trained on, or validated, wherever its source is, so no subject crosses a fold.
    """
    cases = {s: [case_id(r["file"].split(";")[0]) for r in manifest if r["split"] == s] for s in ("train", "val")}
    source_of = {case_id(r["file"].split(";")[0]): case_id(r["source_file"].split(";")[0]) for r in manifest}
    write_dataset_json(base, meta["channel_names"], meta["labels"], len(cases["train"]) + len(cases["val"]),
                       meta.get("file_ending", ".png"), meta.get("overwrite_image_reader_writer", "NaturalImage2DIO"),
                       base.name, description=f"augmented by totalseg_bids.augment from {src.name}")
    write_folds(base, carry_folds(read_folds(src / SPLITS_FILE), source_of, cases["train"] + cases["val"]))
    for d in ("imagesTr", "labelsTr", "imagesTs"):
        (base / d).mkdir(parents=True, exist_ok=True)
    if (src / "classes.tsv").is_file():
        atomic_copy(src / "classes.tsv", base / "classes.tsv")
