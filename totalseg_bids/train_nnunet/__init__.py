"""Plan, preprocess and train an nnU-Net v2 dataset written by totalseg_bids.convert_config_to_nnunet.

``python -m totalseg_bids.train_nnunet 300 3d_fullres 0`` (or ``totalseg-bids-train-nnunet``) runs, from any
folder: ``nnUNetv2_plan_and_preprocess --verify_dataset_integrity``, copies the converter's
``splits_final.json`` (fold 0 = the config's TRAINING/VALIDATION split) next to the preprocessed data, and
``nnUNetv2_train`` for every fold, with ``nnUNet_extTrainer`` naming the trainers shipped in
``totalseg_bids/nnunet/trainers`` (e.g. the quick ``nnUNetTrainer_2epochs_10iters``).

Why it is built this way: nnU-Net's own command-line tools do the work, each in a subprocess with the
``nnUNet_*`` variables set, exactly as a user would run them; this module only adds the checks (variables
set, dataset converted) and the glue that users otherwise forget (split file, trainer folder, device).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core import cli
from ..core.errors import ExternalToolError, MissingFileError, UsageError
from ..core.options import options_from_args, resolve_options

MODULE = "train_nnunet"
TRAINER_ENV = "TOTALSEG_BIDS_NNUNET_TRAINER"
NNUNET_VARS = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")


def dataset_folder(raw: Path, dataset_id: str) -> Path:
    """``Dataset<NNN>_<Name>`` in ``nnUNet_raw`` for a numeric id.

    >>> dataset_folder(Path("/nonexistent"), "x")
    Traceback (most recent call last):
    ...
    totalseg_bids.core.errors.UsageError: dataset id must be a number, got 'x'; e.g. 300
    """
    if not re.fullmatch(r"\d+", dataset_id):
        raise UsageError(f"dataset id must be a number, got {dataset_id!r}", None, "e.g. 300")
    hits = sorted(raw.glob(f"Dataset{int(dataset_id):03d}_*")) if raw.is_dir() else []
    hits = [h for h in hits if h.is_dir()]
    if not hits:
        raise MissingFileError(f"no Dataset{int(dataset_id):03d}_* folder", raw,
                               "run python -m totalseg_bids.convert_config_to_nnunet first")
    return hits[0]


def default_processes(cores: int | None = None) -> int:
    """Preprocessing processes: 1 on small machines (each imports torch), else 4.

    >>> default_processes(2), default_processes(16)
    (1, 4)
    """
    cores = cores or os.cpu_count() or 1
    return 1 if cores <= 2 else 4


def training_env(env: dict | None = None, device: str = "cpu") -> dict:
    """The environment for nnU-Net's tools: our trainer folder, process counts."""
    from ..nnunet.trainers import trainer_env

    out = trainer_env(dict(os.environ if env is None else env))
    np_ = out.get("NNUNET_NP") or str(default_processes())
    out.setdefault("nnUNet_def_n_proc", np_)
    if device == "cpu":
        cores = os.cpu_count() or 1
        out.setdefault("nnUNet_n_proc_DA", str(1 if cores <= 2 else cores - 1))
    return out


def choose_device(requested: str | None) -> str:
    """``DEVICE`` if set, else cuda when torch sees a GPU, else cpu."""
    if requested:
        return requested
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def _tool(name: str) -> str:
    path = shutil.which(name) or (str(Path(sys.executable).parent / name)
                                  if (Path(sys.executable).parent / name).is_file() else None)
    if not path:
        raise ExternalToolError(f"{name} not found", None, "install nnU-Net: pip install 'totalseg_bids[nnunet]'")
    return path


def _call(cmd: Sequence[str], env: dict) -> None:
    """Run one nnU-Net tool; its output goes to stderr, since stdout carries only our result record."""
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    rc = subprocess.call(list(cmd), env=env, stdout=2)
    if rc != 0:
        raise ExternalToolError(f"{Path(cmd[0]).name} exited with {rc}", None, "see its output above")


def copy_splits(dataset_dir: Path, preprocessed: Path) -> Path | None:
    """Put the converter's ``splits_final.json`` where nnU-Net reads it (else it makes a random split)."""
    src = dataset_dir / "splits_final.json"
    if not src.is_file():
        cli_log().warning("%s missing; nnU-Net makes a random 5-fold split", src)
        return None
    dst = preprocessed / dataset_dir.name / "splits_final.json"
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return dst


