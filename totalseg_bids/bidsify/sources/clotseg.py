"""The clot workflow's arrays (CT-ClotSeg): ``DL_vol_files/binary/CS<n>_CTA_Binary.npy`` and
``CS<n>_NCCT_Reg_Binary.npy`` (a CT angiography and the plain CT registered onto it) with
``DL_seg_files/binary/CS<n>_seg_corrected_binary.npy`` (the clot).

Each case becomes ``sub-CS<n>``: the CTA as ``ce-contrast_CT``, the registered plain CT as
``CT`` on the same grid (the two channels of a clot case) and the clot as ``label-clot`` on the
CTA (0/1, ``--mask-threshold``). The arrays carry no geometry: ``--spacing`` is required,
``--orientation`` (default RAS) says where the array axes point. Every case needs both channels
of one shape; ``totalseg_bids.export --npy-names clot`` writes the same names back.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ...core.errors import GeometryError, InputError, UsageError
from ..plan import Item, Plan, image_target, label_target

VOLUME_RE = re.compile(r"^(?P<case>[A-Za-z0-9]+)_(?P<channel>CTA|NCCT_Reg|NCCT)_Binary\.npy$")
SEG_RE = re.compile(r"^(?P<case>[A-Za-z0-9]+)_seg_corrected_binary\.npy$")
#: channel -> (BIDS entities, description), in channel order
CHANNELS = {"CTA": ({"ce": "contrast"}, "CT angiography (CTA)"),
            "NCCT_Reg": ({}, "non-contrast CT registered onto the CTA (NCCT_Reg)")}
README = "CT-ClotSeg clot cases (CT angiography and registered non-contrast CT) converted to BIDS."


def _arrays(folder: Path, rx: re.Pattern) -> dict[tuple[str, str], Path]:
    """``{(case, channel): path}`` of the ``.npy`` files of ``folder`` whose name ``rx`` matches."""
    out = {}
    for path in sorted(folder.glob("*.npy")) if folder.is_dir() else []:
        m = rx.match(path.name)
        if m:
            channel = m.groupdict().get("channel") or "seg"
            out[(m["case"], "NCCT_Reg" if channel == "NCCT" else channel)] = path
    return out


def _shape(path: Path) -> tuple[int, ...]:
    try:
        return tuple(np.load(path, mmap_mode="r", allow_pickle=False).shape)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the array ({' '.join(str(exc).split())[:100]})", path,
                         "re-download the file or remove it from the input folder") from None


def check_case(case: str, files: dict[str, Path]) -> None:
    """Both channels present, 3D and of one shape, the clot too: else one line naming the file."""
    first = files.get("CTA") or files.get("NCCT_Reg") or files["seg"]
    for channel in CHANNELS:
        if channel not in files:
            raise InputError(f"case {case} has no {channel} channel (DL_vol_files/binary/{case}_{channel}_Binary.npy)",
                             first, "add the missing channel or take the case out of the download folder")
    shape = _shape(files["CTA"])
    if len(shape) != 3:
        raise InputError(f"expected a 3D array, got shape {shape}", files["CTA"], "save one volume per file")
    for name in ("NCCT_Reg", "seg"):
        if name in files and _shape(files[name]) != shape:
            raise GeometryError(f"shape {_shape(files[name])} differs from the CTA's {shape}", files[name],
                                "give every array of a case the CTA's grid")


def plan(root: Path, opts) -> Plan:
    volumes = _arrays(root / "DL_vol_files" / "binary", VOLUME_RE)
    segs = _arrays(root / "DL_seg_files" / "binary", SEG_RE)
    if not volumes:
        raise InputError("no DL_vol_files/binary/CS<n>_CTA_Binary.npy", root,
                         "pass the folder that holds DL_vol_files/ and DL_seg_files/")
    cases: dict[str, dict[str, Path]] = {}
    for (case, channel), path in {**volumes, **segs}.items():
        cases.setdefault(case, {})[channel] = path
    if opts.spacing is None:
        raise UsageError("the arrays carry no voxel size", root / "DL_vol_files",
                         "pass --spacing X Y Z (and --orientation if the axes are not RAS)")
    params = {"spacing": opts.spacing, "orientation": opts.orientation or "RAS", "mask_threshold": opts.mask_threshold}
    items, people = [], []
    for case, files in sorted(cases.items()):
        if "CTA" not in files and "NCCT_Reg" not in files:
            raise InputError("mask on no image", files["seg"], f"add DL_vol_files/binary/{case}_CTA_Binary.npy")
        check_case(case, files)
        targets = {}
        for channel, (entities, description) in CHANNELS.items():
            targets[channel] = image_target(case, "CT", entities)
            items.append(Item(str(files[channel]), targets[channel],
                              sidecar={"grid": params, "Modality": "CT", "Description": description}))
        if "seg" in files:
            items.append(Item(str(files["seg"]), label_target(targets["CTA"], "clot", "seg", opts.naming),
                              kind="label", reference=targets["CTA"], reference_source=str(files["CTA"]),
                              binarise=True, threshold=opts.mask_threshold, sidecar={"grid": params}))
        people.append({"participant_id": f"sub-{case}", "source_id": case})
    return Plan(items, people, "CT-ClotSeg (BIDS)", README, params)
