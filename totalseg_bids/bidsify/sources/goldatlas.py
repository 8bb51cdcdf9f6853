"""Gold Atlas male pelvis: ``<site>_<nn>_P/`` folders of mixed DICOM files.

Series are told apart by SeriesInstanceUID and named from Modality and
SeriesDescription (CT, the CT deformed to MR as ``acq-deformed``, MR T1 and
T2); ``--config`` rules come first, as for ``--source dicom``. Every ROI of
each RTSTRUCT becomes a binary mask on the series its contours reference.
"""

from __future__ import annotations

import re
from pathlib import Path

from ...core.errors import InputError
from ..rtstruct import label_name, read_structure_set
from .dicom import match_rule, rules_from, scan_series
from ..plan import Item, Plan, image_target, label_target

FOLDER_RE = re.compile(r"^(\d+)_(\d+)_P$")
RULES = [
    *[{"suffix": "CT", "custom_entities": "acq-deformed", "criteria": {"Modality": "CT", "SeriesDescription": d}}
      for d in ("*[Tt]o[Mm][Rr]*", "*[Dd]eform*")],
    {"suffix": "CT", "criteria": {"Modality": "CT"}},
    {"suffix": "T1w", "criteria": {"Modality": "MR", "SeriesDescription": "*[Tt]1*"}},
    {"suffix": "T2w", "criteria": {"Modality": "MR", "SeriesDescription": "*[Tt]2*"}},
]


def subject_id(folder: str) -> str:
    """BIDS subject label of a patient folder (site, then two-digit number).

    >>> subject_id("1_01_P"), subject_id("3_19_P")
    ('101', '319')
    """
    m = FOLDER_RE.match(folder)
    if not m:
        raise InputError(f"folder name {folder!r} is not a Gold Atlas patient folder (<site>_<nn>_P, e.g. 1_01_P)",
                         folder, "keep the published folder names or move other folders out of --in")
    return f"{int(m.group(1))}{int(m.group(2)):02d}"


def referenced_series(ds) -> str | None:
    """The SeriesInstanceUID an RTSTRUCT's contours were drawn on."""
    for frame in ds.get("ReferencedFrameOfReferenceSequence", []):
        for study in frame.get("RTReferencedStudySequence", []):
            for series in study.get("RTReferencedSeriesSequence", []):
                return str(series.SeriesInstanceUID)
    return None


def _structure_items(sets: list[dict], images: dict[str, Item], opts) -> list[Item]:
    """One mask item per ROI of every RTSTRUCT (``sets``: scanned RTSTRUCT series)."""
    files = sorted(f for entry in sets for f in entry["files"])
    items = []
    for path in files:
        ds = read_structure_set(path)
        ref = images.get(referenced_series(ds) or "")
        if ref is None:
            raise InputError("mask on no image: the RTSTRUCT references a series that is not in its folder", path,
                             "put the RTSTRUCT beside the DICOM series its contours were drawn on")
        # several structure sets (observers, consensus): the set's label tells their masks apart
        suffix = "" if len(files) == 1 else f" {ds.get('StructureSetLabel', path.stem)}"
        rois = {label_name(f"{r.ROIName}{suffix}"): str(r.ROIName) for r in ds.get("StructureSetROISequence", [])}
        missing = sorted(set(opts.classes or ()) - set(rois))
        if missing:
            raise InputError(f"no ROI {', '.join(missing)} in the structure set", path,
                             f"choose --classes among {', '.join(sorted(rois))}")
        for label, name in rois.items():
            if opts.classes and label not in opts.classes:
                continue
            items.append(Item(str(path), label_target(ref.target, label, "seg", opts.naming), kind="rtstruct",
                              reference=ref.target, reference_source=ref.source,
                              sidecar={"ROIName": name, "StructureSetLabel": str(ds.get("StructureSetLabel", ""))}))
    return items


def plan(root: Path, opts) -> Plan:
    """Images per series, masks per ROI, one subject per patient folder."""
    rules = rules_from(opts, RULES)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise InputError("no patient folders", root, "pass the folder that holds 1_01_P/, 1_02_P/, ...")
    items, people = [], []
    for folder in folders:
        sub = subject_id(folder.name)
        found = scan_series(sorted(p for p in folder.iterdir() if p.is_file()), ("CT", "MR", "RTSTRUCT"))
        series = {uid: e for uid, e in found.items() if e["Modality"] != "RTSTRUCT"}
        if not series:
            raise InputError("no CT or MR DICOM series", folder, "pass the atlas' patient folders as downloaded")
        images = {}
        for uid, entry in sorted(series.items(), key=lambda kv: str(kv[1]["files"][0])):
            rule = match_rule(entry, rules)
            if rule is None:
                raise InputError(f"no rule names series {entry['SeriesDescription']!r} ({entry['Modality']})",
                                 entry["files"][0], "add a description to --config rules.json")
            ents = dict(e.split("-", 1) for e in rule.get("custom_entities", "").split("_") if e)
            images[uid] = Item(str(folder), image_target(sub, rule["suffix"], ents), kind="dicom",
                               extra_sources=tuple(map(str, entry["files"])),
                               sidecar={"SeriesInstanceUID": uid})
        items += [*images.values(), *_structure_items([e for e in found.values() if e["Modality"] == "RTSTRUCT"],
                                                      images, opts)]
        people.append({"participant_id": f"sub-{sub}", "source_id": folder.name, "site": sub[0]})
    return Plan(items, people, "Gold Atlas male pelvis (BIDS)",
                "Gold Atlas male pelvis CT/MR with RTSTRUCT contours converted to BIDS.",
                {"rules": rules, "converter": "dcm2niix -z y -b y", "contours": "even-odd fill on voxel centres"})
