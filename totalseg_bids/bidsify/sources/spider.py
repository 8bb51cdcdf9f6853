"""SPIDER: ``images/<id>_{t1,t2,t2_SPACE}.mha`` + ``masks/`` + ``overview.csv``."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from ...core.errors import InputError
from ..plan import Item, Plan, image_target, label_target, padded

NAME_RE = re.compile(r"^(\d+)_(t1|t2|t2_SPACE)\.mha$")
SUFFIX = {"t1": ("T1w", {}), "t2": ("T2w", {}), "t2_SPACE": ("T2w", {"acq": "SPACE"})}
#: published label table: vertebrae numbered from the bottom, canal, partial vertebrae, discs
LABELS = {**{i: f"vertebra_{i}" for i in range(1, 26)}, 100: "spinal_canal",
          **{100 + i: f"partial_vertebra_{i}" for i in range(1, 26)},
          **{200 + i: f"disc_{i}" for i in range(1, 26)}}


def _overview(root: Path) -> dict[str, dict]:
    path = root / "overview.csv"
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return {row["new_file_name"]: row for row in csv.DictReader(fh) if row.get("new_file_name")}


def _participant(sub: str, rows: list[dict]) -> dict:
    """Overview columns whose value is the same for all of a subject's scans."""
    out = {"participant_id": f"sub-{sub}", "source_id": sub}
    for key in rows[0] if rows else []:
        values = {r.get(key, "") for r in rows}
        if key != "new_file_name" and len(values) == 1:
            out[re.sub(r"[^A-Za-z0-9_]", "_", key.strip()).lower()] = values.pop()
    return out


def plan(root: Path, opts) -> Plan:
    """Items for every image; masks go to the labels derivative."""
    images = sorted((root / "images").glob("*.mha"))
    if not images:
        raise InputError("no images/*.mha", root, "pass the folder that holds images/, masks/, overview.csv")
    overview = _overview(root)
    for mask in sorted((root / "masks").glob("*.mha")):
        if not (root / "images" / mask.name).is_file():
            raise InputError("mask on no image", mask, f"add images/{mask.name} or remove the mask")
    items, by_sub = [], {}
    for image in images:
        m = NAME_RE.match(image.name)
        if not m:
            raise InputError("name is not <id>_t1|t2|t2_SPACE.mha", image, "keep the published file names")
        sub, key = m.groups()
        sub = padded(sub)
        suffix, ents = SUFFIX[key]
        t = image_target(sub, suffix, ents)
        items.append(Item(str(image), t, sidecar={"Modality": "MR"}))
        mask = root / "masks" / image.name
        if mask.is_file():
            items.append(Item(str(mask), label_target(t, "spine", "dseg", opts.naming), kind="label",
                              classes=LABELS, reference=t, reference_source=str(image)))
        by_sub.setdefault(sub, []).append(overview.get(image.stem, {}))
    people = [_participant(s, [r for r in rows if r]) for s, rows in sorted(by_sub.items())]
    return Plan(items, people, "SPIDER (BIDS)", "SPIDER lumbar spine MRI converted to BIDS.", {"labels": "SPIDER"})
