"""The tiny nnU-Net network behind the local TotalSegmentator weights, trained in one process.

One small ``PlainConvUNet`` (nnU-Net's own architecture, built from the plans
with nnU-Net's ``get_network_from_plans``) learns the four phantom structures
from CT, T1w and T2w patches rendered afresh at every iteration, at the
model's 3 mm spacing, in random poses (rotation, scale, shift), noise levels
and blurs (the 6 mm crop model's input is a 6 mm image brought to 3 mm). The
labels are exact: the anatomy is drawn on each patch's own grid, never
interpolated. Inputs are normalised by nnU-Net's own ``CTNormalization`` and
``ZScoreNormalization`` with the values written into the plans, so training
sees what nnU-Net's predictor feeds the network inside TotalSegmentator.

No dataset is written, planned or preprocessed and no process is started: a
few hundred iterations on 2 CPU cores instead of nnU-Net's whole training
pipeline per task.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..core.atomic import atomic_path
from ..core.nifti import Grid
from .anatomy import STRUCTURES, Anatomy, grid_coordinates, make_affine, render, rotation_matrix
from .hard import bias_field
from .head import CLASS, Head, render_ct

log = logging.getLogger(__name__)

#: Voxel size (mm) the network works at: TotalSegmentator's ``--fast`` resolution.
SPACING = 3.0
#: Sliding-window patch at inference (voxels, nnU-Net's z, y, x): 144 mm, the sacrum with its context.
PATCH = (48, 48, 48)
#: Training patch (voxels, z, y, x): cut from a larger rendered field of view; 144 mm left to right, so
#: that a hip is seen with the midline and its side can be told.
TRAIN_PATCH = (32, 32, 48)
FEATURES = (8, 16, 32, 64)
ITERATIONS = 800
BATCH = 2
LEARNING_RATE = 1e-2
#: nnU-Net's deep supervision (a loss at every decoder stage): the classes separate in fewer iterations.
DEEP_SUPERVISION = True
#: What a network is made by (architecture, data, training); a build by another recipe is redone.
RECIPE = ("tiny_network v3: PlainConvUNet 8-64 features at 3 mm, rendered phantom CT/T1w/T2w pelvis patches, "
          "head CT and full-body CT patches")
#: Output channels of the trained network: background, the pelvis structures, then the head's skull (which the
#: head workflows crop to).
CHANNELS = ("background", *STRUCTURES, "skull")
#: CT intensity window and scale for nnU-Net's ``CTNormalization`` (clip, then z-score).
CT_INTENSITIES = {"mean": 0.0, "std": 500.0, "median": 0.0, "min": -1024.0, "max": 3071.0,
                  "percentile_00_5": -1000.0, "percentile_99_5": 1500.0}
#: Points (anatomy mm) training patches are centred near: each structure, and the pelvis as a whole.
FOCI = ((0.0, -30.0, -10.0), (0.0, -22.0, 52.0), (-58.0, -18.0, 2.0), (58.0, -18.0, 2.0), (0.0, -20.0, 10.0))
FOCUS_MM = 15.0
#: The rendered field of view a patch is cut from is up to this many patches per axis (z-scoring sees it whole).
FOV_GROWTH = 1.6
#: Share of training patches per kind: pelvis CT, T1w, T2w, a head CT (with its neck), and a full-body CT
#: (pelvis, trunk, neck and head, as the gland workflow's export: the skull is found above, nothing below).
MODALITY_MIX = {"CT": 0.35, "T1w": 0.175, "T2w": 0.175, "headCT": 0.15, "bodyCT": 0.15}
#: Full-body CT: the head's centre above the pelvis, the neck joining the trunk here (world mm, z).
BODY_HEAD_Z, BODY_NECK_Z = 380.0, 200.0
#: Where head patches are centred, relative to the head's centre (head mm, low and high corner): the
#: skull, the face and the neck below it.
HEAD_FOCUS = ((-70.0, -80.0, -120.0), (70.0, 80.0, 100.0))
#: What nnU-Net calls the normalisation of each input kind.
NORMALIZATION = {"CT": "CTNormalization", "MRI": "ZScoreNormalization"}


def architecture() -> dict:
    """The plans' ``architecture`` entry: nnU-Net's PlainConvUNet, four stages, 8 to 64 features."""
    n = len(FEATURES)
    return {
        "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
        "arch_kwargs": {
            "n_stages": n, "features_per_stage": list(FEATURES), "conv_op": "torch.nn.modules.conv.Conv3d",
            "kernel_sizes": [[3, 3, 3]] * n, "strides": [[1, 1, 1]] + [[2, 2, 2]] * (n - 1),
            "n_conv_per_stage": [2] * n, "n_conv_per_stage_decoder": [2] * (n - 1), "conv_bias": True,
            "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
            "norm_op_kwargs": {"eps": 1e-05, "affine": True}, "dropout_op": None, "dropout_op_kwargs": None,
            "nonlin": "torch.nn.LeakyReLU", "nonlin_kwargs": {"inplace": True}},
        "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
    }


def _resampling(order: int, is_seg: bool) -> dict:
    return {"is_seg": is_seg, "order": order, "order_z": 0, "force_separate_z": None}


def plans(dataset_name: str, channel: str) -> dict:
    """An nnU-Net ``plans.json`` for the network, for a ``CT`` or ``MRI`` input channel.

    >>> p = plans("Dataset297_x", "CT")
    >>> p["configurations"]["3d_fullres"]["normalization_schemes"], p["configurations"]["3d_fullres"]["spacing"]
    (['CTNormalization'], [3.0, 3.0, 3.0])
    """
    config = {
        "data_identifier": "nnUNetPlans_3d_fullres", "preprocessor_name": "DefaultPreprocessor", "batch_size": BATCH,
        "patch_size": list(PATCH), "median_image_size_in_voxels": [float(n) for n in PATCH],
        "spacing": [SPACING] * 3, "normalization_schemes": [NORMALIZATION[channel]], "use_mask_for_norm": [False],
        "resampling_fn_data": "resample_data_or_seg_to_shape", "resampling_fn_data_kwargs": _resampling(3, False),
        "resampling_fn_seg": "resample_data_or_seg_to_shape", "resampling_fn_seg_kwargs": _resampling(1, True),
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities_kwargs": _resampling(1, False),
        "architecture": architecture(), "batch_dice": False,
    }
    return {
        "dataset_name": dataset_name, "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": [SPACING] * 3,
        "original_median_shape_after_transp": list(PATCH), "image_reader_writer": "SimpleITKIO",
        "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2], "configurations": {"3d_fullres": config},
        "experiment_planner_used": "ExperimentPlanner", "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {"0": dict(CT_INTENSITIES)},
    }


def channel_of(modality: str) -> str:
    """The input channel kind of a phantom modality.

    >>> channel_of("CT"), channel_of("headCT"), channel_of("T2w")
    ('CT', 'CT', 'MRI')
    """
    return "CT" if modality in ("CT", "headCT", "bodyCT") else "MRI"


def normalise(image: np.ndarray, modality: str) -> np.ndarray:
    """``image`` normalised exactly as nnU-Net's predictor does with :func:`plans`."""
    from nnunetv2.preprocessing.normalization.default_normalization_schemes import CTNormalization, ZScoreNormalization

    scheme = CTNormalization if channel_of(modality) == "CT" else ZScoreNormalization
    return scheme(use_mask_for_norm=False, intensityproperties=dict(CT_INTENSITIES)).run(image.astype(np.float32))


