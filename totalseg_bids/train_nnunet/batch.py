"""Plan and preprocess once, put the split file in place, train every fold.

nnU-Net's own command-line tools do the work, each in a subprocess with the
``nnUNet_*`` variables set, exactly as a user would run them; this module only
adds the checks (variables set, dataset converted) and the glue that users
otherwise forget (split file, trainer folder, device).
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..core.options import resolve_options
from ..nnunet import paths
from ..nnunet import train as nnunet_train
from ..nnunet.dataset import install_splits
from ..nnunet.engine import choose_device
from ..nnunet.naming import find_dataset, model_identifier
from .case import train_fold
from .options import TrainOptions

log = logging.getLogger(__name__)


def train(dataset_id: str, options: TrainOptions | None = None, **kwargs) -> Path:
    """Plan/preprocess (with nnU-Net's integrity check), copy the split, train each fold; returns the model folder.

    ``options`` (or its fields as keyword arguments): see :class:`TrainOptions`.
    """
    opts = resolve_options(TrainOptions, options, kwargs)
    raw, pre, results = paths.require_all()
    ds_dir = find_dataset(raw, dataset_id, "run python -m totalseg_bids.convert_config_to_nnunet first")
    device = opts.device or choose_device("auto", mps=False)
    env = paths.tool_env(device=device)
    log.info("%s, configuration %s, folds %s, trainer %s, plans %s, device %s", ds_dir.name, opts.configuration,
             " ".join(opts.folds), opts.trainer, opts.plans, device)
    if opts.preprocess:
        nnunet_train.plan_and_preprocess(dataset_id, [opts.configuration], env)
    if install_splits(ds_dir, pre) is None:
        log.warning("%s missing; nnU-Net makes a random 5-fold split", ds_dir / "splits_final.json")
    for fold in opts.folds:
        train_fold(dataset_id, fold, opts, device, env)
    model = results / ds_dir.name / model_identifier(opts.trainer, opts.plans, opts.configuration)
    log.info("done; model in %s", model)
    return model
