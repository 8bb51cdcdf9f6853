"""The names and sidecars dcm2bids 3 gives the series a configuration pairs (see :mod:`.dcm2bids_config`)."""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from .dcm2bids_config import DIRECTIONS, ENTITY_ORDER, PATH_KEYS, Rules, matching

log = logging.getLogger(__name__)


@dataclass
class Acquisition:
    """One paired series: its description, its BIDS name (``stem``, no extension) and its sidecar."""

    key: Any  # the caller's handle on the series
    description: dict
    sidecar: dict
    entities: list[str] = field(default_factory=list)
    stem: str = ""

    @property
    def datatype(self) -> str:
        return str(self.description["datatype"])


def ordered_stem(prefix: str, entities: list[str], suffix: str) -> str:
    """``prefix`` + entities + suffix, the entities in BIDS order (unknown ones after, as given).

    >>> ordered_stem("sub-01_ses-02", ["run-01", "acq-sag", "desc-x"], "T2w")
    'sub-01_ses-02_acq-sag_run-01_desc-x_T2w'
    >>> ordered_stem("sub-01", [], "CT")
    'sub-01_CT'
    """
    parts = [p for p in "_".join([prefix, *entities, suffix]).split("_") if p]
    pairs = dict(p.split("-", 1) for p in parts if p.count("-") == 1)
    singles = [p for p in parts if p.count("-") != 1]
    if len(singles) != 1:
        log.warning("%s: %d suffixes (%s); dcm2bids keeps them, BIDS wants one", prefix, len(singles), singles)
    ordered = [f"{k}-{pairs.pop(k)}" for k in ENTITY_ORDER if k in pairs]
    if pairs:
        log.warning("%s: %s not BIDS entities", prefix, ", ".join(sorted(pairs)))
    return "_".join([*ordered, *(f"{k}-{v}" for k, v in pairs.items()), *singles])


def _extracted(sidecar: dict, extractors: dict[str, list[str]]) -> dict[str, str]:
    """Named groups of the ``extractors`` regexes found in the sidecar fields.

    >>> _extracted({"SeriesDescription": "rest_task-nback_run2"}, {"SeriesDescription": [r"task-(?P<task>[a-z]+)"]})
    {'task': 'nback'}
    """
    found: dict[str, str] = {}
    for tag, regexes in extractors.items():
        if tag not in sidecar:
            continue
        value = sidecar[tag]
        for regex in regexes:
            rx = re.compile(regex)
            for item in value if isinstance(value, list) else [str(value)]:
                m = rx.search(str(item))
                if m:
                    found.update(m.groupdict())
                    break
    return found


def custom_entities(description: dict, sidecar: dict, extractors: dict[str, list[str]]) -> list[str]:
    """The description's ``custom_entities`` (a string or a list), a bare key such as ``task``
    filled from an extractor; entities without a value or with a dot are dropped (with a warning).

    >>> custom_entities({"custom_entities": ["acq-sag", "task"]}, {"SeriesDescription": "task-rest"},
    ...                 {"SeriesDescription": [r"task-(?P<task>[a-z]+)"]})
    ['acq-sag', 'task-rest']
    >>> custom_entities({"custom_entities": "acq-sag_rec-x"}, {}, {})
    ['acq-sag_rec-x']
    """
    given = description.get("custom_entities", [])
    entities = [given] if isinstance(given, str) else list(given)
    if not entities:
        return []
    found = _extracted(sidecar, extractors)
    for key in [e for e in entities if e in found]:  # a bare key the extractors give a value
        value = DIRECTIONS.get(found[key], found[key]) if key == "dir" else found[key]
        if key == "task":
            sidecar["TaskName"] = value
        entities = [e.replace(key, f"{key}-{value}") for e in entities]
    kept = []
    for entity in entities:
        if "-" not in entity or "." in entity:
            log.warning("entity %r dropped (not <key>-<value>, or a dot in it), as dcm2bids does", entity)
        else:
            kept.append(entity)
    return kept


