"""Any DICOM folder tree: series found by SeriesInstanceUID, converted by
``dcm2niix``, named by dcm2bids-style rules.

Rules (``--config rules.json``): ``{"descriptions": [{"datatype": "anat",
"suffix": "T2w", "custom_entities": "acq-sag", "criteria": {"SeriesDescription":
"*T2*", "Modality": "MR"}}]}``; without a matching rule CT becomes ``CT`` and
MR ``T1w``/``T2w`` when its description says T1/T2. Others are refused.
"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

from ..core.errors import InputError, UsageError
from .plan import Item, Plan, image_target

DEFAULT_RULES = [
    {"suffix": "CT", "criteria": {"Modality": "CT"}},
    {"suffix": "T1w", "criteria": {"Modality": "MR", "SeriesDescription": "*[Tt]1*"}},
    {"suffix": "T2w", "criteria": {"Modality": "MR", "SeriesDescription": "*[Tt]2*"}},
]


def match_rule(tags: dict, rules: list[dict]) -> dict | None:
    """The first rule whose every criterion glob-matches the series' tags.

    >>> match_rule({"Modality": "MR", "SeriesDescription": "t2_tse_sag"}, DEFAULT_RULES)["suffix"]
    'T2w'
    """
    for rule in rules:
        if all(fnmatch.fnmatchcase(str(tags.get(k, "")), str(v)) for k, v in rule.get("criteria", {}).items()):
            return rule
    return None


#: header fields read from every file to split series (the pixels are never read)
SPLIT_TAGS = ("SeriesInstanceUID", "Modality", "SeriesDescription")


def scan_series(files, modalities=("CT", "MR")) -> dict[str, dict]:
    """``{SeriesInstanceUID: {"files": [...], **tags of the first file}}`` of the
    readable DICOM files among ``files`` whose Modality is in ``modalities``."""
    import pydicom

    series: dict[str, dict] = {}
    for path in files:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(SPLIT_TAGS))
        except Exception:  # noqa: BLE001 - not a DICOM file: skipped
            continue
        uid, modality = ds.get("SeriesInstanceUID"), ds.get("Modality")
        if uid and modality in modalities:
            entry = series.setdefault(str(uid), {**{k: str(ds.get(k, "")) for k in SPLIT_TAGS}, "files": []})
            entry["files"].append(path)
    return series


def find_series(root: Path) -> dict[str, list[Path]]:
    """``{SeriesInstanceUID: files}`` of every readable CT/MR DICOM image below ``root``."""
    found = scan_series(sorted(p for p in root.rglob("*") if p.is_file()))
    return {uid: entry["files"] for uid, entry in found.items()}


def rules_from(opts, defaults: list[dict]) -> list[dict]:
    """The ``--config`` rules (dcm2bids ``descriptions``) first, then ``defaults``."""
    if not getattr(opts, "config", None):
        return defaults
    try:
        return json.loads(Path(opts.config).read_text(encoding="utf-8"))["descriptions"] + defaults
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"cannot read the rules ({exc})", opts.config,
                         'give {"descriptions": [{"suffix": ..., "criteria": {...}}]}') from None


def plan(root: Path, opts) -> Plan:
    """One item per series; subject from PatientID (or ``--subject-regex`` on the path)."""
    import pydicom

    rules, items, people = rules_from(opts, DEFAULT_RULES), [], {}
    series = find_series(root)
    if not series:
        raise InputError("no CT or MR DICOM series", root, "pass the folder holding the DICOM files")
    for uid, files in sorted(series.items(), key=lambda kv: str(kv[1][0])):
        ds = pydicom.dcmread(files[0], stop_before_pixels=True)
        tags = {k: str(ds.get(k, "")) for k in ("Modality", "SeriesDescription", "ProtocolName", "PatientID",
                                                 "SeriesNumber", "ImageType")}
        source_id = tags["PatientID"]
        if getattr(opts, "subject_regex", None):
            m = re.search(opts.subject_regex, files[0].relative_to(root).as_posix())
            if not m:
                raise InputError(f"path does not match --subject-regex {opts.subject_regex!r}", files[0],
                                 "fix the regular expression (one group: the subject)")
            source_id = m.group(1)
        sub = re.sub(r"[^A-Za-z0-9]", "", source_id)
        if not sub:
            raise InputError("no PatientID to name the subject", files[0], "pass --subject-regex")
        rule = match_rule(tags, rules)
        if rule is None:
            raise InputError(f"no rule names series {tags['SeriesDescription']!r} ({tags['Modality']})", files[0],
                             "add a description to --config rules.json")
        ents = dict(e.split("-", 1) for e in rule.get("custom_entities", "").split("_") if e)
        target = image_target(sub, rule["suffix"], ents)
        items.append(Item(str(files[0].parent), target, kind="dicom", extra_sources=tuple(map(str, files)),
                          sidecar={"SeriesInstanceUID": uid}))
        people[sub] = {"participant_id": f"sub-{sub}", "source_id": source_id}
    return Plan(items, list(people.values()), "DICOM (BIDS)", "DICOM series converted to BIDS with dcm2niix.",
                {"rules": rules, "converter": "dcm2niix -z y -b y"})
