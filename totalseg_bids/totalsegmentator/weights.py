"""TotalSegmentator's weights: where it looks for them, whether a run's are there, and locally built ones.

TotalSegmentator downloads missing weights at run time, once per image; where
nothing outside the package registries can be reached that fails per image, so
the check here says it once, before the first image. Weights live under
``TOTALSEG_WEIGHTS_PATH`` or ``$TOTALSEG_HOME_DIR/nnunet/results`` (default
``~/.totalsegmentator``); the home's ``config.json`` holds its settings.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..core.atomic import atomic_write_json
from ..core.errors import ExternalToolError
from .tasks import missing_models

#: The fix for missing weights, with ``{task}`` to fill in.
WEIGHTS_FIX = ("download the weights where there is internet (`totalseg_download_weights -t {task}`) "
               "and point TOTALSEG_HOME_DIR (or TOTALSEG_WEIGHTS_PATH) at them")
#: File in a TOTALSEG_HOME_DIR marking weights built locally by totalseg_bids (with what they are).
STAMP = "totalseg_bids_tiny_weights.json"
HOME_ENV = "TOTALSEG_HOME_DIR"
WEIGHTS_ENV = "TOTALSEG_WEIGHTS_PATH"


def weights_dir(home: str | Path) -> Path:
    """Where TotalSegmentator reads weights with ``TOTALSEG_HOME_DIR=home``.

    >>> weights_dir("/h").as_posix()
    '/h/nnunet/results'
    """
    return Path(home) / "nnunet" / "results"


def default_home(env: Mapping[str, str] | None = None) -> Path:
    """The TOTALSEG_HOME_DIR a run with ``env`` (default: this process's) uses.

    >>> default_home({"TOTALSEG_HOME_DIR": "/h"}).as_posix()
    '/h'
    """
    env = os.environ if env is None else env
    return Path(env[HOME_ENV]) if env.get(HOME_ENV) else Path.home() / ".totalsegmentator"


def home_env(home: str | Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment variables that make TotalSegmentator use the weights in ``home``
    (TOTALSEG_WEIGHTS_PATH, when set in ``env``, would override the home, so it follows).

    >>> home_env("/h", {})
    {'TOTALSEG_HOME_DIR': '/h'}
    >>> home_env("/h", {"TOTALSEG_WEIGHTS_PATH": "/w"})["TOTALSEG_WEIGHTS_PATH"]
    '/h/nnunet/results'
    """
    env = os.environ if env is None else env
    out = {HOME_ENV: str(home)}
    if WEIGHTS_ENV in env:
        out[WEIGHTS_ENV] = str(weights_dir(home))
    return out


def ready(env: Mapping[str, str] | None = None) -> tuple[bool, str]:
    """Whether TotalSegmentator can run here: its program and some weights, with the reason."""
    env = os.environ if env is None else env
    if shutil.which("TotalSegmentator") is None:
        return False, "the TotalSegmentator program is not installed"
    folder = Path(env[WEIGHTS_ENV]) if env.get(WEIGHTS_ENV) else weights_dir(default_home(env))
    if not folder.is_dir() or not any(folder.glob("Dataset*")):
        return False, f"no TotalSegmentator weights in {folder} (run totalseg_download_weights, set TOTALSEG_HOME_DIR)"
    return True, f"weights in {folder}"


def is_local_build(home: str | Path) -> bool:
    """Whether ``home`` holds weights built locally by totalseg_bids (not the published ones)."""
    return (Path(home) / STAMP).is_file()


def local_build_record(home: str | Path) -> dict:
    """What a local build in ``home`` says about itself (empty when there is none)."""
    stamp = Path(home) / STAMP
    return json.loads(stamp.read_text(encoding="utf-8")) if stamp.is_file() else {}


def local_weights_description() -> str | None:
    """The description of the locally built weights TotalSegmentator will use, or None
    (published weights, or TotalSegmentator not importable); recorded in sidecars."""
    try:
        from totalsegmentator.config import get_totalseg_dir
    except ImportError:
        return None
    return local_build_record(get_totalseg_dir()).get("description")


def disable_usage_stats(home: str | Path) -> Path:
    """Write TotalSegmentator's ``config.json`` in ``home`` with usage statistics off."""
    path = Path(home) / "config.json"
    config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    config.setdefault("totalseg_id", "totalseg_bids_local")
    config.setdefault("prediction_counter", 0)
    config["send_usage_stats"] = False
    atomic_write_json(path, config)
    return path


def check_weights(task: str, fast: bool, classes: Sequence[str]) -> None:
    """One error before any image when the task's weight folders are missing
    (TotalSegmentator would try, and fail, to download them once per image)."""
    try:
        missing = missing_models(task, fast, classes)
    except ImportError:
        return  # TotalSegmentator not importable here: the program reports for itself
    if missing:
        names = ", ".join(f"{m.task_id} ({m.folder.name})" for m in missing)
        raise ExternalToolError(f"TotalSegmentator weights for task {task!r}{' (--fast)' if fast else ''} "
                                f"are not installed: model {names}", missing[0].folder.parent,
                                WEIGHTS_FIX.format(task=task))
