"""One tiny real nnU-Net per test session, shared by the converter, train, predict and model tests.

Phantom BIDS data (5 subjects, T1w + sagittal T2w each) -> LABEL config
(3 subjects TRAINING, 1 VALIDATION, 1 TESTING) -> our converter with two folds drawn by
subject -> ``python -m totalseg_bids.train_nnunet -f all`` with ``nnUNetTrainer_2epochs_10iters`` on the
CPU (the trainer caps the patch at 32x48x48): ``nnUNetv2_plan_and_preprocess --verify_dataset_integrity``,
``nnUNetv2_train`` of folds 0 and 1, then ``nnUNetv2_find_best_configuration`` (cross-validation of both
folds and nnU-Net's post-processing decision). Every nnU-Net step runs in a subprocess with the
``nnUNet_*`` variables set, as a user would run it. The result is cached in this module (imported
once per session) so every test module reuses one model.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from support import REPO
from totalseg_bids.core.locks import file_lock

DATASET_ID = 301
DATASET_NAME = "PhantomSacrum"
TRAINER = "nnUNetTrainer_2epochs_10iters"
SUBJECTS = 5
FOLDS = 2

_CACHE: dict[str, TrainedModel] = {}


@dataclass
class TrainedModel:
    bids: Path
    config: Path
    raw: Path
    preprocessed: Path
    results: Path
    dataset_folder: str
    model_dir: Path
    env: dict
    timings: dict = field(default_factory=dict)
    plan_output: str = ""
    train_records: list = field(default_factory=list)

    @property
    def raw_dataset(self) -> Path:
        return self.raw / self.dataset_folder

    def to_json(self) -> str:
        return json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self).items()})

    @classmethod
    def from_json(cls, text: str) -> TrainedModel:
        paths = {f.name for f in dataclasses.fields(cls) if f.type in ("Path", Path)}
        return cls(**{k: Path(v) if k in paths else v for k, v in json.loads(text).items()})


def gt_label(ds: Path, sub: str, contrast: str) -> Path:
    stem = f"sub-{sub}_acq-sag_T2w" if contrast == "T2w" else f"sub-{sub}_T1w"
    return ds / "derivatives" / "ground_truth" / f"sub-{sub}" / "anat" / f"{stem}_label-sacrum_seg.nii.gz"


def phantom_config(ds: Path, path: Path, train=("01", "02", "03"), val=("04",), test=("05",)) -> Path:
    """A LABEL config in docs/conventions.md section 4 format, paths relative to DATASETS_PATH."""
    def entries(subs):
        return [gt_label(ds, s, c).relative_to(ds.parent).as_posix() for s in subs for c in ("T1w", "T2w")]

    cfg = {"TYPE": "LABEL", "CONTRASTS": "t1_t2", "DATASETS_PATH": str(ds.parent),
           "TRAINING": entries(train), "VALIDATION": entries(val), "TESTING": entries(test)}
    path.write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    return path


def nnunet_env(base: Path) -> dict:
    from totalseg_bids.nnunet.trainers import trainer_env

    env = dict(os.environ)
    env.update({"nnUNet_raw": str(base / "raw"), "nnUNet_preprocessed": str(base / "preprocessed"),
                "nnUNet_results": str(base / "results"), "nnUNet_def_n_proc": "1", "nnUNet_n_proc_DA": "1",
                "TOTALSEG_BIDS_NO_PROGRESS": "1", "PYTHONPATH": str(REPO) + os.pathsep + env.get("PYTHONPATH", "")})
    env.update(trainer_env({"nnUNet_extTrainer": ""}))
    return env


def _run(cmd: list[str], env: dict, timeout: float) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env, capture_output=True, encoding="utf-8", errors="replace", timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def nnunet_train(env: dict, timeout: float = 900) -> subprocess.CompletedProcess:
    """``nnUNetv2_train`` of the phantom dataset, fold 0, with the quick trainer on the CPU."""
    return _run(["nnUNetv2_train", str(DATASET_ID), "3d_fullres", "0", "-tr", TRAINER, "-device", "cpu"], env, timeout)


def train_tiny_model(base: Path) -> TrainedModel:
    from totalseg_bids.convert_config_to_nnunet import convert
    from totalseg_bids.testing.phantoms import generate

    timings = {}
    t = time.perf_counter()
    ds = generate(base / "bids" / "phantom", subjects=SUBJECTS, seed=7)
    timings["phantoms"] = time.perf_counter() - t
    config = phantom_config(ds, base / "train_sacrum.json")
    env = nnunet_env(base)
    for key in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    res = convert(config, env["nnUNet_raw"], DATASET_ID, DATASET_NAME, jobs=1, folds=FOLDS)
    timings["convert"] = time.perf_counter() - t
    folder = res.folder.name
    t = time.perf_counter()
    proc = _run([sys.executable, "-m", "totalseg_bids.train_nnunet", "-d", str(DATASET_ID), "-c", "3d_fullres",
                 "-f", "all", "-tr", TRAINER, "--device", "cpu"], env, 1500)
    timings["train_nnunet (plan, 2 folds, find_best)"] = time.perf_counter() - t
    model_dir = Path(env["nnUNet_results"]) / folder / f"{TRAINER}__nnUNetPlans__3d_fullres"
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    return TrainedModel(ds, config, Path(env["nnUNet_raw"]), Path(env["nnUNet_preprocessed"]),
                        Path(env["nnUNet_results"]), folder, model_dir, env, timings, proc.stderr, records)


def shared_dir(tmp_path_factory, name: str) -> Path:
    """A folder every process of the session sees (pytest-xdist workers share their base's parent)."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory) -> TrainedModel:
    """The session's tiny nnU-Net: trained by the first process that needs it, under a lock, and
    read back by every other test worker."""
    if "model" not in _CACHE:
        base = shared_dir(tmp_path_factory, "nnunet_model")
        with file_lock(base / ".lock"):
            record = base / "model.json"
            if record.is_file():
                model = TrainedModel.from_json(record.read_text(encoding="utf-8"))
            else:
                model = train_tiny_model(base)
                record.write_text(model.to_json(), encoding="utf-8")
        _CACHE["model"] = model
    return _CACHE["model"]
