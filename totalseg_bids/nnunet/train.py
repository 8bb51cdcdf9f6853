"""nnU-Net's training tools, run as a user runs them: each in a subprocess, with the
``nnUNet_*`` variables and our trainer folder set (:func:`.paths.tool_env`).

Their output goes to stderr: stdout carries only the calling stage's records.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..core.errors import ExternalToolError, InputError
from .naming import CHECKPOINT_FINAL, CHECKPOINT_LATEST, INFERENCE_INFORMATION, model_identifier

log = logging.getLogger(__name__)

#: What a fold needs: ``new`` training, ``continue`` from its latest checkpoint, only the final
#: ``validate`` (to write the validation or its ``.npz``), or nothing (``complete``).
FoldState = Literal["new", "continue", "validate", "complete"]


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


def fold_state(fold_dir: Path, npz: bool = False) -> FoldState:
    """What ``nnUNetv2_train`` still has to do for one fold folder.

    >>> fold_state(Path("/nonexistent/fold_0"))
    'new'
    """
    validation = fold_dir / "validation"
    if (fold_dir / CHECKPOINT_FINAL).is_file():
        done = (validation / "summary.json").is_file() and (not npz or any(validation.glob("*.npz")))
        return "complete" if done else "validate"
    return "continue" if (fold_dir / CHECKPOINT_LATEST).is_file() else "new"


def fold_complete(fold_dir: Path, npz: bool = False) -> bool:
    """A trained fold with its validation (and ``.npz`` probabilities when asked), as find_best_configuration needs."""
    return fold_state(fold_dir, npz) == "complete"


def train_fold(dataset_id: int | str, configuration: str, fold: int | str, trainer: str, plans: str, device: str,
               env: Mapping[str, str], extra_args: Sequence[str] = (), npz: bool = False,
               state: FoldState = "new") -> None:
    """``nnUNetv2_train N CONFIGURATION FOLD -tr TRAINER -p PLANS -device DEVICE [--npz] [--c | --val] [extra]``."""
    if state == "complete":
        return
    mode = {"continue": ["--c"], "validate": ["--val"]}.get(state, [])
    npz_flag = ["--npz"] if npz and "--npz" not in extra_args else []
    call([tool("nnUNetv2_train"), str(dataset_id), configuration, str(fold), "-tr", trainer, "-p", plans,
          "-device", device, *npz_flag, *mode, *extra_args], env)


@dataclass(frozen=True)
class BestConfiguration:
    """What ``nnUNetv2_find_best_configuration`` chose: a configuration or an ensemble of two, its
    cross-validation Dice before and after the post-processing it decided, and that post-processing."""

    path: Path
    models: tuple[tuple[str, str, str], ...]  # (trainer, plans, configuration) of each member
    folds: tuple[int, ...]
    dice: float | None
    dice_postprocessed: float | None
    postprocessing_file: Path | None
    postprocessing: tuple[str, ...]
    status: str = "written"

    @property
    def name(self) -> str:
        """The choice in words: one model identifier, or ``ensemble of A + B``."""
        ids = [model_identifier(*m) for m in self.models]
        return ids[0] if len(ids) == 1 else "ensemble of " + " + ".join(ids)

    def record(self) -> dict[str, Any]:
        """The stdout record of the choice."""
        return {"status": self.status, "path": str(self.path), "kind": "best_configuration", "best": self.name,
                "configurations": [m[2] for m in self.models], "folds": list(self.folds), "dice": self.dice,
                "dice_postprocessed": self.dice_postprocessed,
                "postprocessing_file": str(self.postprocessing_file) if self.postprocessing_file else None,
                "postprocessing": list(self.postprocessing)}


def find_best_configuration(dataset_id: int | str, dataset_dir: Path, configurations: Sequence[str], trainer: str,
                            plans: str, folds: Sequence[int], env: Mapping[str, str],
                            ensembling: bool = True) -> BestConfiguration:
    """Run ``nnUNetv2_find_best_configuration`` on trained folds and read its choice back
    (``dataset_dir``: the dataset's folder in ``nnUNet_results``)."""
    call([tool("nnUNetv2_find_best_configuration"), str(dataset_id), "-c", *configurations, "-tr", trainer,
          "-p", plans, "-f", *[str(f) for f in folds], "-np", env["nnUNet_def_n_proc"],
          *([] if ensembling else ["--disable_ensembling"])], env)
    return read_best_configuration(dataset_dir / INFERENCE_INFORMATION)


def read_best_configuration(path: Path) -> BestConfiguration:
    """The choice recorded in ``inference_information.json``, with the post-processing steps from the
    ``postprocessing.json`` beside its ``postprocessing.pkl``."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        best = info["best_model_or_ensemble"]
        models = tuple((m["trainer"], m["plans_identifier"], m["configuration"])
                       for m in best["selected_model_or_models"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"no readable choice of nnUNetv2_find_best_configuration ({exc})", path,
                         "rerun train_nnunet once every fold is trained") from None
    pkl = Path(best["postprocessing_file"]) if best.get("postprocessing_file") else None
    steps: tuple[str, ...] = ()
    if pkl is not None and pkl.with_suffix(".json").is_file():
        pp = json.loads(pkl.with_suffix(".json").read_text(encoding="utf-8"))
        steps = tuple(f"{fn}({', '.join(f'{k}={v!r}' for k, v in kw.items())})"
                      for fn, kw in zip(pp.get("postprocessing_fns", []), pp.get("postprocessing_kwargs", [])))
    return BestConfiguration(path, models, tuple(int(f) for f in info.get("folds", ())),
                             best.get("result_on_crossval_pre_pp"), best.get("result_on_crossval_post_pp"),
                             pkl, steps)
