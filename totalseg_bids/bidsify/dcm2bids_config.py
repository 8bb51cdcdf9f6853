"""dcm2bids 3 configuration files, meaning what dcm2bids 3 makes of them.

A configuration's ``descriptions`` are matched against each series' dcm2niix
sidecar (plus ``SidecarFilename``): wildcards in strings (``fnmatch``, or
``re.match`` with ``"search_method": "re"``), lists element by element,
numbers compared as text, ``{"any": [...]}`` and ``{"btw"|"btwe"|"gt"|"ge"|
"lt"|"le": ...}`` on numbers. A series that exactly one description matches
becomes ``sub-<label>[_ses-<label>]_<custom_entities>_<suffix>`` with the
entities in BIDS order (``extractors`` fill entity values from sidecar
fields); duplicate names are numbered ``run-01``, ``run-02``... in the order of
``AcquisitionTime``, ``SeriesNumber`` and sidecar name; a series no
description or several descriptions match is not converted. ``sidecar_changes``
edit the sidecar, and an ``id`` lets another series' sidecar name this one
(``IntendedFor``, ``Sources``). dcm2bids itself is the reference: the tests
run it on the same series and compare the names.
"""

from __future__ import annotations

import datetime
import functools
import json
import logging
import re
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, Literal

from ..core.errors import UsageError

log = logging.getLogger(__name__)

#: BIDS entity order (dcm2bids' schema-derived entity table)
ENTITY_ORDER = ("sub", "ses", "task", "acq", "ce", "rec", "dir", "run", "mod", "echo", "flip", "inv", "mt", "part",
                "recording", "chunk")
#: dcm2bids' "dir" extractor values -> the BIDS value
DIRECTIONS = {"j-": "AP", "j": "PA", "i-": "LR", "i": "RL", "AP": "AP", "PA": "PA", "LR": "LR", "RL": "RL"}
NUMBER_KEYS = ("lt", "gt", "le", "ge", "btw", "btwe")
CONFIG_KEYS = ("descriptions", "extractors", "search_method", "case_sensitive", "dup_method", "compKeys", "bids_uri")
DESCRIPTION_KEYS = ("datatype", "suffix", "custom_entities", "criteria", "sidecar_changes", "id")
OLD_KEYS = ("dataType", "modalityLabel", "customLabels", "sidecarChanges", "intendedFor")
PATH_KEYS = ("IntendedFor", "Sources")


@dataclass(frozen=True)
class Rules:
    """A configuration: its descriptions and the settings that change how they match and name."""

    descriptions: tuple[dict, ...]
    extractors: dict[str, list[str]] = field(default_factory=dict)
    search_method: Literal["fnmatch", "re"] = "fnmatch"
    case_sensitive: bool = True
    dup_method: Literal["run", "dup"] = "run"
    comp_keys: tuple[str, ...] = ("AcquisitionTime", "SeriesNumber", "SidecarFilename")
    bids_uri: Literal["URI", "relative"] = "URI"


def _check_description(index: int, desc: Any, where: Path | None) -> None:
    if not isinstance(desc, dict):
        raise UsageError(f"description {index} is not an object", where, "see dcm2bids' configuration format")
    if set(desc) & set(OLD_KEYS):
        raise UsageError(f"description {index} uses dcm2bids 2 keys ({', '.join(sorted(set(desc) & set(OLD_KEYS)))})",
                         where, "rename them as dcm2bids 3 does: datatype, suffix, custom_entities, sidecar_changes")
    missing = [k for k in ("datatype", "suffix", "criteria") if k not in desc]
    if missing or not isinstance(desc.get("criteria"), dict):
        raise UsageError(f"description {index} has no {' or '.join(missing) or 'criteria object'}", where,
                         "give every description datatype, suffix and criteria, as dcm2bids requires")
    unknown = sorted(set(desc) - set(DESCRIPTION_KEYS))
    if unknown:
        log.warning("%s: description %d: %s not supported, ignored", where, index, ", ".join(unknown))


