"""Every installed model, with its card."""

from __future__ import annotations

import json
from pathlib import Path

from ..nnunet import paths
from ..nnunet.model_zip import registry
from .card import CARD


def installed(results: str | Path | None = None) -> list[dict]:
    """Registry entries with their model cards (``card`` is None for a zip without one)."""
    root = paths.models_root(results)
    out = []
    for _name, entry in sorted(registry(root).items()):
        card_path = root / entry["folders"][0] / CARD
        card = json.loads(card_path.read_text(encoding="utf-8")) if card_path.is_file() else None
        out.append({**entry, "folder": str(root / entry["folders"][0]), "card": card})
    return out
