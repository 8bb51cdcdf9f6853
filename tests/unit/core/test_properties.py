"""Property-based tests of the BIDS name parser/builder and the geometry helpers."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from totalseg_bids.core.bids import DERIVATIVE_ENTITIES, DERIVATIVE_SUFFIXES, ENTITY_ORDER, BidsName, label_value
from totalseg_bids.core.errors import InputError
from totalseg_bids.core.geometry import Grid, apply_affine, grid_mismatch, resample_label
from totalseg_bids.core.nifti import load_label, save_mask

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
values = st.text(ALNUM, min_size=1, max_size=6)
RAW_KEYS = [k for k in ENTITY_ORDER if k not in ("sub", "ses") and k not in DERIVATIVE_ENTITIES]
suffixes = st.text(ALNUM, min_size=1, max_size=8).filter(lambda s: s not in DERIVATIVE_SUFFIXES)


@st.composite
def raw_names(draw) -> BidsName:
    """A valid raw image name: sub, optional ses, other entities in BIDS order, a suffix."""
    ents = [("sub", draw(values))]
    if draw(st.booleans()):
        ents.append(("ses", draw(values)))
    keys = draw(st.lists(st.sampled_from(RAW_KEYS), unique=True, max_size=4))
    ents += [(k, draw(values)) for k in keys]
    ents.sort(key=lambda kv: ENTITY_ORDER.index(kv[0]))  # tpl- comes between sub- and ses-
    return BidsName(tuple(ents), draw(suffixes), draw(st.sampled_from([".nii.gz", ".nii", ".json"])))


labels = st.text(ALNUM + "_", min_size=1, max_size=12).filter(lambda s: any(c.isalnum() for c in s))


# ------------------------------------------------------------------ BIDS names
@SETTINGS
@given(raw_names())
def test_raw_name_round_trip(name):
    parsed = BidsName.parse(name.filename)
    assert parsed == name
    assert parsed.filename == name.filename
    assert parsed.source() == parsed and not parsed.is_derivative
    assert BidsName.parse(f"/some/dir/sub-x/anat/{name.filename}") == name  # a path is reduced to its name


@SETTINGS
@given(raw_names(), labels, st.sampled_from(["seg", "dseg", "softseg", "probseg"]),
       st.sampled_from(["neuropoly", "bids"]), st.one_of(st.none(), values))
def test_derivative_round_trip(name, label, kind, naming, desc):
    if naming == "bids":
        desc = None  # BIDS naming refuses desc- on a label (UsageError), by design
    der = name.derivative(label, kind=kind, naming=naming, desc=desc)
    fn = der.filename
    parsed = BidsName.parse(fn)
    assert parsed.filename == fn
    assert parsed.is_derivative and parsed.naming == naming
    assert parsed.source().filename == name.source().filename.replace(name.extension, ".nii.gz")
    assert parsed.subject == name.subject and parsed.session == name.session
    if naming == "neuropoly":
        assert fn.startswith(name.stem + "_")  # the full source name, then derivative entities
        assert parsed.get("label") == label_value(label) and parsed.deriv_suffix == kind
    else:
        expect_suffix = {"seg": "mask", "softseg": "probseg"}.get(kind, kind)
        assert parsed.deriv_suffix == expect_suffix and f"space-{name.suffix}" in fn
        named = parsed.get("desc") if expect_suffix == "dseg" else parsed.get("label")
        assert named == label_value(label)
    assert parsed.sidecar().filename == fn[: -len(".nii.gz")] + ".json"


@SETTINGS
@given(st.text(min_size=0, max_size=30).filter(lambda s: not s.startswith("sub-") and "/" not in s and "\x00" not in s))
def test_junk_is_rejected(junk):
    with pytest.raises(InputError):
        BidsName.parse(junk + ".nii.gz")
    assert BidsName.try_parse(junk + ".nii.gz") is None


@SETTINGS
@given(raw_names(), st.data())
def test_repeated_entity_is_rejected(name, data):
    key, value = data.draw(st.sampled_from(list(name.entities)))
    other = data.draw(values)
    ents = list(name.entities) + [(key, other)]
    fn = "_".join(f"{k}-{v}" for k, v in ents) + f"_{name.suffix}.nii.gz"
    with pytest.raises(InputError):
        BidsName.parse(fn)
    # repeated across the source and derivative parts too
    with pytest.raises(InputError):
        BidsName.parse(f"{name.stem}_{key}-{other}_seg.nii.gz")


@SETTINGS
@given(raw_names(), st.data())
def test_value_outside_the_label_format_is_rejected(name, data):
    bad = data.draw(st.text(ALNUM, max_size=3)) + data.draw(st.sampled_from(list(".- é#@!()[]~"))) + \
        data.draw(st.text(ALNUM, max_size=3))
    i = data.draw(st.integers(0, len(name.entities) - 1))
    ents = list(name.entities)
    ents[i] = (ents[i][0], bad)
    fn = "_".join(f"{k}-{v}" for k, v in ents) + f"_{name.suffix}.nii.gz"
    with pytest.raises(InputError):
        BidsName.parse(fn)


@SETTINGS
@given(raw_names())
def test_missing_sub_is_rejected(name):
    ents = [(k, v) for k, v in name.entities if k != "sub"]
    fn = "_".join([f"{k}-{v}" for k, v in ents] + [name.suffix]) + ".nii.gz"
    with pytest.raises(InputError):
        BidsName.parse(fn)


# ------------------------------------------------------------------ geometry
def signed_permutation(draw) -> np.ndarray:
    perm = draw(st.permutations([0, 1, 2]))
    signs = draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=3, max_size=3))
    m = np.zeros((3, 3))
    for col, (row, sign) in enumerate(zip(perm, signs)):
        m[row, col] = sign
    return m


@st.composite
def label_on_grid(draw, edge: bool = True):
    """A random label and a permuted/flipped/scaled affine; ``edge=False`` keeps a
    zero border (see test_resample_label_keeps_voxels_on_the_array_edge)."""
    shape = tuple(draw(st.lists(st.integers(3, 9), min_size=3, max_size=3)))
    seed = draw(st.integers(0, 2**31 - 1))
    data = np.random.default_rng(seed).integers(0, 4, size=shape).astype(np.uint8)
    if not edge:
        data[[0, -1]] = 0
        data[:, [0, -1]] = 0
        data[:, :, [0, -1]] = 0
    spacing = np.array(draw(st.lists(st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0]), min_size=3, max_size=3)))
    affine = np.eye(4)
    affine[:3, :3] = signed_permutation(draw) * spacing
    affine[:3, 3] = draw(st.lists(st.floats(-200, 200, allow_nan=False), min_size=3, max_size=3))
    return data, affine


def world_oracle(label: np.ndarray, label_affine: np.ndarray, grid: Grid) -> np.ndarray:
    """Expected nearest-neighbour result, computed point by point in world coordinates."""
    idx = np.indices(grid.shape).reshape(3, -1).T.astype(float)
    world = apply_affine(grid.affine, idx)
    src = apply_affine(np.linalg.inv(label_affine), world)
    rounded = np.rint(src)
    assert np.allclose(src, rounded, atol=1e-6)  # the grids are built to share voxel centres
    rounded = rounded.astype(int)
    inside = np.all((rounded >= 0) & (rounded < np.array(label.shape)), axis=1)
    out = np.zeros(len(idx), label.dtype)
    out[inside] = label[tuple(rounded[inside].T)]
    return out.reshape(grid.shape)


@SETTINGS
@given(label_on_grid(edge=True), st.data())
def test_resample_label_moves_voxels_exactly(src, data):
    """Target grid: the source voxels re-ordered (permutation, flips), every k-th voxel
    (coarser by an integer factor) and shifted by whole voxels; compared with the
    world-coordinate oracle."""
    label, affine = src
    index_map = np.eye(4)  # target index -> source index
    step = np.array(data.draw(st.lists(st.integers(1, 2), min_size=3, max_size=3)), float)
    index_map[:3, :3] = signed_permutation(data.draw) * step
    index_map[:3, 3] = data.draw(st.lists(st.integers(-3, 10), min_size=3, max_size=3))
    shape = tuple(data.draw(st.lists(st.integers(2, 10), min_size=3, max_size=3)))
    grid = Grid(shape, affine @ index_map)
    out = resample_label(label, affine, grid)
    assert out.shape == shape and out.dtype == np.uint8
    assert np.array_equal(out, world_oracle(label, affine, grid))


def test_resample_label_keeps_voxels_on_the_array_edge():
    """Found by test_resample_label_moves_voxels_exactly with edge=True: a label touching
    the first slice, a flipped target grid that reaches past it."""
    label = np.zeros((3, 3, 3), np.uint8)
    label[0, 0, :] = [3, 2, 2]
    affine = np.diag([-0.5, -0.5, -1.5, 1.0])
    affine[2, 3] = 2.0
    index_map = np.diag([-1.0, -1.0, -1.0, 1.0])
    index_map[:3, 3] = [0, 0, 6]
    grid = Grid((2, 2, 7), affine @ index_map)
    expected = world_oracle(label, affine, grid)
    assert expected[0, 0].tolist() == [0, 0, 0, 0, 2, 2, 3]
    assert np.array_equal(resample_label(label, affine, grid), expected)


@SETTINGS
@given(label_on_grid())
def test_resample_label_identity_grid(src):
    label, affine = src
    for mode in ("nearest", "label"):
        assert np.array_equal(resample_label(label, affine, Grid(label.shape, affine), mode=mode), label)


@st.composite
def grids(draw):
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=3, max_size=3)))
    affine = np.eye(4)
    affine[:3, :3] = signed_permutation(draw) * np.array(
        draw(st.lists(st.sampled_from([1.0, 1.0005, 2.0]), min_size=3, max_size=3)))
    affine[:3, 3] = draw(st.lists(st.sampled_from([0.0, 0.0005, 1.0]), min_size=3, max_size=3))
    return Grid(shape, affine)


@SETTINGS
@given(grids(), grids())
def test_grid_mismatch_symmetric(a, b):
    assert (grid_mismatch(a, b) is None) == (grid_mismatch(b, a) is None)
    assert grid_mismatch(a, a) is None and grid_mismatch(b, b) is None


@SETTINGS
@given(st.lists(st.floats(-5, 5, allow_nan=False), min_size=12, max_size=12),
       st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=3, max_size=30))
def test_apply_affine_inverse_round_trip(coeffs, flat):
    affine = np.eye(4)
    affine[:3, :4] = np.array(coeffs).reshape(3, 4)
    affine[:3, :3] += 6 * np.eye(3)  # keeps it well conditioned
    assume(np.linalg.cond(affine[:3, :3]) < 1e3)
    n = len(flat) // 3
    assume(n > 0)
    pts = np.array(flat[: 3 * n]).reshape(n, 3)
    back = apply_affine(np.linalg.inv(affine), apply_affine(affine, pts))
    assert np.allclose(back, pts, atol=1e-6 * (1 + np.abs(pts).max()))


@settings(max_examples=25, deadline=None)
@given(label_on_grid(), st.integers(1, 400))
def test_save_mask_load_label_round_trip(src, top):
    import nibabel as nib

    label, affine = src
    data = (label.astype(np.uint16) * top // 3).astype(np.uint16)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sub-01_T2w_label-x_dseg.nii.gz"
        save_mask(data, affine, path)
        vol = load_label(path)
        assert np.array_equal(vol.data, data) and np.allclose(vol.affine, affine, atol=1e-5)
        assert vol.data.dtype == (np.uint8 if data.max() <= 255 else np.uint16)
        img = nib.load(str(path))
        assert np.allclose(img.get_qform(), img.get_sform(), atol=1e-5)
        assert int(img.header["qform_code"]) == int(img.header["sform_code"]) == 1
        assert not list(Path(tmp).glob(".tmp-*"))