def rules_from_dict(config: dict, where: Path | None = None) -> Rules:
    """Check a parsed configuration and keep what bidsify uses; every other key is named in a warning."""
    if not isinstance(config, dict) or not isinstance(config.get("descriptions"), list):
        raise UsageError("no descriptions list", where, 'give {"descriptions": [{"datatype": ..., "suffix": ..., '
                                                        '"criteria": {...}}]}')
    for index, desc in enumerate(config["descriptions"]):
        _check_description(index, desc, where)
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        log.warning("%s: %s not supported (bidsify runs dcm2niix with its own options), ignored", where,
                    ", ".join(unknown))
    settings = {"search_method": ("fnmatch", "re"), "dup_method": ("run", "dup"), "bids_uri": ("URI", "relative")}
    for key, allowed in settings.items():
        if config.get(key, allowed[0]) not in allowed:
            raise UsageError(f"{key} {config[key]!r} is not one of {', '.join(allowed)}", where, f"use {allowed[0]}")
    return Rules(tuple(config["descriptions"]), dict(config.get("extractors", {})),
                 config.get("search_method", "fnmatch"), bool(config.get("case_sensitive", True)),
                 config.get("dup_method", "run"), tuple(config.get("compKeys", Rules.comp_keys)),
                 config.get("bids_uri", "URI"))


def load_rules(path: Path) -> Rules:
    """A dcm2bids 3 configuration file."""
    try:
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the configuration ({' '.join(str(exc).split())[:120]})", path,
                         "pass a dcm2bids 3 configuration JSON") from None
    return rules_from_dict(config, Path(path))


def _text_match(name: Any, pattern: Any, rules: Rules) -> bool:
    """One value against one pattern: ``fnmatch`` (case-folded unless case-sensitive) or ``re.match``.

    >>> _text_match("t2_tse_sag", "*T2*", Rules(())), _text_match("t2_tse_sag", "*T2*", Rules((), case_sensitive=False))
    (False, True)
    >>> _text_match(4, "4", Rules(())), _text_match("MPRAGE_2", "MPRAGE_[0-9]", Rules((), search_method="re"))
    (True, True)
    """
    name = str(name)
    if rules.search_method == "re":
        return bool(re.match(pattern, name))
    pattern = str(pattern)
    if not rules.case_sensitive:
        name, pattern = name.lower(), pattern.lower()
    return fnmatch(name, pattern)


def _list_match(name: Any, pattern: Any, rules: Rules) -> bool:
    """A list value against a list pattern: same length, element by element.

    >>> _list_match(["ORIGINAL", "PRIMARY", "M", "ND"], ["ORIGINAL", "PRIMARY", "*", "*"], Rules(()))
    True
    >>> _list_match(["ORIGINAL", "PRIMARY", "M"], ["ORIGINAL", "PRIMARY", "*", "*"], Rules(()))
    False
    """
    try:
        return (isinstance(pattern, list) and len(name) == len(pattern)
                and all(_text_match(n, p, rules) for n, p in zip(name, pattern)))
    except Exception:  # noqa: BLE001 - dcm2bids counts any failure as no match
        return False


def _number_match(name: Any, pattern: dict) -> bool:
    """``{"btw": [a, b]}`` (open), ``btwe`` (closed), ``gt``/``ge``/``lt``/``le``; anything unreadable: no match.

    >>> [_number_match(v, {op: [0.05, 0.2]}) for v, op in ((0.089, "btw"), (0.2, "btw"), (0.2, "btwe"))]
    [True, False, True]
    >>> _number_match("3", {"ge": 3}), _number_match(None, {"lt": 1}), _number_match(2, {"lt": [3]})
    (True, False, True)
    """
    try:
        (op, bound), = pattern.items()
        value = float(name)
        if op in ("btw", "btwe"):
            if not isinstance(bound, list) or len(bound) != 2:
                return False
            low, high = float(bound[0]), float(bound[1])
            return low <= value <= high if op == "btwe" else low < value < high
        if isinstance(bound, list):
            if len(bound) != 1:
                return False
            bound = bound[0]
        bound = float(bound)
        return {"gt": value > bound, "lt": value < bound, "ge": value >= bound, "le": value <= bound}[op]
    except Exception:  # noqa: BLE001 - dcm2bids counts any failure as no match
        return False


