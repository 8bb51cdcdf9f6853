"""Any DICOM export: series found by content, read by ``dcm2niix``, named by a dcm2bids 3 configuration.

``--config`` is a dcm2bids 3 configuration used as it is (see
:mod:`..dcm2bids_config`); without one CT becomes ``CT`` and MR ``T1w``/``T2w``
when its SeriesDescription says T1/T2. The subject is the PatientID (or
``--subject-regex`` on the path); a subject with several studies gets one
session each (or ``--session-regex``). What is not converted (non-image
objects, derived images and localizers unless ``--keep-derived``, series no
description names, files that are not DICOM) is listed with the reason; an
RTSTRUCT whose image series is converted becomes one mask per ROI.
"""

from __future__ import annotations

import re
from pathlib import Path

from ...core.errors import InputError, UsageError
from ..dcm2bids_config import Rules, load_rules, rules_from_dict, sort_sidecars
from ..dcm2bids_names import pair, sidecar_changes
from ..dcm2niix_run import BROKEN, sidecars_of
from ..dicom_scan import Series, dicom_files, scan, what_it_is
from ..plan import Item, Plan
from ..rtstruct import structure_items

DEFAULT_RULES = rules_from_dict({"descriptions": [
    {"datatype": "anat", "suffix": "CT", "criteria": {"Modality": "CT"}},
    {"datatype": "anat", "suffix": "T1w", "criteria": {"Modality": "MR", "SeriesDescription": "*[Tt]1*"}},
    {"datatype": "anat", "suffix": "T2w", "criteria": {"Modality": "MR", "SeriesDescription": "*[Tt]2*"}},
]})


def label(text: str) -> str:
    """A BIDS label (letters and digits only) from a PatientID or a path part.

    >>> label("PAT-01 (anon)"), label("---")
    ('PAT01anon', '')
    """
    return re.sub(r"[^A-Za-z0-9]", "", text)


def _from_path(regex: str, path: str, group: str) -> str | None:
    """The named group ``group`` (else the first group, else the whole match) of ``regex`` on ``path``.

    >>> _from_path(r"(?P<sub>P\\d+)/", "site/P07/CT/IM1", "sub"), _from_path(r"visit(\\d)", "P07/visit2/x", "ses")
    ('P07', '2')
    """
    try:
        m = re.search(regex, path)
    except re.error as exc:
        raise UsageError(f"bad regular expression {regex!r} ({exc})", None, "fix the regular expression") from None
    if not m:
        return None
    value = m.group(group) if group in m.re.groupindex else (m.group(1) if m.re.groups else m.group(0))
    return value or None


def _study(series: Series) -> tuple:
    t = series.tags
    return (t["StudyDate"], t["StudyTime"], t["StudyInstanceUID"])


def identities(images: list[Series], root: Path, opts) -> tuple[dict[int, tuple[str, str, str]], dict[int, str]]:
    """``{series index: (subject, session or '', source id)}`` and, for series that cannot be placed, why."""
    placed: dict[int, tuple[str, str, str]] = {}
    left: dict[int, str] = {}
    for i, s in enumerate(images):
        rel = s.files[0].relative_to(root).as_posix()
        source = _from_path(opts.subject_regex, rel, "sub") if opts.subject_regex else s.tags["PatientID"]
        if source is None:
            left[i] = f"its path does not match --subject-regex {opts.subject_regex!r}"
            continue
        if not label(source):
            raise InputError("no PatientID to name the subject (the export is de-identified)", s.files[0],
                             "pass --subject-regex with a group that finds the subject in the file paths, "
                             "e.g. --subject-regex '^([^/]+)/'")
        ses = ""
        if opts.session_regex:
            ses = label(_from_path(opts.session_regex, rel, "ses") or "")
            if not ses:
                left[i] = f"its path does not match --session-regex {opts.session_regex!r}"
                continue
        placed[i] = (label(source), ses, source)
    if not opts.session_regex:
        _sessions_by_study(images, placed)
    return placed, left


def _sessions_by_study(images: list[Series], placed: dict[int, tuple[str, str, str]]) -> None:
    """A subject with several studies gets sessions ``01``, ``02``... in study date order."""
    studies: dict[str, list[tuple]] = {}
    for i, (sub, _, _) in placed.items():
        studies.setdefault(sub, []).append(_study(images[i]))
    for i, (sub, _, source) in list(placed.items()):
        order = sorted(set(studies[sub]))
        if len(order) > 1:
            placed[i] = (sub, f"{order.index(_study(images[i])) + 1:02d}", source)


def _row(series: Series, root: Path, result: str, **extra) -> dict:
    return {**series.row(root), "result": result, **extra}


def _volumes(images: list[Series], placed: dict, opts) -> tuple[dict[tuple, list], dict[int, str]]:
    """dcm2niix's sidecars of every placed series, grouped by participant (subject, session)."""
    order = sorted(placed)
    found = sidecars_of([(images[i].files, f"s{i:04d}") for i in order], opts.jobs, opts.work_dir)
    groups: dict[tuple, list] = {}
    empty: dict[int, str] = {}
    for i, (sidecars, warnings) in zip(order, found):
        broken = [w for w in warnings if BROKEN.search(w)]
        if broken or not sidecars:
            empty[i] = (f"dcm2niix: {broken[0]}; re-copy the file from the archive" if broken else
                        "dcm2niix reads no image from it" + (f" ({warnings[0]})" if warnings else ""))
            continue
        sub, ses, _ = placed[i]
        for name, side in sidecars:
            key = (i, str(opts.work_dir / f"s{i:04d}" / name) if opts.work_dir else name, tuple(warnings))
            groups.setdefault((sub, ses), []).append((key, {**side, "SidecarFilename": f"{name}.json"}))
    return groups, empty


