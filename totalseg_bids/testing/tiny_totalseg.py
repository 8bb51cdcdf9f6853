"""Tiny local TotalSegmentator weights, trained on phantom images in one process.

TotalSegmentator downloads its weights on first use; where nothing outside
the package registries can be reached (CI, air-gapped sites), the real
program can still run end to end if its weight folders exist. This module
trains one tiny nnU-Net network on phantom CT, T1w and T2w patches
(:mod:`.tiny_network`: the phantom structures sacrum, vertebrae_L5 and the
hips, at 3 mm) and installs it under every task id the installed
TotalSegmentator uses for ``total`` and ``total_mr`` (default, ``--fast``,
``--fastest``/``--roi_subset`` cropping models), each with its own plans (CT
or MRI normalisation) and label table: the network's output layer is widened
to the table, classes the phantom lacks get a constant "never" output. Task
ids, folder names, trainer names and class maps are read from the installed
package, so an upgrade either still works or fails here with a clear
message. On the phantoms the result segments the sacrum about as well as a
3 mm model can; it knows nothing of real anatomy.

The folder written is a ``TOTALSEG_HOME_DIR``; its ``config.json`` turns
TotalSegmentator's usage statistics off.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..core.atomic import atomic_write_json, file_lock
from ..core.errors import UsageError
from ..totalsegmentator import STAMP, TaskModel, disable_usage_stats, task_models, version, weights_dir
from .tiny_network import CHANNELS, ITERATIONS, RECIPE, load_weights, plans, save_weights, train

log = logging.getLogger(__name__)

#: Tasks the builder installs, with the input channel of their models.
TASK_CHANNELS = {"total": "CT", "total_mr": "MRI"}
CONFIGURATION = "3d_fullres"
PLANS = "nnUNetPlans"
#: Suffix of the labels a part model gets for the phantom structures of other parts (see output_table).
OUTSIDE = "_outside_this_model"
#: Output bias of classes the phantom does not have: softmax never picks them.
NEVER_BIAS = -30.0
#: The trained network shipped with the package (python -m totalseg_bids.phantoms --totalseg-weights DIR
#: --retrain --save-network <this file> makes it again).
SHIPPED = Path(__file__).resolve().parent / "data" / "tiny_totalseg_network.npz"
DESCRIPTION = ("tiny local nnU-Net trained on phantom images by totalseg_bids; "
               "not TotalSegmentator's published weights")


# ------------------------------------------------------------------ the installed network
def output_table(trained: Sequence[str], table: Mapping[int, str]) -> dict[int, str]:
    """The label table a model's output layer is widened to: ``table``, then one more label for each
    trained structure the table lacks (a part model of another part of the body).

    TotalSegmentator maps every label of a part model outside the part's table to background before it
    merges the parts, so a structure the part does not know is claimed by none of the part's own classes
    (without these labels, the hips' model would call the L5 body a hip and overwrite the vertebrae
    model's label).

    >>> output_table(["background", "a", "b"], {1: "x", 2: "b"})
    {1: 'x', 2: 'b', 3: 'a_outside_this_model'}
    """
    out = dict(sorted(table.items()))
    known = set(table.values())
    for name in trained[1:]:
        if name not in known:
            out[max(out) + 1] = f"{name}{OUTSIDE}"
    return out


def widen_output(weights: Mapping, trained: Sequence[str], table: Mapping[int, str]) -> dict:
    """Network weights whose segmentation layers output :func:`output_table`'s labels.

    ``trained`` names the trained output channels (channel 0 background).
    Channel ``k`` of the result copies the trained channel of ``table[k]`` (or of the structure
    an ``_outside_this_model`` label stands for); labels not trained get weight 0 and a large
    negative bias.

    >>> import torch
    >>> w = {"decoder.seg_layers.0.weight": torch.ones(3, 4, 1, 1, 1), "decoder.seg_layers.0.bias": torch.arange(3.)}
    >>> out = widen_output(w, ["background", "a", "b"], {1: "x", 2: "b", 4: "y"})
    >>> out["decoder.seg_layers.0.bias"].tolist()
    [0.0, -30.0, 2.0, -30.0, -30.0, 1.0]
    """
    import torch

    labels = output_table(trained, table)
    index = {name: i for i, name in enumerate(trained)}
    index.update({f"{name}{OUTSIDE}": i for name, i in list(index.items())})
    n_out = max(labels) + 1
    out = {}
    for key, value in weights.items():
        if "seg_layers" not in key or value.shape[0] != len(trained):
            out[key] = value
            continue
        new = torch.zeros((n_out, *value.shape[1:]), dtype=value.dtype)
        if key.endswith("bias"):
            new.fill_(NEVER_BIAS)
        new[0] = value[0]
        for k, name in labels.items():
            if name in index:
                new[k] = value[index[name]]
        out[key] = new
    return out


def install(weights: Mapping, model: TaskModel, results: Path, channel: str) -> Path:
    """Write the network into ``model``'s folder under ``results`` as TotalSegmentator loads it:
    its trainer's folder name, plans, dataset.json with the model's label table, fold 0's
    checkpoint; returns the model folder."""
    import torch

    target = results / model.folder / f"{model.trainer}__{PLANS}__{CONFIGURATION}"
    tmp = target.with_name(target.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "fold_0").mkdir(parents=True)
    dataset = {"channel_names": {"0": channel},
               "labels": {"background": 0, **{name: k for k, name in output_table(CHANNELS, model.labels).items()}},
               "numTraining": 0, "file_ending": ".nii.gz"}
    model_plans = plans(Path(model.folder).name, channel)
    checkpoint = {"network_weights": widen_output(weights, CHANNELS, model.labels), "trainer_name": model.trainer,
                  "init_args": {"plans": model_plans, "configuration": CONFIGURATION, "fold": 0,
                                "dataset_json": dataset, "device": "cpu"},
                  "inference_allowed_mirroring_axes": None, "current_epoch": 0}
    torch.save(checkpoint, tmp / "fold_0" / "checkpoint_final.pth")
    atomic_write_json(tmp / "dataset.json", dataset)
    atomic_write_json(tmp / "plans.json", model_plans)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def is_built(home: str | Path, tasks: Sequence[str], trained: bool = False) -> bool:
    """True when ``home`` holds a complete build for ``tasks`` by this recipe, for this TotalSegmentator
    version (with ``trained``: a network trained here, not the shipped one)."""
    stamp = Path(home) / STAMP
    if not stamp.is_file():
        return False
    info = json.loads(stamp.read_text(encoding="utf-8"))
    return (info.get("totalsegmentator") == version() and info.get("recipe") == RECIPE
            and set(tasks) <= set(info.get("tasks", [])) and (not trained or info.get("network") == "trained"))


def shipped_network() -> tuple[dict, dict] | None:
    """The network shipped with the package (weights, metadata), or None when absent or made by
    another recipe."""
    if not SHIPPED.is_file():
        return None
    weights, meta = load_weights(SHIPPED)
    return (weights, meta) if meta.get("recipe") == RECIPE else None


def build(home: str | Path, tasks: Sequence[str] = ("total", "total_mr"), retrain: bool = False,
          iterations: int = ITERATIONS, seed: int = 0, save_network: str | Path | None = None) -> dict:
    """Install the tiny network for ``tasks`` in ``home`` (a TOTALSEG_HOME_DIR): the shipped one
    (seconds), or with ``retrain`` (or none shipped) one trained here first (minutes);
    ``save_network`` also writes the trained weights there (how the shipped file is made).

    Returns what the stamp records (network, tasks, folders, seconds); a complete build
    for ``tasks`` is kept, anything else is rebuilt whole.
    """
    home = Path(home).absolute()
    unknown = [t for t in tasks if t not in TASK_CHANNELS]
    if unknown:
        raise UsageError(f"no tiny weights for task(s) {', '.join(unknown)}", None,
                         f"choose from {', '.join(TASK_CHANNELS)}")
    home.mkdir(parents=True, exist_ok=True)
    with file_lock(home / f".{STAMP}.lock"):  # concurrent builders (test workers) build once
        disable_usage_stats(home)
        if not is_built(home, tasks, trained=retrain) or save_network is not None:
            _build(home, retrain, iterations, seed, save_network)
    return json.loads((home / STAMP).read_text(encoding="utf-8"))


def _build(home: Path, retrain: bool, iterations: int, seed: int, save_network: str | Path | None) -> None:
    """Train (or load) the network and install it for every task (one network serves them all)."""
    (home / STAMP).unlink(missing_ok=True)
    tasks = list(TASK_CHANNELS)
    models = {task: task_models(task) for task in tasks}
    start = time.perf_counter()
    shipped = None if retrain or save_network is not None else shipped_network()
    if shipped is not None:
        weights, meta = shipped
    else:
        meta = {"recipe": RECIPE, "iterations": iterations, "seed": seed}
        weights = train(iterations, seed)
        if save_network is not None:
            save_weights(weights, Path(save_network), meta)
    ready = time.perf_counter() - start
    folders = [str(install(weights, model, weights_dir(home), TASK_CHANNELS[task]).relative_to(home))
               for task in tasks for model in models[task]]
    record = {"totalsegmentator": version(), "recipe": RECIPE, "network": "shipped" if shipped else "trained",
              "iterations": meta.get("iterations"), "seed": meta.get("seed"), "tasks": tasks,
              "seconds": {"network": round(ready, 1), "total": round(time.perf_counter() - start, 1)},
              "folders": folders, "description": DESCRIPTION}
    atomic_write_json(home / STAMP, record)
