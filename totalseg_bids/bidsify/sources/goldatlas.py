"""Gold Atlas male pelvis: ``<site>_<nn>_P/`` folders of mixed DICOM files.

Series are told apart by SeriesInstanceUID (the series code of ``--source
dicom``) and named from Modality and SeriesDescription on their headers (CT,
the CT deformed to MR as ``acq-deformed``, MR T1 and T2): the first rule
that matches names a series; ``--config`` descriptions are tried before the
built-in rules. Every ROI of each RTSTRUCT becomes a binary mask on the
series its contours reference.
"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

from ...core.errors import InputError, UsageError
from ..dicom_scan import scan
from ..plan import Item, Plan, image_target
from ..rtstruct import structure_items

FOLDER_RE = re.compile(r"^(\d+)_(\d+)_P$")
RULES = [
    *[{"suffix": "CT", "custom_entities": "acq-deformed", "criteria": {"Modality": "CT", "SeriesDescription": d}}
      for d in ("*[Tt]o[Mm][Rr]*", "*[Dd]eform*")],
    {"suffix": "CT", "criteria": {"Modality": "CT"}},
    {"suffix": "T1w", "criteria": {"Modality": "MR", "SeriesDescription": "*[Tt]1*"}},
    {"suffix": "T2w", "criteria": {"Modality": "MR", "SeriesDescription": "*[Tt]2*"}},
]


def match_rule(tags: dict, rules: list[dict]) -> dict | None:
    """The first rule whose every criterion glob-matches the series' header fields.

    >>> match_rule({"Modality": "MR", "SeriesDescription": "t2_tse_sag"}, RULES)["suffix"]
    'T2w'
    """
    for rule in rules:
        if all(fnmatch.fnmatchcase(str(tags.get(k, "")), str(v)) for k, v in rule.get("criteria", {}).items()):
            return rule
    return None


def rules_from(opts, defaults: list[dict]) -> list[dict]:
    """The ``--config`` descriptions first, then ``defaults``."""
    if not getattr(opts, "config", None):
        return defaults
    try:
        return json.loads(Path(opts.config).read_text(encoding="utf-8"))["descriptions"] + defaults
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"cannot read the rules ({exc})", opts.config,
                         'give {"descriptions": [{"suffix": ..., "criteria": {...}}]}') from None


def entities_of(rule: dict) -> dict[str, str]:
    """A rule's ``custom_entities`` (a string or a list, as in dcm2bids) as ``{key: value}``.

    >>> entities_of({"custom_entities": ["acq-sag", "rec-x"]}), entities_of({"custom_entities": "acq-deformed"})
    ({'acq': 'sag', 'rec': 'x'}, {'acq': 'deformed'})
    """
    given = rule.get("custom_entities", "")
    parts = [p for e in ([given] if isinstance(given, str) else given) for p in e.split("_") if "-" in p]
    return dict(p.split("-", 1) for p in parts)


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


def plan(root: Path, opts) -> Plan:
    """Images per series, masks per ROI, one subject per patient folder."""
    rules = rules_from(opts, RULES)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise InputError("no patient folders", root, "pass the folder that holds 1_01_P/, 1_02_P/, ...")
    items, people = [], []
    for folder in folders:
        sub = subject_id(folder.name)
        found, _ = scan(sorted(p for p in folder.iterdir() if p.is_file()))
        series = [s for s in found if s.tags["Modality"] in ("CT", "MR")]
        if not series:
            raise InputError("no CT or MR DICOM series", folder, "pass the atlas' patient folders as downloaded")
        images = {}
        for entry in sorted(series, key=lambda s: str(s.files[0])):
            rule = match_rule(entry.tags, rules)
            if rule is None:
                raise InputError(f"no rule names series {entry.tags['SeriesDescription']!r} "
                                 f"({entry.tags['Modality']})", entry.files[0],
                                 "add a description to --config rules.json")
            uid = entry.tags["SeriesInstanceUID"]
            images[uid] = Item(str(folder), image_target(sub, rule["suffix"], entities_of(rule)), kind="dicom",
                               extra_sources=tuple(map(str, entry.files)), sidecar={"SeriesInstanceUID": uid})
        sets = sorted(f for s in found if s.tags["Modality"] == "RTSTRUCT" for f in s.files)
        masks, problems = structure_items(sets, images, opts.classes, opts.naming, opts.combine)
        if problems:
            raise InputError(*problems[0])
        items += [*images.values(), *masks]
        people.append({"participant_id": f"sub-{sub}", "source_id": folder.name, "site": sub[0]})
    return Plan(items, people, "Gold Atlas male pelvis (BIDS)",
                "Gold Atlas male pelvis CT/MR with RTSTRUCT contours converted to BIDS.",
                {"rules": rules, "converter": "dcm2niix -z y -b y", "contours": "even-odd fill on voxel centres"})
