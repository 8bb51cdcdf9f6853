"""nnU-Net's folders and the environment its tools run in, read in this one place.

nnU-Net finds its data through three environment variables (``nnUNet_raw``,
``nnUNet_preprocessed``, ``nnUNet_results``), each read once at import by
``nnunetv2.paths``. Here each is one :class:`Folder` object read when asked, so
a test or a caller that changes the environment is seen, and a missing one
gives the same one-line error everywhere. Subprocesses of nnU-Net's tools get
their environment from :func:`tool_env`; in-process calls from
:func:`use_our_trainers` and :func:`module_paths`.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import UsageError
from .trainers import trainer_env

#: The trainer a stage uses when none is given (training and prediction alike).
TRAINER_ENV = "TOTALSEG_BIDS_NNUNET_TRAINER"
DEFAULT_TRAINER = "nnUNetTrainer"
#: Where ``model install`` puts models (else ``nnUNet_results``).
MODELS_ENV = "TOTALSEG_BIDS_MODELS"
#: nnU-Net's modules that copy the folder variables at import (patched by :func:`module_paths`).
_NNUNET_MODULES = ("nnunetv2.paths", "nnunetv2.utilities.file_path_utilities",
                   "nnunetv2.utilities.dataset_name_id_conversion", "nnunetv2.model_sharing.model_export",
                   "nnunetv2.model_sharing.model_import")


@dataclass(frozen=True)
class Folder:
    """One of nnU-Net's folders, named by its environment variable.

    >>> RAW.get({"nnUNet_raw": "/data/raw"})
    PosixPath('/data/raw')
    >>> RAW.require({})
    Traceback (most recent call last):
    ...
    totalseg_bids.core.errors.UsageError: nnUNet_raw is not set; export nnUNet_raw=DIR (nnU-Net's raw datasets; \
docs/conventions.md section 6)
    """

    variable: str
    holds: str

    def get(self, env: Mapping[str, str] | None = None) -> Path | None:
        """The folder, or None when the variable is unset or empty."""
        value = (os.environ if env is None else env).get(self.variable)
        return Path(value).expanduser() if value else None

    def require(self, env: Mapping[str, str] | None = None, fix: str | None = None) -> Path:
        """The folder; a usage error naming the variable when it is not set."""
        path = self.get(env)
        if path is None:
            raise UsageError(f"{self.variable} is not set", None, fix or f"export {self.variable}=DIR "
                             f"(nnU-Net's {self.holds}; docs/conventions.md section 6)")
        return path


RAW = Folder("nnUNet_raw", "raw datasets")
PREPROCESSED = Folder("nnUNet_preprocessed", "preprocessed datasets")
RESULTS = Folder("nnUNet_results", "trained models")
FOLDERS = (RAW, PREPROCESSED, RESULTS)


def require_all(env: Mapping[str, str] | None = None) -> tuple[Path, Path, Path]:
    """``nnUNet_raw``, ``nnUNet_preprocessed`` and ``nnUNet_results``: nnU-Net's tools need all three."""
    raw, pre, results = (folder.require(env) for folder in FOLDERS)
    return raw, pre, results


def set_folders(env: Mapping[str, str] | None = None) -> list[Path]:
    """The nnU-Net folders that are set (where a dataset id may already be taken)."""
    return [p for p in (folder.get(env) for folder in FOLDERS) if p is not None]


def default_trainer(env: Mapping[str, str] | None = None) -> str:
    """``$TOTALSEG_BIDS_NNUNET_TRAINER``, else nnU-Net's own trainer.

    >>> default_trainer({}), default_trainer({"TOTALSEG_BIDS_NNUNET_TRAINER": "nnUNetTrainer_2epochs_10iters"})
    ('nnUNetTrainer', 'nnUNetTrainer_2epochs_10iters')
    """
    return (os.environ if env is None else env).get(TRAINER_ENV) or DEFAULT_TRAINER


def models_root(results: str | Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """Where models are installed: ``results``, ``$TOTALSEG_BIDS_MODELS`` or ``$nnUNet_results``.

    >>> models_root(env={"nnUNet_results": "/r"})
    PosixPath('/r')
    >>> models_root(env={"TOTALSEG_BIDS_MODELS": "/m", "nnUNet_results": "/r"})
    PosixPath('/m')
    """
    env = os.environ if env is None else env
    root = results or env.get(MODELS_ENV) or RESULTS.get(env)
    if not root:
        raise UsageError("no model folder configured", None, f"export {MODELS_ENV}=DIR or nnUNet_results=DIR")
    return Path(root)


def default_processes(cores: int | None = None) -> int:
    """Preprocessing processes: 1 on small machines (each imports torch), else 4.

    >>> default_processes(2), default_processes(16)
    (1, 4)
    """
    cores = cores or os.cpu_count() or 1
    return 1 if cores <= 2 else 4


def tool_env(env: Mapping[str, str] | None = None, device: str = "cpu",
             folders: Mapping[str, str | Path] | None = None) -> dict[str, str]:
    """The environment of an nnU-Net subprocess: our trainer folder on ``nnUNet_extTrainer``,
    the process counts (``NNUNET_NP``, else :func:`default_processes`), and ``folders``
    (variable -> folder) for variables not set already.

    >>> e = tool_env({"NNUNET_NP": "2"}, folders={"nnUNet_raw": "/x"})
    >>> e["nnUNet_def_n_proc"], e["nnUNet_raw"], "nnUNet_extTrainer" in e
    ('2', '/x', True)
    """
    out = trainer_env(dict(os.environ if env is None else env))
    for variable, folder in (folders or {}).items():
        if not out.get(variable):
            out[variable] = str(folder)
    out.setdefault("nnUNet_def_n_proc", out.get("NNUNET_NP") or str(default_processes()))
    if device == "cpu":
        cores = os.cpu_count() or 1
        out.setdefault("nnUNet_n_proc_DA", str(1 if cores <= 2 else cores - 1))
    return out


def use_our_trainers() -> None:
    """Make our trainers findable by nnU-Net in this process (before nnunetv2 rebuilds a network)."""
    os.environ.update(trainer_env({"nnUNet_extTrainer": os.environ.get("nnUNet_extTrainer", "")}))


@contextlib.contextmanager
def module_paths(results: str | Path, raw: str | Path | None = None,
                 preprocessed: str | Path | None = None) -> Iterator[None]:
    """nnU-Net's module-level folder variables pointed at these folders for one call.

    nnU-Net copies the variables into its modules at import, so one process that
    exports from one folder and installs into another must set them there; its
    printing goes to /dev/null (stdout carries our records).
    """
    values = {"nnUNet_results": str(results), "nnUNet_raw": raw and str(raw),
              "nnUNet_preprocessed": preprocessed and str(preprocessed)}
    saved: list[tuple[Any, str, Any]] = []
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        try:
            for name in _NNUNET_MODULES:
                module = importlib.import_module(name)
                for key, value in values.items():
                    if value is not None and hasattr(module, key):
                        saved.append((module, key, getattr(module, key)))
                        setattr(module, key, value)
            yield
        finally:
            for module, key, value in reversed(saved):
                setattr(module, key, value)
