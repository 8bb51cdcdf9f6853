"""Plan, preprocess and train an nnU-Net v2 dataset written by totalseg_bids.convert_config_to_nnunet,
then let nnU-Net pick the best configuration.

``python -m totalseg_bids.train_nnunet -d 300 -c 3d_fullres -f all`` (or the seed's
``300 3d_fullres "0 1 2 3 4"``; ``totalseg-bids-train-nnunet``) runs, from any folder:
``nnUNetv2_plan_and_preprocess --verify_dataset_integrity``, copies the converter's
``splits_final.json`` next to the preprocessed data, ``nnUNetv2_train`` for every fold
of every configuration, with ``nnUNet_extTrainer`` naming the trainers shipped in
``totalseg_bids/nnunet/trainers`` (e.g. the quick ``nnUNetTrainer_2epochs_10iters``),
and ``nnUNetv2_find_best_configuration`` once every fold of the split file is trained.

A fold the split file lacks is refused before anything is planned (nnU-Net would
otherwise draw a random split of cases); a complete fold is skipped, an interrupted
one continues from its latest checkpoint.

* :mod:`.folds`: which folds a run trains; :mod:`.case`: one fold; :mod:`.batch`: the
  whole run; :mod:`.cli`: the command line.

How nnU-Net's tools are called (environment, commands, their choice) lives in
:mod:`totalseg_bids.nnunet.train`.
"""

from .batch import TrainResult, find_best, train, trained_configurations
from .case import train_fold
from .cli import get_parser, main, options_from_cli
from .folds import requested_folds
from .options import TrainOptions

__all__ = ["TrainOptions", "TrainResult", "find_best", "get_parser", "main", "options_from_cli", "requested_folds",
           "train", "train_fold", "trained_configurations"]
