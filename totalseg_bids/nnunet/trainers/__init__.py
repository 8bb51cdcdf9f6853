"""nnU-Net trainer subclasses for quick runs (tests, CPU smoke trainings).

nnU-Net finds trainers outside its own package through the ``nnUNet_extTrainer``
environment variable (a folder it imports modules from by file name). This
package is that folder: ``export nnUNet_extTrainer="$(python -c 'from
totalseg_bids.nnunet.trainers import trainer_dir; print(trainer_dir())')"``.

The trainer modules import torch and nnunetv2, so this ``__init__`` imports
none of them: ``trainer_dir()`` stays cheap. nnU-Net imports the trainer
modules as top-level modules (``nnUNetTrainer_2epochs_10iters``), which is why
they use absolute imports only.
"""

from __future__ import annotations

from pathlib import Path

#: The trainer names this folder provides.
TRAINERS = ("nnUNetTrainer_2epochs_10iters", "nnUNetTrainer_demo")


def trainer_dir() -> Path:
    """The folder to put in ``nnUNet_extTrainer`` so nnU-Net finds our trainers.

    >>> (trainer_dir() / "nnUNetTrainer_2epochs_10iters.py").is_file()
    True
    """
    return Path(__file__).resolve().parent


def trainer_env(env: dict | None = None) -> dict:
    """``env`` (default: empty) with ``nnUNet_extTrainer`` pointing at :func:`trainer_dir`,
    keeping folders already listed there.

    >>> trainer_env({})["nnUNet_extTrainer"] == str(trainer_dir())
    True
    """
    import os

    out = dict(env or {})
    current = [p for p in out.get("nnUNet_extTrainer", "").split(os.pathsep) if p]
    if str(trainer_dir()) not in current:
        current.insert(0, str(trainer_dir()))
    out["nnUNet_extTrainer"] = os.pathsep.join(current)
    return out
