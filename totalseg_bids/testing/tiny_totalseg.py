"""Tiny local TotalSegmentator weights, trained on phantom images.

TotalSegmentator downloads its weights on first use; where nothing outside
the package registries can be reached (CI, air-gapped sites), the real
program can still run end to end if its weight folders exist. This module
trains one tiny nnU-Net per modality (phantom CTs for ``total``, phantom
T1w/T2w for ``total_mr``) on the phantom structures (sacrum, vertebrae_L5,
hips; and the skull of phantom head CTs for ``total``) and installs it
under every task id the installed TotalSegmentator uses for that task (default, ``--fast``, ``--fastest``/``--roi_subset``
cropping models), with that id's own label table: the network's output layer
is widened to the table, classes the phantom lacks get a constant "never"
output. Task ids, folder names, trainer names and class maps are read from
the installed package, so an upgrade either still works or fails here with
a clear message. The result is a tiny model: its Dice shows the plumbing and
grid handling, not TotalSegmentator's quality.

The folder written is a ``TOTALSEG_HOME_DIR``; its ``config.json`` turns
TotalSegmentator's usage statistics off.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..core.atomic import atomic_write_json
from ..core.errors import ExternalToolError, UsageError
from ..core.nifti import Grid
from ..nnunet.trainers import trainer_env
from ..totalsegmentator import STAMP, TaskModel, disable_usage_stats, task_models, version, weights_dir
from .anatomy import STRUCTURES, make_affine
from .head import CLASS, head_classes, head_of, render_ct
from .phantoms import generate

log = logging.getLogger(__name__)

#: Tasks the builder knows how to train for, with the phantom images each learns from.
MODALITIES = {"total": ("CT",), "total_mr": ("T1w", "T2w")}
#: Training set size (phantom subjects) and the nnU-Net dataset id used while training.
SUBJECTS = 4
#: Phantom head CTs put before the ``total`` training set's pelvis CTs (the last case, a pelvis CT,
#: validates): the skull, which the head recipes crop to.
HEAD_SUBJECTS = 2
#: The classes each task's tiny network learns (besides background); a build records them, and a
#: build that learnt other classes is redone.
TRAINED = {"total": (*STRUCTURES, "skull"), "total_mr": STRUCTURES}
TRAIN_DATASET_ID = {"total": 911, "total_mr": 912}
#: The trainer of each task's network (``total`` also learns the skull: more epochs, same patch sampling per class).
TRAINERS = {"total": "nnUNetTrainer_tinyTotalSegHead", "total_mr": "nnUNetTrainer_tinyTotalSeg"}
#: Phantom CT voxel size (mm) for training: TotalSegmentator resamples to 1.5-6 mm, nnU-Net then to this.
CT_SPACING = 3.0
PLANS = "nnUNetPlans"
CONFIGURATION = "3d_fullres"
#: Output bias of classes the phantom does not have: softmax never picks them.
NEVER_BIAS = -30.0


# ------------------------------------------------------------------ the installed network
def widen_output(weights: Mapping, trained: Sequence[str], table: Mapping[int, str]) -> dict:
    """Network weights whose segmentation layers output ``table``'s classes.

    ``trained`` names the trained output channels (channel 0 background).
    Channel ``k`` of the result copies the trained channel of ``table[k]``;
    classes not trained get weight 0 and a large negative bias.

    >>> import torch
    >>> w = {"decoder.seg_layers.0.weight": torch.ones(3, 4, 1, 1, 1), "decoder.seg_layers.0.bias": torch.arange(3.)}
    >>> out = widen_output(w, ["background", "a", "b"], {1: "x", 2: "b", 5: "a"})
    >>> out["decoder.seg_layers.0.bias"].tolist()
    [0.0, -30.0, 2.0, -30.0, -30.0, 1.0]
    """
    import torch

    index = {name: i for i, name in enumerate(trained)}
    n_out = max(table) + 1
    out = {}
    for key, value in weights.items():
        if "seg_layers" not in key or value.shape[0] != len(trained):
            out[key] = value
            continue
        new = torch.zeros((n_out, *value.shape[1:]), dtype=value.dtype)
        if key.endswith("bias"):
            new.fill_(NEVER_BIAS)
        new[0] = value[0]
        for k, name in table.items():
            if name in index:
                new[k] = value[index[name]]
        out[key] = new
    return out


# ------------------------------------------------------------------ training
def _env(base: Path) -> dict:
    env = dict(os.environ)
    env.update({"nnUNet_raw": str(base / "raw"), "nnUNet_preprocessed": str(base / "preprocessed"),
                "nnUNet_results": str(base / "results"), "nnUNet_n_proc_DA": "1"})
    env.setdefault("nnUNet_def_n_proc", "1")
    env.update(trainer_env({"nnUNet_extTrainer": env.get("nnUNet_extTrainer", "")}))
    for key in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    return env


def _run(cmd: list[str], env: dict) -> None:
    proc = subprocess.run(cmd, env=env, capture_output=True, encoding="utf-8", errors="replace")
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise ExternalToolError(f"{cmd[0]} failed (exit {proc.returncode}: {tail[0][:200]})", None,
                                "rerun with -vv for nnU-Net's full output")
    log.debug("%s\n%s", " ".join(cmd), proc.stdout[-2000:])


def write_training_set(task: str, base: Path, seed: int = 11) -> tuple[Path, list[str]]:
    """An nnU-Net raw dataset of phantom images of ``task``'s modality, labels 1..4
    the phantom structures (5 the skull of the head CTs of ``total``, which come first so the
    validation case stays a pelvis CT); returns its folder and the channel names."""
    import nibabel as nib

    bids = generate(base / "phantom", subjects=SUBJECTS, seed=seed, ct_labels=False, ct_spacing=CT_SPACING)
    folder = base / "raw" / f"Dataset{TRAIN_DATASET_ID[task]:03d}_TinyTotalSeg{task.replace('_', '')}"
    (folder / "imagesTr").mkdir(parents=True, exist_ok=True)
    (folder / "labelsTr").mkdir(parents=True, exist_ok=True)
    n = write_head_cases(folder, 0, seed, TRAINED[task].index("skull") + 1) if "skull" in TRAINED[task] else 0
    gt = bids / "derivatives" / "ground_truth"
    for modality in MODALITIES[task]:
        for img in sorted(bids.glob(f"sub-*/anat/*_{modality}.nii.gz")):
            stem = img.name[: -len(".nii.gz")]
            lab = gt / img.parent.relative_to(bids) / f"{stem}_label-phantom_dseg.nii.gz"
            case = f"case_{n:03d}"
            shutil.copyfile(img, folder / "imagesTr" / f"{case}_0000.nii.gz")
            shutil.copyfile(lab, folder / "labelsTr" / f"{case}.nii.gz")
            n += 1
    if n == 0:
        raise ExternalToolError(f"no phantom {'/'.join(MODALITIES[task])} images were written", bids,
                                "check totalseg_bids.phantoms")
    nib.load(folder / "imagesTr" / "case_000_0000.nii.gz")  # readable
    names = ["background", *TRAINED[task]]
    channel = "CT" if task == "total" else "MRI"
    atomic_write_json(folder / "dataset.json", {
        "channel_names": {"0": channel}, "labels": {name: i for i, name in enumerate(names)},
        "numTraining": n, "file_ending": ".nii.gz"})
    return folder, names


def write_head_cases(folder: Path, n: int, seed: int, skull: int) -> int:
    """Phantom head CTs (with a neck) labelled ``skull`` where the skull is; returns the case count."""
    import nibabel as nib

    shape = (60, 70, 84)
    grid = Grid(shape, make_affine(np.eye(3), [CT_SPACING] * 3, shape, [0.0, 0.0, -10.0]))
    for i in range(HEAD_SUBJECTS):
        head = head_of(i, seed, hemorrhage=i % 2 == 1)
        head.neck_to = -140.0
        classes = head_classes(head, grid)
        ct = render_ct(classes, np.random.default_rng([seed, i, 5]))
        case = f"case_{n:03d}"
        for data, path in ((ct, folder / "imagesTr" / f"{case}_0000.nii.gz"),
                           ((classes == CLASS["skull"]).astype(np.uint8) * skull,
                            folder / "labelsTr" / f"{case}.nii.gz")):
            nib.save(nib.Nifti1Image(data, grid.affine), str(path))
        n += 1
    return n


def train(task: str, base: Path) -> tuple[Path, list[str]]:
    """Plan, preprocess and train the tiny network of ``task``; returns the
    trained model folder and its output channel names."""
    env = _env(base)
    folder, names = write_training_set(task, base)
    did = str(TRAIN_DATASET_ID[task])
    _run(["nnUNetv2_plan_and_preprocess", "-d", did, "-c", CONFIGURATION, "-np", "1", "-npfp", "1"], env)
    splits = Path(env["nnUNet_preprocessed"]) / folder.name / "splits_final.json"
    cases = sorted(p.name[: -len("_0000.nii.gz")] for p in (folder / "imagesTr").iterdir())
    atomic_write_json(splits, [{"train": cases[:-1], "val": cases[-1:]}])
    _run([sys.executable, "-c", "from nnunetv2.run.run_training import run_training_entry as m; m()",
          did, CONFIGURATION, "0", "-tr", TRAINERS[task], "-device", "cpu"], env)
    return Path(env["nnUNet_results"]) / folder.name / f"{TRAINERS[task]}__{PLANS}__{CONFIGURATION}", names


# ------------------------------------------------------------------ installing
def install(trained: Path, names: Sequence[str], model: TaskModel, results: Path) -> Path:
    """Copy the trained network into ``model``'s folder under the trainer and
    label table TotalSegmentator expects; returns the model folder."""
    import torch

    target = results / model.folder / f"{model.trainer}__{PLANS}__{CONFIGURATION}"
    tmp = target.with_name(target.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "fold_0").mkdir(parents=True)
    dataset = json.loads((trained / "dataset.json").read_text(encoding="utf-8"))
    dataset["labels"] = {"background": 0, **{name: k for k, name in sorted(model.labels.items())}}
    plans = json.loads((trained / "plans.json").read_text(encoding="utf-8"))
    plans["dataset_name"] = Path(model.folder).name
    ckpt = torch.load(trained / "fold_0" / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    ckpt["network_weights"] = widen_output(ckpt["network_weights"], names, model.labels)
    ckpt["trainer_name"] = model.trainer
    ckpt["optimizer_state"] = None
    ckpt["grad_scaler_state"] = None
    if isinstance(ckpt.get("init_args"), dict):
        ckpt["init_args"] = {**ckpt["init_args"], "plans": plans, "dataset_json": dataset}
    torch.save(ckpt, tmp / "fold_0" / "checkpoint_final.pth")
    atomic_write_json(tmp / "dataset.json", dataset)
    atomic_write_json(tmp / "plans.json", plans)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def is_built(home: str | Path, tasks: Sequence[str]) -> bool:
    """True when ``home`` holds a complete build for ``tasks`` (from this TotalSegmentator version)."""
    stamp = Path(home) / STAMP
    if not stamp.is_file():
        return False
    info = json.loads(stamp.read_text(encoding="utf-8"))
    trained = info.get("trained", {})
    return (info.get("totalsegmentator") == version() and set(tasks) <= set(info.get("tasks", []))
            and all(trained.get(t, list(STRUCTURES)) == list(TRAINED[t]) for t in tasks if t in TRAINED))


def build(home: str | Path, tasks: Sequence[str] = ("total",), work: str | Path | None = None) -> dict:
    """Train and install tiny weights for ``tasks`` in ``home`` (a TOTALSEG_HOME_DIR).

    Returns timings and the installed folders; an existing complete build is kept.
    """
    home = Path(home).absolute()
    unknown = [t for t in tasks if t not in MODALITIES]
    if unknown:
        raise UsageError(f"no tiny weights for task(s) {', '.join(unknown)}", None,
                         f"choose from {', '.join(MODALITIES)}")
    home.mkdir(parents=True, exist_ok=True)
    disable_usage_stats(home)
    if is_built(home, tasks):
        return json.loads((home / STAMP).read_text(encoding="utf-8"))
    old = json.loads((home / STAMP).read_text(encoding="utf-8")) if (home / STAMP).is_file() else {}
    if old.get("totalsegmentator") != version():
        old = {}
    # a network that learnt other classes than this version teaches is trained again (builds that did not
    # record them learnt the pelvis structures)
    learnt = {t: old.get("trained", {}).get(t, list(STRUCTURES)) for t in old.get("tasks", [])}
    kept = [t for t, classes in learnt.items() if classes == list(TRAINED.get(t, ()))]
    record = {"totalsegmentator": version(), "tasks": kept, "seconds": dict(old.get("seconds", {})),
              "folders": list(old.get("folders", [])), "trained": {t: list(TRAINED[t]) for t in kept}}
    for task in [t for t in tasks if t not in record["tasks"]]:
        models = task_models(task)
        t = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="tiny_totalseg-", dir=work) as tmp:
            trained, names = train(task, Path(tmp))
            for model in models:
                folder = str(install(trained, names, model, weights_dir(home)).relative_to(home))
                record["folders"] = [*dict.fromkeys([*record["folders"], folder])]
        record["seconds"][task] = round(time.perf_counter() - t, 1)
        record["tasks"].append(task)
        record["trained"][task] = list(TRAINED[task])
    record["description"] = ("tiny local nnU-Net trained on phantom images by totalseg_bids; "
                             "not TotalSegmentator's published weights")
    atomic_write_json(home / STAMP, record)
    return record
