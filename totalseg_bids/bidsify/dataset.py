"""Dataset-level files: description, README, .bidsignore, participants, code/."""

from __future__ import annotations

import json
from pathlib import Path

from .. import __version__
from ..core.atomic import atomic_write_json, atomic_write_text
from ..core.derivatives import BIDS_VERSION, ensure_dataset_description
from .plan import Plan

#: where the labels a source ships go (and its annotation tables: Plan.tables)
LABELS_DIR = Path("derivatives") / "labels"
BIDSIGNORE = "*_CT.nii.gz\n*_CT.json\n*_ct.nii.gz\n*_ct.json\nct/\n"


def participants_tsv(rows: list[dict]) -> str:
    """Tab-separated participants table, ``participant_id`` first, n/a for gaps.

    >>> participants_tsv([{"participant_id": "sub-1", "source_id": "A"}]).split("\\n")
    ['participant_id\\tsource_id', 'sub-1\\tA', '']
    """
    columns: list[str] = ["participant_id"]
    for row in rows:
        columns += [c for c in row if c not in columns]
    lines = ["\t".join(columns)]
    for row in sorted(rows, key=lambda r: r["participant_id"]):
        lines.append("\t".join(str(row.get(c, "n/a")) if row.get(c, "") != "" else "n/a" for c in columns))
    return "\n".join(lines) + "\n"


def write_dataset_files(out: Path, plan: Plan, source: str, command: str) -> None:
    """Everything besides the images; rewritten on every run (reproducible bytes)."""
    atomic_write_json(out / "dataset_description.json", {
        "Name": plan.name, "BIDSVersion": BIDS_VERSION, "DatasetType": "raw",
        "GeneratedBy": [{"Name": "totalseg_bids.bidsify", "Version": __version__}],
    })
    atomic_write_text(out / "README", plan.readme.rstrip() + "\n\nConverted by totalseg_bids.bidsify "
                      f"(--source {source}); the exact command and parameters are in code/bidsify.json.\n"
                      "CT images (suffix _CT) are listed in .bidsignore: BIDS has no CT datatype yet.\n")
    atomic_write_text(out / ".bidsignore", BIDSIGNORE)
    atomic_write_text(out / "participants.tsv", participants_tsv(plan.participants))
    columns = {c for row in plan.participants for c in row} - {"participant_id"}
    atomic_write_json(out / "participants.json",
                      {c: {"Description": "source_id: the subject's id in the source dataset" if c == "source_id"
                           else f"{c} as given by the source dataset's overview"} for c in sorted(columns)})
    for name, (text, dictionary) in plan.tables.items():
        atomic_write_text(out / LABELS_DIR / name, text)
        atomic_write_json((out / LABELS_DIR / name).with_suffix(".json"), dictionary)
    atomic_write_json(out / "code" / "bidsify.json", {
        "command": command, "source": source, "version": __version__, "parameters": plan.parameters,
        "files": [{"source": i.source, "target": i.target} for i in plan.items],
        **({"series": plan.series} if plan.series else {}), "skipped": plan.skipped})
    if plan.tables or any(i.kind in ("label", "combine", "rtstruct") for i in plan.items):
        ensure_dataset_description(out / LABELS_DIR, "labels", f"labels shipped with the {source} dataset")
        # a per-slice table repeats its participants, which BIDS tables do not: the validator skips it
        ignored = "".join(f"{name}\n{Path(name).with_suffix('.json')}\n" for name in plan.tables)
        atomic_write_text(out / LABELS_DIR / ".bidsignore", "*_CT_*\n*space-CT_*\n" + ignored)
        desc = out / "derivatives" / "labels" / "dataset_description.json"
        data = json.loads(desc.read_text(encoding="utf-8"))
        if "DatasetLinks" not in data:
            data["DatasetLinks"] = {"raw": "../.."}
            atomic_write_json(desc, data)
