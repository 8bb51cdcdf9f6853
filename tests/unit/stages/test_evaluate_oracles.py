"""evaluate's figures against the implementations users trust, on the same files.

Dice and IoU: nnU-Net's own ``compute_metrics`` (nnunetv2.evaluation.evaluate_predictions), to 1e-6.
HD95, ASSD and NSD: MONAI's ``compute_hausdorff_distance(percentile=95)``,
``compute_average_surface_distance(symmetric=True)`` and ``compute_surface_dice`` given the
voxel spacing, on anisotropic and oblique grids, a class touching the array edge, and empty
classes. The agreement asked for is "within a voxel"; the tests hold it to 1e-4 mm, since both
sides compute the same definition (MONAI in float32).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from support.evaluate import grid_affine, label_pair, write_pair

from totalseg_bids.evaluate import EvaluateOptions, evaluate_pair, surface_distances, surface_metrics

monai_metrics = pytest.importorskip("monai.metrics")
torch = pytest.importorskip("torch")

TOL_MM = 1e-4


def monai_figures(pred: np.ndarray, ref: np.ndarray, spacing, tolerance_mm: float) -> dict[str, float]:
    """HD95, ASSD and NSD of two boolean masks as a MONAI user computes them."""
    p, r = torch.as_tensor(pred[None, None]), torch.as_tensor(ref[None, None])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MONAI warns on empty masks
        hd = monai_metrics.compute_hausdorff_distance(p, r, include_background=True, percentile=95,
                                                      spacing=[float(s) for s in spacing])
        asd = monai_metrics.compute_average_surface_distance(p, r, include_background=True, symmetric=True,
                                                             spacing=[float(s) for s in spacing])
        nsd = monai_metrics.compute_surface_dice(p, r, [tolerance_mm], include_background=True,
                                                 spacing=[float(s) for s in spacing])
    return {"hd95_mm": hd.item(), "assd_mm": asd.item(), "nsd": nsd.item()}


def _close(ours: float, theirs: float, tol: float) -> bool:
    if math.isnan(theirs) or math.isinf(theirs):
        return (math.isnan(ours) and math.isnan(theirs)) or ours == theirs
    return abs(ours - theirs) <= tol


@pytest.mark.parametrize("grid", ["anisotropic", "oblique"])
def test_surface_metrics_equal_monai(tmp_path, grid):
    """Every class of files on an anisotropic and an oblique grid: the same HD95/ASSD/NSD as MONAI
    (class 1: imperfect overlap, a stray blob, the array edge; 2: missed; 3: hallucinated)."""
    import nibabel as nib

    pred, ref = label_pair(seed=3)
    affine = grid_affine(grid)
    p, r = write_pair(tmp_path, "case_001.nii.gz", pred, ref, affine)
    ours = evaluate_pair(p, r, EvaluateOptions(tolerance_mm=2.0))["labels"]
    spacing = nib.load(r).header.get_zooms()[:3]
    for value, name in ((1, "1"), (2, "2"), (3, "3")):
        theirs = monai_figures(pred == value, ref == value, spacing, 2.0)
        for key in ("assd_mm", "nsd") if value != 1 else ("hd95_mm", "assd_mm", "nsd"):
            assert _close(ours[name][key], theirs[key], TOL_MM), (grid, value, key, ours[name][key], theirs[key])
    assert 0 < ours["1"]["nsd"] < 1 and ours["1"]["hd95_mm"] > 2.0  # a case that measures something
    # one mask empty: MONAI's ASSD is inf and its NSD 0, like ours; its HD95 is NaN (a percentile of
    # infinities in torch), ours inf, as DeepMind's surface-distance returns
    assert ours["2"]["hd95_mm"] == ours["3"]["hd95_mm"] == math.inf
    assert ours["2"]["flags"] == ["empty_pred"] and ours["3"]["flags"] == ["empty_ref"]


def test_both_empty_is_nan_as_in_monai():
    empty = np.zeros((6, 6, 6), bool)
    theirs = monai_figures(empty, empty, (1.0, 1.0, 2.0), 2.0)
    ours = surface_metrics(*surface_distances(empty, empty, np.diag([1.0, 1.0, 2.0])), 2.0)
    assert all(math.isnan(ours[k]) and math.isnan(theirs[k]) for k in ("hd95_mm", "assd_mm", "nsd"))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_shapes_equal_monai(seed):
    """Irregular masks (random blobs, holes, thin parts) at three tolerances."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    spacing = tuple(rng.uniform(0.5, 3.0, 3))
    base = ndimage.binary_opening(rng.random((30, 26, 18)) < 0.55, iterations=1)
    ref = ndimage.binary_closing(base, iterations=2)
    pred = ndimage.binary_dilation(ref, iterations=1) ^ (rng.random(ref.shape) < 0.05)
    d = surface_distances(pred, ref, np.diag(spacing))
    for tol in (0.0, 1.0, 3.0):
        ours, theirs = surface_metrics(*d, tol), monai_figures(pred, ref, spacing, tol)
        for key in ours:
            assert abs(ours[key] - theirs[key]) <= TOL_MM, (seed, tol, key, ours[key], theirs[key])


