"""TotalSegmentator dataset: ``s0000/ct.nii.gz`` + ``segmentations/<class>.nii.gz`` + ``meta.csv``."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from ...core.errors import InputError
from ..plan import Item, Plan, image_target, label_target

ID_RE = re.compile(r"^s\d{4}$")


def class_ids(names: list[str]) -> dict[str, int]:
    """TotalSegmentator ``total`` ids for known class names, then the rest in name order.

    >>> class_ids(["zz_unknown"])
    {'zz_unknown': 1}
    """
    try:
        from totalsegmentator.map_to_binary import class_map

        known = {v: int(k) for k, v in class_map["total"].items()}
    except Exception:  # noqa: BLE001 - TotalSegmentator not installed
        known = {}
    ids = {n: known[n] for n in names if n in known}
    nxt = max(ids.values(), default=0) + 1
    for n in sorted(set(names) - set(ids)):
        ids[n], nxt = nxt, nxt + 1
    return ids


def _meta(root: Path) -> dict[str, dict]:
    path = root / "meta.csv"
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return {row["image_id"]: row for row in csv.DictReader(fh, delimiter=";") if row.get("image_id")}


def plan(root: Path, opts) -> Plan:
    """CT per subject and one dseg (or ``--classes`` binary masks)."""
    folders = sorted(p for p in root.iterdir() if p.is_dir() and (p / "ct.nii.gz").is_file())
    if not folders:
        raise InputError("no s<NNNN>/ct.nii.gz", root, "pass the folder that holds s0000/ and meta.csv")
    meta = _meta(root)
    items, people = [], []
    for folder in folders:
        sid = folder.name
        if not ID_RE.match(sid):
            raise InputError(f"folder name {sid!r} is not a TotalSegmentator id (s0000)", folder,
                             "keep the published folder names")
        t = image_target(sid, "CT")
        items.append(Item(str(folder / "ct.nii.gz"), t, sidecar={"Modality": "CT"}))
        segs = sorted((folder / "segmentations").glob("*.nii.gz"))
        names = [s.name[:-7] for s in segs]
        if opts.classes:
            for cls in opts.classes:
                if cls not in names:
                    raise InputError(f"no segmentations/{cls}.nii.gz", folder, "choose --classes from the files")
                items.append(Item(str(folder / "segmentations" / f"{cls}.nii.gz"),
                                  label_target(t, cls, "seg", opts.naming), kind="label", reference=t,
                                  reference_source=str(folder / "ct.nii.gz"), select=1))
        elif segs:
            ids = class_ids(names)
            items.append(Item(str(segs[0]), label_target(t, "total", "dseg", opts.naming), kind="combine",
                              classes={ids[n]: n for n in names}, reference=t,
                              reference_source=str(folder / "ct.nii.gz"), extra_sources=tuple(map(str, segs[1:]))))
        row = meta.get(sid, {})
        people.append({"participant_id": f"sub-{sid}", "source_id": sid,
                       **{k: v for k, v in row.items() if k in ("age", "gender", "institute", "study_type", "split")}})
    return Plan(items, people, "TotalSegmentator (BIDS)", "TotalSegmentator CT dataset converted to BIDS.",
                {"classes": opts.classes})
