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

from ...core.errors import InputError, UsageError
from ..plan import Item, Plan, image_target

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


#: header fields read from every file: the series, and what the naming rules and subjects need
SPLIT_TAGS = ("ImageType", "Modality", "SeriesDescription", "PatientID", "ProtocolName", "SeriesInstanceUID",
              "SeriesNumber")
#: the last of them, (0020,0011): a file is read no further (skips private groups such as Siemens' CSA headers)
LAST_TAG = 0x00200011


def _past_split_tags(tag, vr, length) -> bool:
    return tag > LAST_TAG


def read_header(path: Path) -> dict[str, str] | None:
    """The ``SPLIT_TAGS`` of one file (strings, '' when absent), or None when it is not DICOM.

    Elements are parsed only up to ``LAST_TAG``: headers are read in file
    order, so nothing after the series number is decoded.
    """
    from pydicom.filereader import read_partial
    from pydicom.tag import Tag

    try:
        with open(path, "rb") as fh:
            ds = read_partial(fh, stop_when=_past_split_tags, specific_tags=[Tag(k) for k in SPLIT_TAGS])
    except Exception:  # noqa: BLE001 - not a DICOM file: skipped
        return None
    return {k: str(ds.get(k, "") if k != "ImageType" else "\\".join(ds.get(k, []) or [])) for k in SPLIT_TAGS}


def scan_series(files, modalities=("CT", "MR")) -> dict[str, dict]:
    """``{SeriesInstanceUID: {"files": [...], **tags of the first file}}`` of the
    readable DICOM files among ``files`` whose Modality is in ``modalities``."""
    series: dict[str, dict] = {}
    for path in files:
        tags = read_header(path)
        if tags and tags["SeriesInstanceUID"] and tags["Modality"] in modalities:
            series.setdefault(tags["SeriesInstanceUID"], {**tags, "files": []})["files"].append(path)
    return series


def folder_is_series(files: list[Path]) -> bool:
    """Whether ``files`` are all the (visible) files of one folder, so that
    ``dcm2niix`` can read the folder itself."""
    folder = files[0].parent
    if any(f.parent != folder for f in files):
        return False
    return sum(1 for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")) == len(files)


def find_series(root: Path) -> dict[str, dict]:
    """``scan_series`` of every CT/MR DICOM image below ``root``."""
    return scan_series(sorted(p for p in root.rglob("*") if p.is_file()))


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
    rules, items, people = rules_from(opts, DEFAULT_RULES), [], {}
    series = find_series(root)
    if not series:
        raise InputError("no CT or MR DICOM series", root, "pass the folder holding the DICOM files")
    for uid, tags in sorted(series.items(), key=lambda kv: str(kv[1]["files"][0])):
        files = tags["files"]
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
                          sidecar={"SeriesInstanceUID": uid}, folder_is_series=folder_is_series(files)))
        people[sub] = {"participant_id": f"sub-{sub}", "source_id": source_id}
    return Plan(items, list(people.values()), "DICOM (BIDS)", "DICOM series converted to BIDS with dcm2niix.",
                {"rules": rules, "converter": "dcm2niix -z y -b y"})
