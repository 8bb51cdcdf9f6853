"""Reading any source image with its exact world geometry (RAS+ affine)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.errors import InputError

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def sitk_affine(direction, spacing, origin) -> np.ndarray:
    """RAS+ voxel-to-world affine of an ITK image (ITK world is LPS).

    >>> sitk_affine((1, 0, 0, 0, 1, 0, 0, 0, 1), (2, 2, 3), (10, 20, 30)).tolist()[0] == [-2, 0, 0, -10]
    True
    """
    a = np.eye(4)
    a[:3, :3] = np.asarray(direction, float).reshape(3, 3) * np.asarray(spacing, float)
    a[:3, 3] = origin
    return LPS_TO_RAS @ a


def read_volume(path: str | Path) -> tuple[np.ndarray, np.ndarray, object | None]:
    """(data in i,j,k order, RAS+ affine, NIfTI header or None).

    NIfTI goes through nibabel so its affine of record is kept bit for bit;
    ``.mha``/``.nrrd`` go through SimpleITK with their direction cosines.
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".npy", ".png", ".jpg", ".jpeg", ".tif", ".tiff")):
        raise InputError("arrays need a grid", path, "convert them through --source pattern")
    try:
        if name.endswith((".nii", ".nii.gz")):
            import nibabel as nib

            img = nib.load(str(path))
            return np.asanyarray(img.dataobj), img.affine.copy(), img.header
        import SimpleITK as sitk

        img = sitk.ReadImage(str(path))
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad input file
        raise InputError(f"cannot read the image ({' '.join(str(exc).split())[:120]})", path,
                         "re-download the file or remove it from the input folder") from None
    if img.GetDimension() != 3:
        raise InputError(f"expected a 3D image, got {img.GetDimension()}D", path, "extract one 3D volume")
    data = sitk.GetArrayFromImage(img).transpose(2, 1, 0)
    return data, sitk_affine(img.GetDirection(), img.GetSpacing(), img.GetOrigin()), None


def nifti_grid(path: str | Path) -> tuple[tuple[int, ...], np.ndarray]:
    """Shape and affine of a NIfTI from its header (no voxel read), or a one-line error."""
    import nibabel as nib

    try:
        img = nib.load(str(path))
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad input file
        raise InputError(f"cannot read the image ({' '.join(str(exc).split())[:120]})", path,
                         "re-download the file or remove it from the input folder") from None
    return tuple(img.shape), img.affine.copy()


def corner_world(shape, affine: np.ndarray) -> np.ndarray:
    """World coordinates of the 8 corner voxel centres, (8, 3)."""
    idx = np.array([[i, j, k, 1.0] for i in (0, shape[0] - 1) for j in (0, shape[1] - 1)
                    for k in (0, shape[2] - 1)])
    return (affine @ idx.T).T[:, :3]
