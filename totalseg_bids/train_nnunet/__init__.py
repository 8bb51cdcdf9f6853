"""Plan, preprocess and train an nnU-Net v2 dataset written by totalseg_bids.convert_config_to_nnunet.

``python -m totalseg_bids.train_nnunet 300 3d_fullres 0`` (or ``totalseg-bids-train-nnunet``) runs, from any
folder: ``nnUNetv2_plan_and_preprocess --verify_dataset_integrity``, copies the converter's
``splits_final.json`` next to the preprocessed data, and ``nnUNetv2_train`` for every fold, with
``nnUNet_extTrainer`` naming the trainers shipped in ``totalseg_bids/nnunet/trainers`` (e.g. the quick
``nnUNetTrainer_2epochs_10iters``).

* :mod:`.case`: one fold; :mod:`.batch`: the whole run; :mod:`.cli`: the command line.

How nnU-Net's tools are called (environment, commands) lives in :mod:`totalseg_bids.nnunet.train`.
"""

from .batch import train
from .case import train_fold
from .cli import get_parser, main
from .options import TrainOptions

__all__ = ["TrainOptions", "get_parser", "main", "train", "train_fold"]