def random_pose(rng: np.random.Generator, max_deg: float = 25.0) -> np.ndarray:
    """A rotation of up to ``max_deg`` about a random axis through the pelvis (4x4, anatomy mm)."""
    pose = np.eye(4)
    r = rotation_matrix(rng.normal(size=3), rng.uniform(-max_deg, max_deg))
    centre = np.array([0.0, -20.0, 0.0])
    pose[:3, :3] = r
    pose[:3, 3] = centre - r @ centre
    return pose


def _degrade(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The blur of TotalSegmentator's resampling: a 6 mm image brought back to 3 mm, or a little smoothing."""
    from scipy import ndimage

    if rng.uniform() < 0.3:
        small = ndimage.zoom(image, 0.5, order=1)
        return ndimage.zoom(small, np.array(image.shape) / np.array(small.shape), order=3)
    return ndimage.gaussian_filter(image, rng.uniform(0.0, 0.8, size=3))


def _cut(image: np.ndarray, labels: np.ndarray, fov: Sequence[int], patch: Sequence[int],
         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random ``patch`` (x, y, z) of a rendered field of view, returned in nnU-Net's (z, y, x) order."""
    start = [int(rng.integers(0, n - p + 1)) for n, p in zip(fov, patch)]
    cut = tuple(slice(s, s + p) for s, p in zip(start, patch))
    return image[cut].transpose(2, 1, 0).copy(), labels[cut].transpose(2, 1, 0).astype(np.int64)


def training_patch(rng: np.random.Generator, modality: str,
                   patch: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One normalised image patch and its structure labels (0 background, i+1 for STRUCTURES[i]),
    axes in nnU-Net's (z, y, x) order of a RAS image.

    A field of view of 1 to 2 patches per axis is rendered and normalised as a whole (z-scoring
    depends on what the image holds), then a patch is cut from it.
    """
    patch = tuple(patch or TRAIN_PATCH)[::-1]  # rendered on x, y, z axes
    if modality == "headCT":
        return head_patch(rng, patch)
    if modality == "bodyCT":
        return body_patch(rng, patch)
    anatomy = Anatomy(scale=float(rng.uniform(0.88, 1.12)), shift=rng.uniform(-6, 6, size=3),
                      pose=random_pose(rng))
    fov = tuple(int(n * rng.uniform(1.0, FOV_GROWTH)) for n in patch)
    centre = np.asarray(FOCI[int(rng.integers(len(FOCI)))]) + rng.normal(0.0, FOCUS_MM, size=3)
    grid = Grid(fov, make_affine(np.eye(3), [SPACING] * 3, fov, centre))
    image, labels = render(anatomy, grid, modality, rng)
    if modality != "CT":
        image = image * bias_field(fov, float(rng.uniform(0.0, 0.6)))
    image = normalise(_degrade(image, rng), modality)
    return _cut(image, labels, fov, patch, rng)


def head_patch(rng: np.random.Generator, patch: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """A normalised head CT patch (x, y, z ``patch``; returned z, y, x) and its skull labels, from a
    head of random size, with or without a neck and a hemorrhage, on a grid tilted up to 15 degrees."""
    head = Head(centre=rng.uniform(-10, 10, size=3), scale=float(rng.uniform(0.9, 1.1)),
                neck_to=float(rng.uniform(-200, -80)) if rng.uniform() < 0.7 else None)
    if rng.uniform() < 0.3:
        head.hemorrhage = (tuple(rng.uniform(-30, 30, size=3)), tuple(rng.uniform(9, 16, size=3)))
    fov = tuple(int(n * rng.uniform(1.0, FOV_GROWTH)) for n in patch)
    centre = head.centre + rng.uniform(*HEAD_FOCUS) * head.scale
    dirs = rotation_matrix(rng.normal(size=3), rng.uniform(-15, 15))
    grid = Grid(fov, make_affine(dirs, [SPACING] * 3, fov, centre))
    classes = head.classes_xyz(*grid_coordinates(grid))
    image = normalise(_degrade(render_ct(classes, rng).astype(np.float32), rng), "CT")
    labels = np.where(classes == CLASS["skull"], CHANNELS.index("skull"), 0)
    return _cut(image, labels, fov, patch, rng)


def body_patch(rng: np.random.Generator, patch: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """A normalised full-body CT patch (x, y, z ``patch``; returned z, y, x) anywhere from the pelvis to
    the top of the head, with the pelvis structures and the skull labelled."""
    anatomy = Anatomy(scale=float(rng.uniform(0.9, 1.1)), shift=rng.uniform(-6, 6, size=3),
                      pose=random_pose(rng, 8.0))
    head = Head(centre=np.array([*anatomy.shift[:2], BODY_HEAD_Z + rng.uniform(-20, 20)]),
                scale=float(rng.uniform(0.92, 1.08)))
    head.neck_to = (BODY_NECK_Z - head.centre[2]) / head.scale
    fov = tuple(int(n * rng.uniform(1.0, FOV_GROWTH)) for n in patch)
    centre = np.array([rng.normal(0, 15), rng.normal(-10, 15), rng.uniform(-40, BODY_HEAD_Z + 100)])
    grid = Grid(fov, make_affine(np.eye(3), [SPACING] * 3, fov, centre))
    pelvis, structures = render(anatomy, grid, "CT", rng)
    classes = head.classes_xyz(*grid_coordinates(grid))
    image = np.where(classes > 0, render_ct(classes, rng), pelvis).astype(np.float32)
    labels = np.where(classes == CLASS["skull"], CHANNELS.index("skull"), np.where(classes > 0, 0, structures))
    image = normalise(_degrade(image, rng), "CT")
    return _cut(image, labels, fov, patch, rng)


def _batch(rng: np.random.Generator, mix: Mapping[str, float], size: int):
    import torch

    names = list(mix)
    picks = rng.choice(len(names), size=size, p=np.asarray(list(mix.values())) / sum(mix.values()))
    images, labels = zip(*(training_patch(rng, names[i]) for i in picks))
    x = torch.from_numpy(np.stack(images)[:, None]).contiguous(memory_format=torch.channels_last_3d)
    return x, torch.from_numpy(np.stack(labels)[:, None])


def build_network(deep_supervision: bool = False):
    """The untrained network of :func:`architecture` (nnU-Net's builder), in channels-last memory
    order, which makes 3D convolutions several times faster on a CPU. With ``deep_supervision``
    it also outputs every decoder stage (the same weights: nnU-Net's predictor builds it without)."""
    import torch
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    arch = architecture()
    net = get_network_from_plans(arch["network_class_name"], arch["arch_kwargs"], arch["_kw_requires_import"],
                                 1, len(CHANNELS), deep_supervision=deep_supervision)
    return net.to(memory_format=torch.channels_last_3d)


def _loss():
    """nnU-Net's Dice + cross-entropy, over the decoder stages as nnU-Net weights them (halving per
    stage, the coarsest left out) when :data:`DEEP_SUPERVISION` is on."""
    from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
    from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
    from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss

    loss = DC_and_CE_loss({"batch_dice": False, "smooth": 1e-5, "do_bg": False, "ddp": False}, {},
                          weight_ce=1, weight_dice=1, dice_class=MemoryEfficientSoftDiceLoss)
    if not DEEP_SUPERVISION:
        return loss
    weights = np.array([1 / 2 ** i for i in range(len(FEATURES) - 1)])
    weights[-1] = 0.0
    return DeepSupervisionWrapper(loss, weights / weights.sum())


def _targets(y, n_outputs: int):
    """The labels at every decoder stage's resolution (every 2^i-th voxel), finest first."""
    if not DEEP_SUPERVISION:
        return y
    return [y[..., ::2 ** i, ::2 ** i, ::2 ** i] for i in range(n_outputs)]


def train(iterations: int = ITERATIONS, seed: int = 0, mix: Mapping[str, float] = MODALITY_MIX) -> dict:
    """Train the network on rendered phantom patches; returns its weights (a state dict) on the CPU.

    nnU-Net's Dice + cross-entropy loss, Adam with a one-cycle learning rate; seeded, so a build
    repeats on the same machine.
    """
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = build_network(DEEP_SUPERVISION)
    loss_fn = _loss()
    optimizer = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=LEARNING_RATE, total_steps=iterations,
                                                   pct_start=0.15)
    start = time.perf_counter()
    for step in range(iterations):
        x, y = _batch(rng, mix, BATCH)
        optimizer.zero_grad(set_to_none=True)
        out = net(x)
        loss = loss_fn(out, _targets(y, len(out) if DEEP_SUPERVISION else 1))
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 25 == 0 or step == iterations - 1:
            log.info("tiny network: iteration %d/%d, loss %.3f, %.0f s", step + 1, iterations, float(loss.detach()),
                     time.perf_counter() - start)
    return {k: v.detach().contiguous() for k, v in net.state_dict().items()}


def save_weights(weights: Mapping, path: Path, meta: Mapping) -> Path:
    """Write the network's weights as a compressed NumPy archive of float16 arrays (no pickle),
    with ``meta`` (the recipe, iterations, seed) as JSON. nnU-Net's U-Net lists most tensors
    under two or three names (``conv`` and ``all_modules.0``, the decoder's ``encoder``):
    each is stored once, the other names as aliases."""
    import hashlib

    arrays: dict[str, np.ndarray] = {}
    aliases: dict[str, str] = {}
    seen: dict[str, str] = {}
    for key, value in weights.items():
        array = value.detach().cpu().numpy().astype(np.float16)
        digest = hashlib.sha1(array.tobytes() + str(array.shape).encode()).hexdigest()
        if digest in seen:
            aliases[key] = seen[digest]
        else:
            seen[digest] = key
            arrays[key] = array
    record = {**dict(meta), "aliases": aliases}
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, __meta__=np.array(json.dumps(record)), **arrays)
    return path


def load_weights(path: Path) -> tuple[dict, dict]:
    """The weights (float32 tensors, every name) and the metadata :func:`save_weights` wrote."""
    import torch

    with np.load(path, allow_pickle=False) as archive:
        meta = json.loads(str(archive["__meta__"]))
        weights = {key: torch.from_numpy(archive[key].astype(np.float32)) for key in archive.files
                   if key != "__meta__"}
    for key, original in meta.pop("aliases", {}).items():
        weights[key] = weights[original].clone()
    return weights, meta
