"""The outputs of an evaluation as text: the per-class TSV and the JSON-safe stdout record."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from .measure import METRICS

COLUMNS = ("case", "label", "value", *METRICS[:5], "tolerance_mm", *METRICS[5:], "flags", "prediction", "reference")


def _cell(value: Any) -> str:
    """A TSV cell: floats with 8 significant digits, ``nan``/``inf`` as pandas reads them back.

    >>> _cell(0.123456789), _cell(float("inf")), _cell(float("nan")), _cell(3), _cell(["a", "b"]), _cell([])
    ('0.12345679', 'inf', 'nan', '3', 'a,b', '')
    """
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else f"{value:.8g}"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def rows(records: Iterable[Mapping[str, Any]], tolerance_mm: float) -> list[dict[str, Any]]:
    """One row per case and class, in case order then class value."""
    out = []
    for rec in records:
        for name, m in sorted(rec["labels"].items(), key=lambda kv: kv[1]["value"]):
            out.append({"case": rec["case"], "label": name, "value": m["value"],
                        **{k: m[k] for k in METRICS}, "tolerance_mm": float(tolerance_mm), "flags": m["flags"],
                        "prediction": rec["path"], "reference": rec["reference"]})
    return out


def tsv_text(records: Iterable[Mapping[str, Any]], tolerance_mm: float) -> str:
    """The metrics table (tab-separated, a header line, ``nan``/``inf`` spelled as pandas reads them).

    >>> rec = {"case": "c1", "path": "p.nii.gz", "reference": "r.nii.gz", "labels": {"sacrum": {
    ...     "value": 1, "dice": 1.0, "iou": 1.0, "hd95_mm": float("nan"), "assd_mm": float("nan"),
    ...     "nsd": float("nan"), "pred_ml": 0.0, "ref_ml": 0.0, "rvd": float("nan"), "flags": ["both_empty"]}}}
    >>> tsv_text([rec], 2.0).splitlines()[1].split(chr(9))[:13]
    ['c1', 'sacrum', '1', '1', '1', 'nan', 'nan', 'nan', '2', '0', '0', 'nan', 'both_empty']
    """
    lines = ["\t".join(COLUMNS)]
    lines += ["\t".join(_cell(row[c]) for c in COLUMNS) for row in rows(records, tolerance_mm)]
    return "\n".join(lines) + "\n"


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as None (JSON has neither; the class's ``flags`` say why).

    >>> json_safe({"a": [1.0, float("nan")], "b": float("inf")})
    {'a': [1.0, None], 'b': None}
    """
    if isinstance(value, Mapping):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