def cli_log():
    import logging

    return logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainOptions:
    """What to train: nnU-Net's configuration, folds, trainer and plans, on which device.

    ``device`` None picks cuda when torch sees a GPU; ``preprocess`` False reuses
    an earlier plan/preprocess; ``extra_args`` go to ``nnUNetv2_train`` as they are.
    """

    configuration: str = "3d_fullres"
    folds: tuple[str, ...] = ("0",)
    trainer: str = "nnUNetTrainer"
    plans: str = "nnUNetPlans"
    device: str | None = None
    preprocess: bool = True
    extra_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # lists from callers and the CLI become tuples, so the options stay hashable and frozen
        object.__setattr__(self, "folds", tuple(str(f) for f in self.folds))
        object.__setattr__(self, "extra_args", tuple(self.extra_args))
        if not self.folds:
            raise UsageError("no fold to train", None, "give folds, e.g. 0 or \"0 1 2 3 4\"")


def train(dataset_id: str, options: TrainOptions | None = None, **kwargs) -> Path:
    """Plan/preprocess (with nnU-Net's integrity check), copy the split, train each fold; returns the model folder.

    ``options`` (or its fields as keyword arguments): see :class:`TrainOptions`.
    """
    opts = resolve_options(TrainOptions, options, kwargs)
    configuration, trainer, plans = opts.configuration, opts.trainer, opts.plans
    missing = [v for v in NNUNET_VARS if not os.environ.get(v)]
    if missing:
        raise UsageError(f"{missing[0]} is not set", None, f"export {missing[0]}=DIR (see docs/conventions.md)")
    raw, pre, results = (Path(os.environ[v]) for v in NNUNET_VARS)
    ds_dir = dataset_folder(raw, dataset_id)
    device = choose_device(opts.device)
    env = training_env(device=device)
    np_ = env["nnUNet_def_n_proc"]
    cli_log().info("%s, configuration %s, folds %s, trainer %s, plans %s, device %s", ds_dir.name, configuration,
                   " ".join(opts.folds), trainer, plans, device)
    if opts.preprocess:
        _call([_tool("nnUNetv2_plan_and_preprocess"), "-d", dataset_id, "--verify_dataset_integrity",
               "-c", configuration, "-np", np_, "-npfp", np_], env)
    copy_splits(ds_dir, pre)
    for fold in opts.folds:
        _call([_tool("nnUNetv2_train"), dataset_id, configuration, fold, "-tr", trainer, "-p", plans,
               "-device", device, *opts.extra_args], env)
    model = results / ds_dir.name / f"{trainer}__{plans}__{configuration}"
    cli_log().info("done; model in %s", model)
    return model


def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser(
        MODULE, __doc__.splitlines()[0],
        epilog="examples:\n  python -m totalseg_bids.train_nnunet 300 3d_fullres 0\n"
               "  python -m totalseg_bids.train_nnunet 300 3d_fullres \"0 1 2 3 4\" nnUNetTrainer\n"
               "  python -m totalseg_bids.train_nnunet 300 3d_fullres 0 nnUNetTrainer_2epochs_10iters  # quick CPU run\n"
               f"environment: nnUNet_raw, nnUNet_preprocessed, nnUNet_results (required); {TRAINER_ENV} (default "
               "trainer); DEVICE=cpu|cuda|mps; NNUNET_NP (preprocessing processes); SKIP_PREPROCESS=1; TRAIN_ARGS "
               "(more nnUNetv2_train flags)")
    p.add_argument("dataset_id", help="nnU-Net dataset number (the converter's -d)")
    p.add_argument("configuration", nargs="?", default="3d_fullres")
    p.add_argument("folds", nargs="?", default="0", help="fold(s), space separated in one argument (default 0)")
    p.add_argument("trainer", nargs="?", default=None,
                   help=f"trainer class (default ${TRAINER_ENV}, else nnUNetTrainer)")
    p.add_argument("plans", nargs="?", default="nnUNetPlans")
    return p


def _run(args: argparse.Namespace) -> int:
    opts = options_from_args(TrainOptions, args, folds=tuple(args.folds.split()),
                             trainer=args.trainer or os.environ.get(TRAINER_ENV) or "nnUNetTrainer",
                             device=os.environ.get("DEVICE") or None,
                             preprocess=os.environ.get("SKIP_PREPROCESS", "0") != "1",
                             extra_args=tuple(os.environ.get("TRAIN_ARGS", "").split()))
    model = train(args.dataset_id, opts)
    cli.emit(MODULE, [{"status": "written", "path": model, "dataset_id": args.dataset_id,
                       "configuration": opts.configuration, "folds": list(opts.folds), "trainer": opts.trainer}])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)
