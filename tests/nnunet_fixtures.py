"""One tiny real nnU-Net per test session, shared by the converter and predict tests.

Phantom BIDS data (5 subjects, T1w + sagittal T2w each) -> LABEL config
(3 subjects TRAINING, 1 VALIDATION, 1 TESTING) -> our converter ->
``nnUNetv2_plan_and_preprocess --verify_dataset_integrity`` -> ``nnUNetv2_train`` with ``nnUNetTrainer_2epochs_10iters`` on the
CPU (the trainer caps the patch at 32x48x48). Every nnU-Net step runs in a subprocess with the ``nnUNet_*`` variables
set, as a user would run it. The result is cached in this module (imported
once per session) so both test modules reuse one model.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATASET_ID = 301
DATASET_NAME = "PhantomSacrum"
TRAINER = "nnUNetTrainer_2epochs_10iters"
SUBJECTS = 5

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

    @property
    def raw_dataset(self) -> Path:
        return self.raw / self.dataset_folder


def gt_label(ds: Path, sub: str, contrast: str) -> Path:
    stem = f"sub-{sub}_acq-sag_T2w" if contrast == "T2w" else f"sub-{sub}_T1w"
    return ds / "derivatives" / "ground_truth" / f"sub-{sub}" / "anat" / f"{stem}_label-sacrum_seg.nii.gz"


def phantom_config(ds: Path, path: Path, train=("01", "02", "03"), val=("04",), test=("05",)) -> Path:
    """A LABEL config in docs/conventions.md section 4 format, paths relative to DATASETS_PATH."""
    rel = lambda p: p.relative_to(ds.parent).as_posix()
    entries = lambda subs: [rel(gt_label(ds, s, c)) for s in subs for c in ("T1w", "T2w")]
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
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
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
    res = convert(config, env["nnUNet_raw"], DATASET_ID, DATASET_NAME, jobs=1)
    timings["convert"] = time.perf_counter() - t
    folder = res.folder.name
    t = time.perf_counter()
    plan = _run(["nnUNetv2_plan_and_preprocess", "-d", str(DATASET_ID), "--verify_dataset_integrity",
                 "-c", "3d_fullres", "-np", "1", "-npfp", "1"], env, 600)
    timings["plan_and_preprocess"] = time.perf_counter() - t
    pre_split = Path(env["nnUNet_preprocessed"]) / folder / "splits_final.json"
    if not pre_split.exists():  # the converter wrote it only if nnUNet_preprocessed was set in-process
        pre_split.write_text((res.folder / "splits_final.json").read_text(encoding="utf-8"))
    t = time.perf_counter()
    nnunet_train(env)
    timings["train"] = time.perf_counter() - t
    model_dir = Path(env["nnUNet_results"]) / folder / f"{TRAINER}__nnUNetPlans__3d_fullres"
    return TrainedModel(ds, config, Path(env["nnUNet_raw"]), Path(env["nnUNet_preprocessed"]),
                        Path(env["nnUNet_results"]), folder, model_dir, env, timings, plan.stdout)


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory) -> TrainedModel:
    """The session's tiny nnU-Net (trained on first use, then reused)."""
    if "model" not in _CACHE:
        _CACHE["model"] = train_tiny_model(tmp_path_factory.mktemp("nnunet"))
    return _CACHE["model"]
