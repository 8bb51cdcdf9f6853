"""The one home of nnU-Net v2's conventions (adapter).

* :mod:`.paths`: ``nnUNet_raw``/``_preprocessed``/``_results`` (one object each), the
  environment of nnU-Net's subprocesses, our trainer folder;
* :mod:`.naming`: ``Dataset<NNN>_<Name>``, ``<trainer>__<plans>__<configuration>``,
  fold and cross-validation folders, nnU-Net's file names;
* :mod:`.dataset`: ``dataset.json``, ``splits_final.json``, dataset ids, the integrity check;
* :mod:`.splits`: cross-validation folds drawn by subject;
* :mod:`.train`: nnU-Net's planning, training and model-selection tools;
* :mod:`.engine`: trained models and the prediction engine;
* :mod:`.postprocess`: post-processing of predicted label maps;
* :mod:`.model_zip`: model zips in nnU-Net's export format and the installed-model registry;
* :mod:`.trainers`: the quick trainers nnU-Net finds through ``nnUNet_extTrainer``.

Stages call this adapter; nothing else spells out nnU-Net's names or reads its
variables. Importing it imports neither torch nor nnunetv2.
"""

from . import dataset, engine, model_zip, naming, paths, postprocess, splits, train
from .dataset import Fold, dataset_dir, find_id_conflicts, read_folds, write_dataset_json, write_folds
from .engine import Engine, Model, choose_device, resolve_model
from .naming import dataset_folder_name, model_identifier, parse_model_identifier
from .paths import PREPROCESSED, RAW, RESULTS
from .postprocess import keep_largest

__all__ = [
    "PREPROCESSED",
    "RAW",
    "RESULTS",
    "Engine",
    "Fold",
    "Model",
    "choose_device",
    "dataset",
    "dataset_dir",
    "dataset_folder_name",
    "engine",
    "find_id_conflicts",
    "keep_largest",
    "model_identifier",
    "model_zip",
    "naming",
    "parse_model_identifier",
    "paths",
    "postprocess",
    "read_folds",
    "resolve_model",
    "splits",
    "train",
    "write_dataset_json",
    "write_folds",
]
