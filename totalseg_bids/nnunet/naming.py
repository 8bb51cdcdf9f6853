"""nnU-Net's names: dataset folders, model identifiers, fold and cross-validation folders, file names.

The patterns follow ``nnunetv2/utilities/file_path_utilities.py`` and
``nnunetv2/utilities/dataset_name_id_conversion.py``; every stage builds and
parses these names here, never by hand.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from ..core.errors import InputError, MissingFileError, UsageError

DATASET_JSON = "dataset.json"
PLANS_JSON = "plans.json"
SPLITS_FILE = "splits_final.json"
CHECKPOINT_FINAL = "checkpoint_final.pth"
CHECKPOINT_LATEST = "checkpoint_latest.pth"
POSTPROCESSING_PKL = "postprocessing.pkl"
#: What ``nnUNetv2_find_best_configuration`` writes into ``nnUNet_results/Dataset<NNN>_<Name>/``.
INFERENCE_INFORMATION = "inference_information.json"
DEFAULT_PLANS = "nnUNetPlans"
DEFAULT_CONFIGURATION = "3d_fullres"

_DATASET_RE = re.compile(r"^Dataset(?P<id>\d{3})_(?P<name>.+)$")
_IDENTIFIER_RE = re.compile(r"^(?P<trainer>[^_].*?)__(?P<plans>.+?)__(?P<configuration>[^_].*)$")
_NAME_RE = re.compile(r"[A-Za-z0-9_-]+")


def dataset_folder_name(dataset_id: int, name: str) -> str:
    """nnU-Net's folder name for a dataset id and name.

    >>> dataset_folder_name(7, "SacrumDataset")
    'Dataset007_SacrumDataset'
    """
    if not 1 <= int(dataset_id) <= 999:
        raise UsageError(f"dataset number {dataset_id} out of range", None, "use -d between 1 and 999")
    if not name or not _NAME_RE.fullmatch(name):
        raise UsageError(f"dataset name {name!r} must be letters, digits, '-' or '_'", None,
                         "e.g. -dname SacrumDataset")
    return f"Dataset{int(dataset_id):03d}_{name}"


def dataset_prefix(dataset_id: int | str) -> str:
    """The start every folder of one dataset id shares.

    >>> dataset_prefix("42")
    'Dataset042_'
    """
    return f"Dataset{int(dataset_id):03d}_"


def parse_dataset_folder(folder: str) -> tuple[int, str]:
    """Id and name of ``Dataset<NNN>_<Name>``.

    >>> parse_dataset_folder("Dataset300_Sacrum")
    (300, 'Sacrum')
    """
    match = _DATASET_RE.match(Path(folder).name)
    if not match:
        raise InputError("not an nnU-Net dataset folder name (Dataset<NNN>_<Name>)", folder,
                         "give a folder named like Dataset300_Sacrum")
    return int(match["id"]), match["name"]


def dataset_name(folder: str) -> str:
    """The name part of a dataset folder (the folder itself when it is not one).

    >>> dataset_name("Dataset300_SacrumDataset"), dataset_name("other")
    ('SacrumDataset', 'other')
    """
    match = _DATASET_RE.match(Path(folder).name)
    return match["name"] if match else Path(folder).name


def find_dataset(root: str | Path, dataset: str | int, fix: str) -> Path:
    """``Dataset<NNN>_<Name>`` in ``root`` for an id (``300``) or a full folder name.

    >>> find_dataset("/nonexistent", "300", "set nnUNet_results")
    Traceback (most recent call last):
    ...
    totalseg_bids.core.errors.MissingFileError: /nonexistent: folder not found; set nnUNet_results
    """
    root = Path(root)
    dataset = str(dataset)
    if not root.is_dir():
        raise MissingFileError("folder not found", root, fix)
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and _DATASET_RE.match(p.name))
    if dataset.isdigit():
        hits = [n for n in names if n.startswith(dataset_prefix(dataset))]
        wanted = f"{dataset_prefix(dataset)}*"
    elif _DATASET_RE.match(dataset):
        hits, wanted = [n for n in names if n == dataset], dataset
    else:
        raise UsageError(f"dataset must be an id or a Dataset<NNN>_<Name> folder name, got {dataset!r}", None,
                         "e.g. -d 300")
    if not hits:
        raise MissingFileError(f"no {wanted} folder (found: {', '.join(names[:5]) or 'none'})", root, fix)
    return root / hits[0]


def model_identifier(trainer: str, plans: str, configuration: str) -> str:
    """nnU-Net's model folder name, ``<trainer>__<plans>__<configuration>``.

    >>> model_identifier("nnUNetTrainer", "nnUNetPlans", "3d_fullres")
    'nnUNetTrainer__nnUNetPlans__3d_fullres'
    """
    return f"{trainer}__{plans}__{configuration}"


def parse_model_identifier(name: str) -> tuple[str, str, str]:
    """Trainer, plans and configuration from nnU-Net's ``<trainer>__<plans>__<configuration>``.

    >>> parse_model_identifier("nnUNetTrainer__nnUNetPlans__3d_fullres")
    ('nnUNetTrainer', 'nnUNetPlans', '3d_fullres')
    """
    match = _IDENTIFIER_RE.match(Path(name).name)
    if not match:
        raise InputError("not an nnU-Net model folder name (<trainer>__<plans>__<configuration>)", name,
                         "give the folder that holds fold_0/, dataset.json and plans.json")
    return match["trainer"], match["plans"], match["configuration"]


def is_model_identifier(name: str) -> bool:
    """Whether ``name`` reads as ``<trainer>__<plans>__<configuration>``.

    >>> is_model_identifier("T__P__2d"), is_model_identifier("ensembles")
    (True, False)
    """
    return bool(_IDENTIFIER_RE.match(name))


def fold_folder(fold: int | str) -> str:
    """The folder of one fold in a model folder.

    >>> fold_folder(0), fold_folder("all")
    ('fold_0', 'fold_all')
    """
    return f"fold_{fold}"


def folds_string(folds: Sequence[int | str]) -> str:
    """Folds joined as nnU-Net names its cross-validation folders.

    >>> folds_string([0, 1, 2])
    '0_1_2'
    """
    return "_".join(str(f) for f in folds)


def crossval_folder(folds: Sequence[int | str]) -> str:
    """Where ``find_best_configuration`` gathers a model's validation predictions (and its
    ``postprocessing.pkl``).

    >>> crossval_folder([0, 1])
    'crossval_results_folds_0_1'
    """
    return f"crossval_results_folds_{folds_string(folds)}"


def ensemble_identifier(model1: str, model2: str, folds: Sequence[int | str]) -> str:
    """nnU-Net's name of the ensemble of two model folders.

    >>> ensemble_identifier("T__P__2d", "T__P__3d_fullres", [0, 1])
    'ensemble___T__P__2d___T__P__3d_fullres___0_1'
    """
    return f"ensemble___{Path(model1).name}___{Path(model2).name}___{folds_string(folds)}"


def parse_fold(text: str | int) -> int | str:
    """A fold as nnU-Net takes it: an integer, or ``all`` (the model trained on every case).

    >>> parse_fold("3"), parse_fold("all")
    (3, 'all')
    """
    text = str(text).strip()
    if text == "all":
        return text
    if not text.isdigit():
        raise UsageError(f"invalid fold {text!r}", None, "give fold numbers, e.g. -f 0 1 2 3 4")
    return int(text)