def number_duplicates(acquisitions: list[Acquisition], prefix: str, dup_method: str = "run") -> None:
    """Acquisitions that would share a name get ``run-01``, ``run-02``... in their order (``dup``:
    all but the last get ``dup-01``...), as dcm2bids' ``find_runs``."""
    where: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, acq in enumerate(acquisitions):
        where[(acq.datatype, acq.stem)].append(i)
    for places in where.values():
        if len(places) < 2:
            continue
        for n, i in enumerate(places[:-1] if dup_method == "dup" else places):
            acq = acquisitions[i]
            acq.entities = [*acq.entities, f"{dup_method}-{n + 1:02d}"]
            acq.stem = ordered_stem(prefix, acq.entities, str(acq.description["suffix"]))


def pair(sidecars: list[tuple[Any, dict]], rules: Rules, prefix: str) -> tuple[list[Acquisition], dict[Any, str]]:
    """dcm2bids' pairing for one participant (``prefix``: ``sub-X[_ses-Y]``), sidecars in dcm2bids' order.

    Returns the acquisitions (those with an ``id`` first, as dcm2bids orders them) and, for every
    sidecar not converted, why (no description matches, or several do).
    """
    with_id, others, left = [], [], {}
    for key, sidecar in sidecars:
        hits = matching(sidecar, rules)
        if len(hits) != 1:
            left[key] = ("no description of the configuration matches it" if not hits else
                         f"several descriptions match it ({', '.join(map(str, hits))}), so dcm2bids converts none")
            continue
        desc = rules.descriptions[hits[0]]
        data = dict(sidecar)
        acq = Acquisition(key, desc, data, custom_entities(desc, data, rules.extractors))
        acq.stem = ordered_stem(prefix, acq.entities, str(desc["suffix"]))
        (with_id if desc.get("id") is not None else others).append(acq)
    acquisitions = with_id + others
    number_duplicates(acquisitions, prefix, rules.dup_method)
    return acquisitions, left


def _resolved(value: Any, key: str, ids: dict[str, list[str]], acq: Acquisition, rules: Rules) -> list:
    """One ``sidecar_changes`` value: an ``id`` becomes the BIDS paths of the series that carry it."""
    out: list = []
    for val in value if isinstance(value, list) else [value]:
        if not isinstance(val, (bool, str, int, float)):
            continue
        if val not in ids and key in PATH_KEYS:
            log.warning("%s: %s: no series with id %r (before it in dcm2bids' order)", acq.stem, key, val)
        elif isinstance(val, str) and not val:
            out.append(None)
        elif val in ids:
            paths = ids[val]
            out += [f"bids::{p}" if rules.bids_uri == "URI" else p.split("/", 1)[1] for p in paths]
        else:
            out.append(val)
    return out


def sidecar_changes(acquisitions: list[Acquisition], directory: str, rules: Rules) -> dict[Any, dict]:
    """``{key: {field: value or None (drop)}}``: each acquisition's ``sidecar_changes``, ids resolved
    in acquisition order (``directory``: ``sub-X[/ses-Y]``), as dcm2bids writes them.

    >>> a = Acquisition("a", {"datatype": "fmap", "suffix": "epi", "id": "x",
    ...                       "sidecar_changes": {"IntendedFor": "y", "ProtocolName": ""}}, {}, stem="sub-1_epi")
    >>> b = Acquisition("b", {"datatype": "func", "suffix": "bold", "id": "y",
    ...                       "sidecar_changes": {"IntendedFor": "x", "TaskName": "rest"}}, {}, stem="sub-1_bold")
    >>> sidecar_changes([b, a], "sub-1", Rules(()))["a"]
    {'IntendedFor': 'bids::sub-1/func/sub-1_bold.nii.gz', 'ProtocolName': None}
    """
    ids: dict[str, list[str]] = {}
    changes: dict[Any, dict] = {}
    for acq in acquisitions:
        if acq.description.get("id") is not None:
            ids.setdefault(acq.description["id"], []).append(f"{directory}/{acq.datatype}/{acq.stem}.nii.gz")
        edits: dict = {}
        for key, value in (acq.description.get("sidecar_changes") or {}).items():
            values = _resolved(value, key, ids, acq, rules)
            if None in values:
                edits[key] = None
            elif values:
                edits[key] = values[0] if len(values) == 1 else values
        if "TaskName" in acq.sidecar and "TaskName" not in edits:
            edits["TaskName"] = acq.sidecar["TaskName"]
        changes[acq.key] = edits
    return changes