def _any_match(name: Any, pattern: dict, rules: Rules) -> bool:
    """``{"any": [p1, p2]}``: one of the patterns matches (lists element by element)."""
    try:
        return any(_list_match(name, p, rules) if isinstance(name, list) else _text_match(name, p, rules)
                   for p in pattern["any"])
    except Exception:  # noqa: BLE001 - dcm2bids counts any failure as no match
        return False


def criteria_match(data: dict, criteria: dict, rules: Rules) -> bool:
    """Whether a sidecar (``data``) meets every criterion.

    >>> side = {"SeriesDescription": "t1_mprage", "ImageType": ["ORIGINAL", "PRIMARY", "M", "ND"], "EchoTime": 0.0029}
    >>> criteria_match(side, {"SeriesDescription": "*mprage*", "ImageType": ["ORIGINAL", "PRIMARY", "*", "*"]},
    ...                Rules(()))
    True
    >>> [criteria_match(side, c, Rules(())) for c in ({"EchoTime": {"btw": [0.05, 0.2]}}, {"ProtocolName": ""})]
    [False, True]
    """
    for tag, pattern in criteria.items():
        name = data.get(tag, "")
        if isinstance(pattern, dict):
            if len(pattern) != 1:
                raise UsageError(f"criterion {tag} has {len(pattern)} keys", None, "give one key (any, btw, gt, ...)")
            (op,) = pattern
            if op == "any":
                ok = _any_match(name, pattern, rules)
            elif op in NUMBER_KEYS:
                ok = _number_match(name, pattern)
            else:
                log.warning("criterion %s: key %r is not allowed (as in dcm2bids: no match)", tag, op)
                continue
        elif isinstance(name, list):
            ok = _list_match(name, pattern, rules)
        else:
            ok = (not name and not pattern) or bool(name and pattern and _text_match(name, pattern, rules))
        if not ok:
            return False
    return True


def matching(data: dict, rules: Rules) -> list[int]:
    """The indices of the descriptions whose criteria the sidecar ``data`` meets (dcm2bids converts it when one)."""
    return [i for i, d in enumerate(rules.descriptions)
            if d.get("criteria") and criteria_match(data, d["criteria"], rules)]


def _time(value: Any) -> Any:
    """``AcquisitionTime`` as (h, m, s, µs) when it reads as a time, else as it is (dcm2bids' ordering).

    >>> _time("10:05:03.5"), _time("100503"), _time(7)
    ((10, 5, 3, 500000), (10, 5, 3, 0), 7)
    """
    if not isinstance(value, str):
        return value
    for fmt in ("%H:%M:%S.%f", "%H:%M:%S", "%H%M%S.%f", "%H%M%S"):
        try:
            t = datetime.datetime.strptime(value.strip(), fmt)
            return (t.hour, t.minute, t.second, t.microsecond)
        except ValueError:
            continue
    return value


def _before(a: dict, b: dict, keys: tuple[str, ...]) -> bool | None:
    """dcm2bids' sidecar order: the first key both have with different values decides."""
    for key in keys:
        if key in a and key in b:
            x, y = (_time(a[key]), _time(b[key])) if key == "AcquisitionTime" else (a[key], b[key])
            try:
                if x != y:
                    return x < y
            except TypeError:
                continue
    return None


def sort_sidecars(sidecars: list[dict], keys: tuple[str, ...]) -> list[dict]:
    """Sidecars in dcm2bids' order (``compKeys``: acquisition time, series number, sidecar name).

    >>> [s["SeriesNumber"] for s in sort_sidecars([{"SeriesNumber": 5}, {"SeriesNumber": 2}], ("SeriesNumber",))]
    [2, 5]
    """
    return sorted(sidecars, key=functools.cmp_to_key(lambda a, b: -1 if _before(a, b, keys) else 0))
