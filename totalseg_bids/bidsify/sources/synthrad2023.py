"""SynthRAD2023/2025: ``Task<n>/<region>/<id>/{ct,mr|cbct,mask}.nii.gz|.mha``.

The MR contrast comes from the overview spreadsheet (sheet ``MR``, columns
``ID`` and ``note``) or from ``--mr-suffix``; it is never guessed.
"""

from __future__ import annotations

import re
from pathlib import Path

from ...core.errors import InputError, UsageError
from ..plan import Item, Plan, files_matching, image_target, label_target

ID_RE = re.compile(r"^([12])(B|P|HN|TH|AB)([A-E])(\d{3})$")
EXTS = (".nii.gz", ".mha")


def overview_contrasts(root: Path) -> dict[str, str]:
    """``{id: T1w|T2w}`` from every overview ``.xlsx`` whose MR sheet says so."""
    found: dict[str, str] = {}
    for book in files_matching(root, "**/overview/*.xlsx"):
        import openpyxl

        wb = openpyxl.load_workbook(book, read_only=True, data_only=True)
        if "MR" not in wb.sheetnames:
            continue
        rows = list(wb["MR"].iter_rows(values_only=True))
        header = [str(c).strip() if c is not None else "" for c in rows[0]] if rows else []
        if "ID" not in header or "note" not in header:
            continue
        for row in rows[1:]:
            pid, note = row[header.index("ID")], str(row[header.index("note")] or "")
            contrast = "T1w" if re.search(r"T1", note, re.I) else "T2w" if re.search(r"T2", note, re.I) else None
            if pid and contrast:
                found[str(pid).strip()] = contrast
    return found


def _file(folder: Path, stem: str) -> Path | None:
    for ext in EXTS:
        if (folder / f"{stem}{ext}").is_file():
            return folder / f"{stem}{ext}"
    return None


def plan(root: Path, opts) -> Plan:
    """Items for every patient folder (any task, region, centre)."""
    contrasts = overview_contrasts(root)
    items, people = [], []
    folders = sorted({p.parent for ext in EXTS for p in root.glob(f"Task*/*/*/*{ext}")})
    if not folders:
        raise InputError("no Task*/<region>/<id>/ folders with ct/mr/cbct images", root,
                         "pass the folder that holds Task1/ and Task2/")
    for folder in folders:
        pid = folder.name
        if not ID_RE.match(pid):
            raise InputError(f"folder name {pid!r} is not a SynthRAD id (e.g. 1PA001, 1HNA001)", folder,
                             "keep the published folder names")
        ct, mr, cbct, mask = (_file(folder, s) for s in ("ct", "mr", "cbct", "mask"))
        ref = None
        if ct:
            ref = image_target(pid, "CT")
            items.append(Item(str(ct), ref, sidecar={"Modality": "CT"}))
        if cbct:
            t = image_target(pid, "CT", {"acq": "cbct"})
            items.append(Item(str(cbct), t, sidecar={"Modality": "CT"}))
            ref = ref or t
        if mr:
            suffix = contrasts.get(pid) or opts.mr_suffix
            if not suffix:
                raise UsageError(f"the overview does not say whether {pid}'s MR is T1w or T2w", mr,
                                 "add the overview .xlsx or pass --mr-suffix T1w|T2w")
            t = image_target(pid, suffix)
            items.append(Item(str(mr), t, sidecar={"Modality": "MR"}))
            ref = ref or t
        if mask:
            if ref is None:
                raise InputError("mask on no image", mask, "keep the mask beside its ct/mr/cbct image")
            ref_item = next(i for i in items if i.target == ref)
            items.append(Item(str(mask), label_target(ref, "body", "seg", opts.naming), kind="label",
                              reference=ref, reference_source=ref_item.source,
                              sidecar={"Description": "dilated body outline shipped with SynthRAD"}))
        people.append({"participant_id": f"sub-{pid}", "source_id": pid,
                       "task": pid[0], "region": folder.parent.name})
    return Plan(items, people, "SynthRAD (BIDS)", "SynthRAD challenge data converted to BIDS.",
                {"mr_suffix": opts.mr_suffix, "overview_contrasts": contrasts})
