"""SynthRAD2025 ``Task1/AB/1ABA00N/{ct,mr,mask}.mha``: the SynthRAD2023 layout in ITK ``.mha``
files, no overview spreadsheet."""

from __future__ import annotations

from pathlib import Path

from .synthrad2023 import write as write_synthrad

NAME = "synthrad2025"


def write(out, subjects: int = 2, seed: int = 0) -> Path:
    return write_synthrad(out, subjects, seed, variant=2025)