def _participant_items(sub: str, ses: str, volumes: list, images: list[Series], rules: Rules,
                       root: Path) -> tuple[list[Item], list[dict], dict]:
    """The items of one participant's volumes (dcm2bids' pairing), the rows of the table, the reasons left."""
    prefix = f"sub-{sub}" + (f"_ses-{ses}" if ses else "")
    directory = f"sub-{sub}" + (f"/ses-{ses}" if ses else "")
    ordered = sort_sidecars([side for _, side in volumes], rules.comp_keys)
    keys = {id(side): key for key, side in volumes}
    acquisitions, left = pair([(keys[id(side)], side) for side in ordered], rules, prefix)
    changes = sidecar_changes(acquisitions, directory, rules)
    items, rows = [], []
    for acq in acquisitions:
        i, output, warnings = acq.key
        s = images[i]
        target = f"{directory}/{acq.datatype}/{acq.stem}.nii.gz"
        items.append(Item(s.folder_path(), target, kind="dicom", extra_sources=tuple(map(str, s.files)),
                          output=output, sidecar=changes[acq.key],
                          notes=warnings if Path(output).is_absolute() else ()))
        rows.append(_row(s, root, target, volume=output))
    return items, rows, {(i, output): why for (i, output, _), why in left.items()}


def _structure_sets(others: list[Series], items: list[Item], images: list[Series], opts, root: Path
                    ) -> tuple[list[Item], list[dict]]:
    """Masks of the RTSTRUCTs whose image series is converted as one volume; the other sets are listed."""
    by_uid: dict[str, list[Item]] = {}
    for item in items:
        i = int(Path(item.output).name[1:5]) if item.output else -1
        if 0 <= i < len(images) and images[i].tags["SeriesInstanceUID"]:
            by_uid.setdefault(images[i].tags["SeriesInstanceUID"], []).append(item)
    single = {uid: found[0] for uid, found in by_uid.items() if len(found) == 1}
    sets = [s for s in others if s.tags["Modality"] == "RTSTRUCT"]
    files = sorted(f for s in sets for f in s.files)
    masks, problems = structure_items(files, single, opts.classes, opts.naming, opts.combine) if files else ([], [])
    reasons = {Path(p): (f"{why}; {fix}" if not why.startswith("mask on no image") else
                         "structure set whose image series is not in the export (or not converted)")
               for why, p, fix in problems}
    return masks, [_row(s, root, "not converted", reason=next(reasons[f] for f in s.files if f in reasons))
                   for s in sets if any(f in reasons for f in s.files)]


def plan(root: Path, opts) -> Plan:
    """One item per volume a description names, one per ROI of a usable RTSTRUCT; everything else listed."""
    rules = load_rules(opts.config) if opts.config else DEFAULT_RULES
    unreadable: list[tuple[Path, str]] = []
    found, strays = scan(dicom_files(root, unreadable), unreadable)
    if not found and not unreadable:
        raise InputError("no DICOM files", root, "pass the folder that holds the DICOM export (any depth)")
    why = [what_it_is(s.tags, opts.keep_derived) for s in found]
    images = [s for s, w in zip(found, why) if w is None]
    others = [s for s, w in zip(found, why) if w is not None]
    skipped = [_row(s, root, "not converted", reason=w) for s, w in zip(found, why)
               if w is not None and s.tags["Modality"] != "RTSTRUCT"]
    placed, unplaced = identities(images, root, opts)
    groups, empty = _volumes(images, placed, opts)
    skipped += [_row(images[i], root, "not converted", reason=r) for i, r in sorted({**unplaced, **empty}.items())]
    items, rows, people = [], [], {}
    for (sub, ses), volumes in sorted(groups.items()):
        got, table, left = _participant_items(sub, ses, volumes, images, rules, root)
        items += got
        rows += table
        skipped += [_row(images[i], root, "unmatched", reason=r, volume=Path(name).name)
                    for (i, name), r in left.items()]
    for sub, _, source in placed.values():
        people[sub] = {"participant_id": f"sub-{sub}", "source_id": source}
    masks, sets_left = _structure_sets(others, items, images, opts, root)
    skipped += sets_left + _stray_rows(strays, root) + [
        {"folder": p.relative_to(root).as_posix(), "SeriesDescription": "", "Modality": "", "ImageType": "",
         "SeriesNumber": "", "files": 1, "result": "not converted",
         "reason": f"cannot be read ({why}); fix its permissions, or fetch its content (datalad get)"}
        for p, why in unreadable]
    rows += skipped
    return Plan(items + masks, sorted(people.values(), key=lambda p: p["participant_id"]), "DICOM (BIDS)",
                "DICOM series converted to BIDS with dcm2niix.",
                {"config": str(opts.config) if opts.config else None, "rules": list(rules.descriptions),
                 "converter": "dcm2niix -z y -b y -ba y", "keep_derived": opts.keep_derived},
                skipped=skipped, series=sorted(rows, key=lambda r: (r["folder"], str(r["SeriesNumber"]))),
                failures_are_skips=True)


def _stray_rows(strays: list[Path], root: Path) -> list[dict]:
    """The files that are not DICOM, one row per folder."""
    folders: dict[Path, list[Path]] = {}
    for path in strays:
        folders.setdefault(path.parent, []).append(path)
    return [{"folder": (f.relative_to(root).as_posix() if f != root else "."), "SeriesDescription": "",
             "Modality": "", "ImageType": "", "SeriesNumber": "", "files": len(paths), "result": "not converted",
             "reason": "not DICOM: " + ", ".join(p.name for p in paths[:3]) + (" ..." if len(paths) > 3 else "")}
            for f, paths in sorted(folders.items())]
