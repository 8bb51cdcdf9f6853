"""nnU-Net's training tools, run as a user runs them: each in a subprocess, with the
``nnUNet_*`` variables and our trainer folder set (:func:`.paths.tool_env`).

Their output goes to stderr: stdout carries only the calling stage's records.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..core.errors import ExternalToolError

log = logging.getLogger(__name__)


def tool(name: str) -> str:
    """The path of one of nnU-Net's commands (on PATH, or beside this Python)."""
    beside = Path(sys.executable).parent / name
    path = shutil.which(name) or (str(beside) if beside.is_file() else None)
    if not path:
        raise ExternalToolError(f"{name} not found", None, "install nnU-Net: pip install 'totalseg_bids[nnunet]'")
    return path


def call(cmd: Sequence[str], env: Mapping[str, str]) -> None:
    """Run one nnU-Net tool; its output goes to stderr, since stdout carries only our records."""
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    rc = subprocess.call(list(cmd), env=dict(env), stdout=2)
    if rc != 0:
        raise ExternalToolError(f"{Path(cmd[0]).name} exited with {rc}", None, "see its output above")


def plan_and_preprocess(dataset_id: int | str, configurations: Sequence[str], env: Mapping[str, str]) -> None:
    """``nnUNetv2_plan_and_preprocess -d N --verify_dataset_integrity -c ...`` with the processes of ``env``."""
    np_ = env["nnUNet_def_n_proc"]
    call([tool("nnUNetv2_plan_and_preprocess"), "-d", str(dataset_id), "--verify_dataset_integrity",
          "-c", *configurations, "-np", np_, "-npfp", np_], env)


def train_fold(dataset_id: int | str, configuration: str, fold: int | str, trainer: str, plans: str, device: str,
               env: Mapping[str, str], extra_args: Sequence[str] = ()) -> None:
    """``nnUNetv2_train N CONFIGURATION FOLD -tr TRAINER -p PLANS -device DEVICE [extra]``."""
    call([tool("nnUNetv2_train"), str(dataset_id), configuration, str(fold), "-tr", trainer, "-p", plans,
          "-device", device, *extra_args], env)
