"""The bundled quick trainers: a quick training repeats, weight for weight, under its seed."""

from __future__ import annotations

import pytest
from support.nnunet import nnunet_train

from totalseg_bids.nnunet.trainers.nnUNetTrainer_2epochs_10iters import SEED_ENV


def _weights(model_dir):
    import torch

    ckpt = torch.load(model_dir / "fold_0" / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    return ckpt["network_weights"]


# two more nnU-Net trainings (same seed, another seed): over the 180 s budget on 2 shared cores
@pytest.mark.timeout(600)
@pytest.mark.slow
def test_quick_training_repeats_under_its_seed(trained_model, tmp_path):  # noqa: F811
    """The session model trained again from the same preprocessed data (augmentation in a worker
    process, as nnU-Net runs it) gives identical weights; another seed gives other weights."""
    import torch

    first = _weights(trained_model.model_dir)
    runs = {}
    for name, seed in (("same", trained_model.env.get(SEED_ENV, "")), ("other", "7")):
        results = tmp_path / name
        nnunet_train({**trained_model.env, "nnUNet_results": str(results), SEED_ENV: seed})
        runs[name] = _weights(results / trained_model.dataset_folder / trained_model.model_dir.name)
    assert first.keys() == runs["same"].keys()
    assert all(torch.equal(first[k], runs["same"][k]) for k in first)
    assert not all(torch.equal(first[k], runs["other"][k]) for k in first)