def test_sheared_grid_measures_world_distances():
    """A grid whose axes are not orthogonal (no spacing vector describes it): every distance
    is the world distance to the nearest surface voxel centre, as a brute-force search finds it."""
    from scipy.spatial.distance import cdist

    from totalseg_bids.evaluate import surface_voxels

    pred, ref = label_pair(seed=5, shape=(20, 18, 12))
    pred, ref = pred == 1, ref == 1
    linear = np.array([[0.9, 0.3, 0.0], [0.0, 1.2, 0.4], [0.2, 0.0, 2.0]])
    d_pr, d_rp = surface_distances(pred, ref, linear)
    wp, wr = (np.argwhere(surface_voxels(m)) @ linear.T for m in (pred, ref))
    full = cdist(wp, wr)
    assert np.allclose(np.sort(d_pr), np.sort(full.min(axis=1)))
    assert np.allclose(np.sort(d_rp), np.sort(full.min(axis=0)))


@pytest.mark.parametrize("grid", ["anisotropic", "oblique"])
def test_dice_iou_equal_nnunet_compute_metrics(tmp_path, grid):
    """nnU-Net's compute_metrics on the same files: Dice and IoU to 1e-6 and the same voxel counts
    (volumes); where both masks are empty nnU-Net says NaN and this stage 1 (documented)."""
    from nnunetv2.evaluation.evaluate_predictions import compute_metrics
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    pred, ref = label_pair(seed=7)
    affine = grid_affine(grid)
    p, r = write_pair(tmp_path, "case_002.nii.gz", pred, ref, affine)
    theirs = compute_metrics(str(r), str(p), SimpleITKIO(), [1, 2, 3, 4])["metrics"]
    ours = evaluate_pair(p, r, EvaluateOptions(labels=["1", "2", "3", "4"]))["labels"]
    voxel_ml = abs(np.linalg.det(affine[:3, :3])) / 1000
    for value in (1, 2, 3):
        mine, nn = ours[str(value)], theirs[value]
        assert abs(mine["dice"] - nn["Dice"]) <= 1e-6 and abs(mine["iou"] - nn["IoU"]) <= 1e-6, (value, mine, nn)
        assert round(mine["pred_ml"] / voxel_ml) == nn["n_pred"] and round(mine["ref_ml"] / voxel_ml) == nn["n_ref"]
    assert math.isnan(theirs[4]["Dice"]) and ours["4"]["dice"] == 1.0 and ours["4"]["flags"] == ["both_empty"]


def shipped_template(name: str = "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz"):
    """A template file nilearn ships (found without importing nilearn, which costs seconds)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("nilearn is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / name
    if not path.is_file():
        pytest.skip(f"nilearn ships no {name}")
    return path


def test_shipped_template_masks_equal_both_oracles(tmp_path):
    """Real anatomy: nilearn's MNI152 grey-matter probability map (shipped with the package) cut at
    0.5 as the reference and at 0.25 as the prediction (a slab of it, to stay fast), written as labels;
    both oracles agree."""
    import nibabel as nib
    from nnunetv2.evaluation.evaluate_predictions import compute_metrics
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    from totalseg_bids.core.nifti import save_mask

    img = nib.load(shipped_template()).slicer[60:120, 80:140, 80:120]  # a slab through both hemispheres
    prob = np.asarray(img.dataobj, np.float32) / 255
    ref_mask, pred_mask = prob > 0.5, prob > 0.25  # stored as 0..255
    r = save_mask(ref_mask, img.affine, tmp_path / "ref" / "mni.nii.gz")
    p = save_mask(pred_mask, img.affine, tmp_path / "pred" / "mni.nii.gz")
    ours = evaluate_pair(p, r)["labels"]["1"]
    nn = compute_metrics(str(r), str(p), SimpleITKIO(), [1])["metrics"][1]
    assert abs(ours["dice"] - nn["Dice"]) <= 1e-6 and 0.3 < ours["dice"] < 0.99
    theirs = monai_figures(pred_mask, ref_mask, img.header.get_zooms()[:3], 1.0)
    for key, value in surface_metrics(*surface_distances(pred_mask, ref_mask, img.affine), 1.0).items():
        assert abs(value - theirs[key]) <= TOL_MM, (key, value, theirs[key])
