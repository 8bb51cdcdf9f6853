"""The one output: the config built from the files, checked whole, written atomically."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..core.atomic import atomic_write_json
from ..core.config import SPLITS
from ..core.errors import InputError
from .build import build_config
from .options import InitConfigOptions

log = logging.getLogger(__name__)


def write_config(cfg: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``cfg`` atomically (never a half-written config) and return the path."""
    missing = [k for k in ("TYPE", "DATASETS_PATH", *SPLITS) if k not in cfg]
    if missing:
        raise InputError(f"config lacks {', '.join(missing)}", path, "build it with build_config()")
    path = Path(path)
    atomic_write_json(path, dict(cfg))
    return path


def make_config(paths: Sequence[str | Path], out: Path, opts: InitConfigOptions,
                source: str | Path | None = None) -> dict[str, Any]:
    """Build the config of ``paths`` and write it to ``out``; the stdout record (``status``,
    ``path``, ``type``, ``counts`` per split). ``source`` is the file errors name (the path list)."""
    cfg = build_config(paths, opts, source=source)
    write_config(cfg, out)
    counts = cfg["COUNTS"]
    log.info("%s: %s", out, ", ".join(f"{s} {counts[s]['files']} files / {counts[s]['subjects']} subjects"
                                      for s in SPLITS))
    return {"status": "written", "path": out, "type": cfg["TYPE"], "counts": counts}
