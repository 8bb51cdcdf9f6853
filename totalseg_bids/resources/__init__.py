"""Files shipped with the package: data configs that ``--config NAME`` finds by name."""

from __future__ import annotations

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def shipped_config(name: str | Path) -> Path | None:
    """The shipped config ``NAME`` (``test_sacrum`` or ``test_sacrum.json``), or None.

    Only a bare name is looked up, so a path the user typed is never replaced.

    >>> shipped_config("test_sacrum").name
    'test_sacrum.json'
    >>> shipped_config("some/dir/test_sacrum.json") is None
    True
    """
    name = str(name)
    if "/" in name or "\\" in name:
        return None
    path = CONFIG_DIR / (name if name.endswith(".json") else f"{name}.json")
    return path if path.is_file() else None


def shipped_config_names() -> list[str]:
    """Names ``--config`` accepts without a path."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
