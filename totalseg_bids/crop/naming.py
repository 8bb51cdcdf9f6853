"""Names of the cropped files: ``desc-cropped`` (and ``res-<x>`` when resampled) on the image,
its labels named after the *cropped* image so that every reader pairs them unchanged."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..core.bids import IMAGE_DATATYPES, BidsName, Naming, subject_dir
from ..core.errors import InputError


def format_number(value: float) -> str:
    """A number as an alphanumeric BIDS value (``.`` becomes ``p``).

    >>> format_number(2.0), format_number(1.5), format_number(0.75)
    ('2', '1p5', '0p75')
    """
    text = f"{float(value):.3f}".rstrip("0").rstrip(".")
    return text.replace(".", "p").replace("-", "m")


def res_value(spacing: Sequence[float] | None = None, factor: float | None = None,
              shape: Sequence[int] | None = None) -> str | None:
    """The ``res-`` entity value describing a resampling target (None: no resampling).

    >>> res_value(spacing=[2, 2, 2]), res_value(spacing=[1, 1, 2.5])
    ('2mm', '1x1x2p5mm')
    >>> res_value(factor=3), res_value(shape=[64, 64, 32]), res_value()
    ('factor3', '64x64x32', None)
    """
    if spacing is not None:
        values = [format_number(s) for s in spacing]
        return (values[0] if len(set(values)) == 1 else "x".join(values)) + "mm"
    if factor is not None:
        return f"factor{format_number(factor)}"
    if shape is not None:
        return "x".join(str(int(s)) for s in shape)
    return None


def output_image_path(image: Path, out_root: Path, res: str | None) -> Path:
    """``<out_root>/sub-XX/[ses-YY/]<datatype>/<image>`` with ``desc-cropped`` (and ``res-<res>``) added.

    >>> output_image_path(Path("/d/sub-01/ct/sub-01_CT.nii.gz"), Path("/d/derivatives/cropped"), "2mm").as_posix()
    '/d/derivatives/cropped/sub-01/ct/sub-01_res-2mm_desc-cropped_CT.nii.gz'
    """
    name = BidsName.parse(image)
    if name.is_derivative:
        raise InputError("expected an image, got a label file name", image,
                         "list images (or labels in a LABEL config), not labels as images")
    new = name.with_entities(desc="cropped", res=res)
    datatype = image.parent.name if image.parent.name in IMAGE_DATATYPES else "anat"
    return Path(out_root) / subject_dir(new, datatype) / new.filename


def output_label_path(label: Path, cropped_image: Path, naming: Naming) -> Path:
    """The cropped label's path: the derivative of the *cropped* image name.

    >>> str(output_label_path(Path("/d/derivatives/labels/sub-01/anat/sub-01_CT_label-sacrum_seg.nii.gz"),
    ...     Path("/d/derivatives/cropped/sub-01/anat/sub-01_desc-cropped_CT.nii.gz"), "neuropoly"))
    '/d/derivatives/cropped/sub-01/anat/sub-01_desc-cropped_CT_label-sacrum_seg.nii.gz'
    """
    src = BidsName.parse(label)
    img = BidsName.parse(cropped_image)
    kind = {"mask": "seg", "probseg": "softseg"}.get(src.deriv_suffix or "seg", src.deriv_suffix or "seg")
    structure = src.get("label")
    desc = src.get("desc")
    if structure is None and kind == "dseg" and src.naming == "bids":
        structure, desc = desc, None
    new = img.derivative(structure, kind=kind, naming=naming, desc=desc)
    return cropped_image.parent / new.filename
