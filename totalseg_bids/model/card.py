"""The model card: what was trained on what, how, and how well (validation Dice).

It travels inside the model folder of the zip (``totalseg_bids_model_card.json``),
beside the converter's ``case_mapping.tsv``, so it survives nnU-Net's own install too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..core.derivatives import now
from ..nnunet.engine import nnunet_version
from ..nnunet.naming import DATASET_JSON, fold_folder, parse_dataset_folder, parse_model_identifier

CARD = "totalseg_bids_model_card.json"
MAPPING = "case_mapping.tsv"


def _dice(fold_dir: Path) -> dict | None:
    """Mean and per-class Dice of a fold's validation (nnU-Net's ``validation/summary.json``)."""
    path = fold_dir / "validation" / "summary.json"
    if not path.is_file():
        return None
    summary = json.loads(path.read_text(encoding="utf-8"))
    per_class = {str(k): v.get("Dice") for k, v in summary.get("mean", {}).items()}
    return {"ForegroundMean": summary.get("foreground_mean", {}).get("Dice"), "PerClass": per_class}


def build_card(model_dir: Path, folds: Sequence[str], raw_dataset: Path | None) -> dict:
    """The model card: what was trained on what, how, and how well (validation Dice)."""
    trainer, plans, configuration = parse_model_identifier(model_dir.name)
    ds = json.loads((model_dir / DATASET_JSON).read_text(encoding="utf-8"))
    dataset = model_dir.parent.name
    did = parse_dataset_folder(dataset)[0]
    card: dict[str, Any] = {
        "Dataset": dataset, "DatasetId": did, "Configuration": configuration, "Trainer": trainer, "Plans": plans,
        "Folds": list(folds), "Labels": ds.get("labels", {}), "ChannelNames": ds.get("channel_names", {}),
        "NumTraining": ds.get("numTraining"),
        "TrainingCommand": [f"nnUNetv2_train {did} {configuration} {f} -tr {trainer} -p {plans}" for f in folds],
        "Versions": {"nnunetv2": nnunet_version(), "totalseg_bids": __version__},
        "ValidationDice": {fold_folder(f): _dice(model_dir / fold_folder(f)) for f in folds}, "Exported": now()}
    mapping = raw_dataset / "case_mapping.json" if raw_dataset else None
    if mapping is not None and mapping.is_file():
        data = json.loads(mapping.read_text(encoding="utf-8"))
        cases = data.get("cases", [])
        images = [Path(i) for c in cases for i in c.get("images", [])]
        card["SourceDatasets"] = sorted({name for name in map(_dataset_name, images) if name})
        card["Split"] = {s: sorted(c["case_id"] for c in cases if c.get("split") == s)
                         for s in sorted({c.get("split") for c in cases if c.get("split")})}
    return card


def _dataset_name(image: Path) -> str | None:
    """The BIDS dataset folder of an image: the folder that holds its ``sub-`` folder.

    >>> _dataset_name(Path("/data/spider/sub-01/anat/sub-01_T2w.nii.gz"))
    'spider'
    """
    parts = image.parts
    for i, part in enumerate(parts[1:], start=1):
        if part.startswith("sub-"):
            return parts[i - 1]
    return None
