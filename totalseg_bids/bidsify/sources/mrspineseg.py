"""MRSpineSeg: ``MR/Case<N>.nii.gz`` + ``Mask/mask_case<N>.nii.gz`` (sagittal T2w).

The masks' q/s-form differ slightly from the images' (a known property of the
release); each mask is put onto its image grid and the shift is reported.
"""

from __future__ import annotations

import re
from pathlib import Path

from ...core.errors import InputError
from ..plan import Item, Plan, by_number, files_matching, image_target, label_target, padded

#: published label table (SpineParseNet / PaddleSeg)
LABELS = {1: "sacrum", 2: "L5", 3: "L4", 4: "L3", 5: "L2", 6: "L1", 7: "T12", 8: "T11", 9: "T10", 10: "T9",
          11: "L5_S", 12: "L4_L5", 13: "L3_L4", 14: "L2_L3", 15: "L1_L2", 16: "T12_L1", 17: "T11_T12",
          18: "T10_T11", 19: "T9_T10"}
CASE_RE = re.compile(r"^Case(\d+)\.nii(\.gz)?$", re.I)
MASK_RE = re.compile(r"^mask_case(\d+)\.nii(\.gz)?$", re.I)


def plan(root: Path, opts) -> Plan:
    """Items for every case; a mask without its case is refused."""
    images = by_number(files_matching(root, "**/MR/*"), CASE_RE)
    masks = by_number(files_matching(root, "**/Mask/*"), MASK_RE)
    if not images:
        raise InputError("no MR/Case<N>.nii.gz images", root, "pass the folder that holds MR/ and Mask/")
    for n, mask in masks.items():
        if n not in images:
            raise InputError("mask on no image", mask, f"add MR/Case{n}.nii.gz or remove the mask")
    items, people = [], []
    for n, image in sorted(images.items()):
        sub = padded(n)
        t = image_target(sub, "T2w")
        items.append(Item(str(image), t, sidecar={"Modality": "MR"}))
        if n in masks:
            items.append(Item(str(masks[n]), label_target(t, "spine", "dseg", opts.naming), kind="label",
                              classes=LABELS, reference=t, reference_source=str(image)))
            if opts.classes and "sacrum" in opts.classes:
                items.append(Item(str(masks[n]), label_target(t, "sacrum", "seg", opts.naming), kind="label",
                                  reference=t, reference_source=str(image), select=1))
        people.append({"participant_id": f"sub-{sub}", "source_id": image.name.split(".")[0]})
    return Plan(items, people, "MRSpineSeg (BIDS)", "MRSpineSeg lumbar spine T2w data converted to BIDS.",
                {"labels": LABELS})
