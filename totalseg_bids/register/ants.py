"""ANTs registration through antspyx (``pip install totalseg_bids[ants]``).

Same inputs and outputs as the SimpleITK methods: the CT (windowed,
resampled like for SimpleITK) is the moving image, the MRI the fixed one,
Mattes mutual information; rigid/affine give an ITK transform (MRI to CT
points, LPS), SyN a deformation through which the label is warped with
ANTs' ``genericLabel`` interpolation (label-preserving, no new values).
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from ..core.errors import ExternalToolError
from ..core.nifti import Volume
from .constants import REGISTRATION_SEED
from .itk import _registration_moving, focus_mask, to_sitk, transform_record, transform_to_ras
from .options import RegOptions


def _ants():
    # one ITK thread: ANTs' multi-threaded metric sums differ from run to run, and so do its results
    os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "1")
    try:
        import ants
    except ImportError:
        raise ExternalToolError("--method ants-* needs antspyx, not installed", None,
                                "pip install 'totalseg_bids[ants]', or use --method rigid") from None
    return ants


def sitk_to_ants(img):
    """An antspyx image with the geometry of a SimpleITK image (both LPS)."""
    import SimpleITK as sitk

    ants = _ants()
    arr = sitk.GetArrayFromImage(img).transpose(2, 1, 0).astype(np.float32)
    return ants.from_numpy(arr, origin=list(img.GetOrigin()), spacing=list(img.GetSpacing()),
                           direction=np.array(img.GetDirection()).reshape(3, 3))


def register_ants(kind: str, ct: Volume, mri: Volume, label: np.ndarray, opts: RegOptions) -> tuple:
    """(ct_from_mri RAS or a label-warping callable, transform, metric before, after, sidecar keys)."""
    import SimpleITK as sitk


    ants = _ants()
    fixed = sitk_to_ants(to_sitk(mri.data, mri.affine))
    moving = sitk_to_ants(_registration_moving(ct))
    mask = None
    if opts.focus_mm is not None:
        mask = sitk_to_ants(sitk.Cast(focus_mask(label, ct.affine, opts.focus_mm), sitk.sitkFloat32))
    with tempfile.TemporaryDirectory(prefix="totalseg_bids_ants_") as tmp:
        # antspyx starts from the centres of mass unless told otherwise: --init header means the headers
        init = ["Identity"] if opts.init == "header" else _ants_init(ants, fixed, moving, opts.init, tmp)
        try:
            res = ants.registration(fixed, moving, type_of_transform=kind, initial_transform=init,
                                    moving_mask=mask, outprefix=tmp + "/", random_seed=REGISTRATION_SEED)
        except Exception as exc:  # noqa: BLE001 - antspyx raises bare RuntimeErrors/ValueErrors
            raise ExternalToolError(f"ANTs registration failed ({str(exc)[:160]})", mri.path,
                                    "check the pair, or use --method rigid") from None
        before = _mi(ants, fixed, moving, None)
        if kind == "SyN":
            files = list(res["fwdtransforms"])
            lab = sitk_to_ants(to_sitk(label, ct.affine))
            warped = ants.apply_transforms(fixed, lab, files, interpolator="genericLabel")
            data = np.rint(warped.numpy()).astype(np.uint8)
            after = _mi(ants, fixed, res["warpedmovout"], None, warped=True)
            return ((lambda _d, _i: data), None, before, after,
                    {"ANTsPyVersion": ants.__version__, "Metric": "MattesMutualInformation", "Transform": "SyN"})
        tx = sitk.ReadTransform(res["fwdtransforms"][0])
        after = _mi(ants, fixed, res["warpedmovout"], None, warped=True)

    return transform_to_ras(tx), tx, before, after, {
        "ANTsPyVersion": ants.__version__, "Metric": "MattesMutualInformation", "Seed": REGISTRATION_SEED,
        "Transform": transform_record(tx), "TransformDirection": "MRI (fixed) to CT (moving) points, ITK LPS"}


def _ants_init(ants, fixed, moving, init: str, folder: str):
    """A centre-aligning initial transform file (geometry or intensity moments)."""
    if init == "geometry":
        shift = np.array(ants.get_center_of_mass(moving * 0 + 1)) - np.array(ants.get_center_of_mass(fixed * 0 + 1))
    else:
        shift = np.array(ants.get_center_of_mass(moving - moving.min())) - np.array(
            ants.get_center_of_mass(fixed))
    tx = ants.create_ants_transform(transform_type="AffineTransform", dimension=3, translation=list(shift))
    path = f"{folder}/init.mat"  # inside the registration's scratch folder, removed with it
    ants.write_transform(tx, path)
    return [path]


def _mi(ants, fixed, moving, transform, warped: bool = False) -> float | None:
    """Mattes mutual information of fixed vs moving resampled onto the fixed grid (lower is better)."""
    try:
        img = moving if warped else ants.resample_image_to_target(moving, fixed)
        return float(ants.image_mutual_information(fixed, img))
    except Exception:  # noqa: BLE001 - no overlap
        return None
