"""provenance options: who corrected the labels, when, and what."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ManualOptions:
    """Who corrected the labels, when (ISO 8601; None: now) and what was corrected."""

    author: str
    date: str | None = None
    description: str | None = None
