"""CT-ICH (intracranial hemorrhage, PhysioNet ``ct-ich``): its Kaggle jpg mirror or the NIfTI release.

jpg (``Patients_CT/<patient>/brain/<n>.jpg`` and ``bone/<n>.jpg``): the brain- and bone-window
pictures of each patient's CT become two acquisitions on one grid, ``acq-brain`` and ``acq-bone``
(8-bit windowed values, the window in the sidecar). The masks ``brain/<n>_HGE_Seg.jpg`` exist
only for slices that show hemorrhage: each goes to its slice of one 3D mask ``label-hemorrhage``
on the brain image, every other slice is empty (no hemorrhage), and a patient without any mask
file gets an empty mask; JPEG masks are thresholded at half range (``--mask-threshold``). The
jpgs carry no pixel size (``--spacing``; slices are 5 mm apart) and show slices the radiological
way (``--orientation LPS``).

NIfTI (``ct_scans/<patient>.nii``, ``masks/<patient>.nii``): the CT in CT numbers and its mask.

Both: the per-slice diagnosis (``hemorrhage_diagnosis.csv``, or ``hemorrhage_diagnosis_raw_ct.csv``)
becomes ``derivatives/labels/hemorrhage_diagnosis.tsv`` (one row per slice: the publisher's slice number,
its index k in the BIDS volume, the subtypes, fracture, whether a mask was drawn), and
``patient_demographics.csv`` the participants' age and sex.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from ...core.errors import InputError, UsageError
from ..arrays import check_stack
from ..plan import Item, Plan, image_target, label_target
from .pattern import mask_slots, slice_number

#: the windows the jpgs were saved with (level, width), as the release's README gives them
WINDOWS = {"brain": (40, 120), "bone": (700, 3200)}
JPG_RE = re.compile(r"^(?P<n>[^_.]+)(?P<seg>_HGE_Seg)?\.jpe?g$", re.I)
DIAGNOSIS = ("hemorrhage_diagnosis.csv", "hemorrhage_diagnosis_raw_ct.csv")
README = ("CT-ICH head CTs of traumatic brain injury with intracranial hemorrhage masks, converted to BIDS. "
          "derivatives/labels/hemorrhage_diagnosis.tsv holds the radiologists' per-slice diagnosis.")


def numbered(folder: Path) -> tuple[dict[int, Path], dict[int, Path]]:
    """``({n: <n>.jpg}, {n: <n>_HGE_Seg.jpg})`` of one window folder; a slice name that is not a
    number names its file."""
    pictures: dict[int, Path] = {}
    masks: dict[int, Path] = {}
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        m = JPG_RE.match(path.name)
        if not m or not path.is_file():
            continue
        (masks if m["seg"] else pictures)[slice_number(m["n"], path)] = path
    return pictures, masks


def jpg_items(folder: Path, opts, params: dict) -> tuple[list[Item], list[int]]:
    """The brain and bone images and the hemorrhage mask of one patient folder, and its slice numbers."""
    sub = folder.name
    brain, masks = numbered(folder / "brain")
    bone, stray = numbered(folder / "bone")
    if not brain:
        raise InputError("no brain/<n>.jpg slices", folder, "keep the published Patients_CT/<patient>/brain folders")
    if stray:
        raise InputError("a mask in the bone folder", stray[min(stray)], "keep the masks in brain/")
    extra = {k: v for k, v in bone.items() if k not in brain}
    if extra:
        n = min(extra)
        raise InputError(f"slice {n} has no brain-window picture", extra[n], f"add brain/{n}.jpg or remove the file")
    if bone and set(bone) != set(brain):
        n = min(set(brain) - set(bone))
        raise InputError(f"slice {n} has no bone-window picture", brain[n], f"add bone/{n}.jpg or remove the file")
    items = []
    for window, pictures in (("brain", brain), ("bone", bone)):
        if not pictures:
            continue
        stack = [str(pictures[n]) for n in sorted(pictures)]
        check_stack(stack)
        level, width = WINDOWS[window]
        items.append(Item(stack[0], image_target(sub, "CT", {"acq": window}), extra_sources=tuple(stack[1:]),
                          sidecar={"grid": params, "Modality": "CT", "WindowCenter": level, "WindowWidth": width,
                                   "Description": f"{window}-window picture (8-bit) of the CT"}))
    slots = mask_slots(brain, masks)
    check_stack(slots, [items[0].source])
    present = [s for s in slots if s]
    grid = {**params, "slots": slots, "reference_stack": [items[0].source, *items[0].extra_sources]}
    items.append(Item(present[0] if present else str(folder / "brain"),
                      label_target(items[0].target, "hemorrhage", "seg", opts.naming), kind="label",
                      reference=items[0].target, reference_source=items[0].source,
                      extra_sources=tuple(present[1:]), binarise=True, threshold=opts.mask_threshold,
                      sidecar={"grid": grid, "Description": f"hemorrhage drawn on {len(present)} of {len(slots)} "
                                                            "slices; the other slices are empty"}))
    return items, sorted(brain)


def nifti_items(root: Path, opts) -> tuple[list[Item], dict[str, list[int] | None]]:
    """CT and mask of every ``ct_scans/<patient>.nii``; a mask without its CT is refused."""
    scans = {p.name.split(".")[0]: p for p in sorted((root / "ct_scans").glob("*.nii*"))}
    masks = {p.name.split(".")[0]: p for p in sorted((root / "masks").glob("*.nii*"))}
    for sub, mask in masks.items():
        if sub not in scans:
            raise InputError("mask on no image", mask, f"add ct_scans/{sub}.nii or remove the mask")
    items = []
    for sub, scan in scans.items():
        if not sub.isalnum():
            raise InputError(f"patient {sub!r} is not letters and digits", scan, "keep the published file names")
        target = image_target(sub, "CT")
        items.append(Item(str(scan), target, sidecar={"Modality": "CT"}))
        if sub in masks:
            items.append(Item(str(masks[sub]), label_target(target, "hemorrhage", "seg", opts.naming), kind="label",
                              reference=target, reference_source=str(scan), binarise=True,
                              threshold=opts.mask_threshold))
    return items, dict.fromkeys(scans)


def plan(root: Path, opts) -> Plan:
    """The jpg layout when ``Patients_CT/`` is there, else the NIfTI release."""
    if (root / "Patients_CT").is_dir():
        if opts.spacing is None:
            raise UsageError("the jpgs carry no pixel size", root / "Patients_CT",
                             "pass --spacing X Y 5 (slices are 5 mm apart; the NIfTI release has the pixel size)")
        params = {"spacing": opts.spacing, "orientation": opts.orientation or "LPS",
                  "mask_threshold": opts.mask_threshold, "windows": WINDOWS}
        items, slices = [], {}
        for folder in sorted(p for p in (root / "Patients_CT").iterdir() if p.is_dir()):
            if not folder.name.isalnum():
                raise InputError(f"patient folder {folder.name!r} is not letters and digits", folder,
                                 "keep the published patient numbers")
            found, numbers = jpg_items(folder, opts, params)
            items += found
            slices[folder.name] = numbers
    elif (root / "ct_scans").is_dir():
        items, slices = nifti_items(root, opts)
        params = {"mask_threshold": opts.mask_threshold}
    else:
        raise InputError("no Patients_CT/ (jpg) or ct_scans/ (NIfTI) folder", root,
                         "pass the folder of the download that holds them")
    if not items:
        raise InputError("no patients", root, "pass the folder of the download that holds them")
    masks = {i.reference.split("/")[0][4:]: i for i in items if i.kind == "label"}
    tables = {"hemorrhage_diagnosis.tsv": diagnosis_table(root, slices, masks)}
    return Plan(items, participants(root, slices), "CT-ICH (BIDS)", README, params, tables=tables)


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in csv.DictReader(fh)]


def _column(name: str) -> str:
    """A publisher's column as a BIDS column name.

    >>> _column("Fracture_Yes_No"), _column("No_Hemorrhage"), _column("Age (years)")
    ('fracture', 'no_hemorrhage', 'age')
    """
    name = {"Fracture_Yes_No": "fracture"}.get(name, name)
    return re.sub(r"_+", "_", re.sub(r"\s*\(.*?\)|[^A-Za-z0-9]+", "_", name)).strip("_").lower()


def diagnosis_table(root: Path, slices: dict[str, list[int] | None], masks: dict[str, Item]) -> tuple[str, dict]:
    """``hemorrhage_diagnosis.tsv`` (rows of the converted patients) and its dictionary."""
    path = next((root / n for n in DIAGNOSIS if (root / n).is_file()), None)
    rows = _read_csv(path) if path else []
    subtypes = [c for c in (rows[0] if rows else {}) if c not in ("PatientNumber", "SliceNumber")]
    subjects = {int(s): s for s in slices if s.isdigit()}
    lines = ["\t".join(["participant_id", "slice_number", "slice_index", *map(_column, subtypes), "mask_drawn"])]
    for row in rows:
        sub = subjects.get(int(row["PatientNumber"])) if row.get("PatientNumber", "").isdigit() else None
        if sub is None or not row.get("SliceNumber", "").isdigit():
            continue
        number, numbers = int(row["SliceNumber"]), slices[sub]
        index = numbers.index(number) if numbers and number in numbers else (number - 1 if numbers is None else None)
        slots = masks[sub].sidecar.get("grid", {}).get("slots") if sub in masks else None
        drawn = "n/a" if slots is None or index is None else str(int(bool(slots[index])))
        lines.append("\t".join([f"sub-{sub}", str(number), "n/a" if index is None else str(index),
                                *(row[c] or "n/a" for c in subtypes), drawn]))
    dictionary = {"slice_number": {"Description": "the slice's number in the release (from 1)"},
                  "slice_index": {"Description": "the slice's voxel index k in the BIDS CT (from 0)"},
                  "mask_drawn": {"Description": "1 when the release has a mask file for the slice (jpg layout)"},
                  **{_column(c): {"Description": f"{c} as the release's diagnosis table gives it (1 yes, 0 no)"}
                     for c in subtypes}}
    return "\n".join(lines) + "\n", dictionary


def participants(root: Path, slices: dict) -> list[dict]:
    """One row per converted patient, with age and sex from ``patient_demographics.csv`` when present."""
    path = root / "patient_demographics.csv"
    rows = _read_csv(path) if path.is_file() else []
    by_number = {}
    for row in rows:
        key = next((k for k in row if "patient" in k.lower()), None)
        if key and row[key].isdigit():
            by_number[int(row[key])] = row
    out = []
    for sub in slices:
        row = by_number.get(int(sub)) if sub.isdigit() else None
        person = {"participant_id": f"sub-{sub}", "source_id": sub}
        for key, value in (row or {}).items():
            if re.match(r"age", key, re.I):
                person["age"] = value
            elif re.match(r"gender|sex", key, re.I):
                person["sex"] = {"male": "M", "female": "F"}.get(value.lower(), value)
        out.append(person)
    return out
