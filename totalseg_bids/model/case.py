"""One model: exported into a zip with its card, or one zip installed under a name."""

from __future__ import annotations

import json
from pathlib import Path

from ..core.errors import MissingFileError
from ..core.options import resolve_options
from ..nnunet import paths
from ..nnunet.engine import resolve_model
from ..nnunet.model_zip import export_zip, install_zip
from ..nnunet.naming import fold_folder
from .card import CARD, MAPPING, build_card
from .options import ExportOptions


def export(dataset_id: str, out: str | Path, options: ExportOptions | None = None, **kwargs) -> Path:
    """nnU-Net's export of one trained configuration, plus our model card and the converter's
    case mapping inside its model folder, written atomically.

    ``options`` (or its fields as keyword arguments): see :class:`ExportOptions`.
    """
    opts = resolve_options(ExportOptions, options, kwargs)
    root = Path(opts.results) if opts.results else paths.RESULTS.require()
    model = resolve_model(None, dataset_id, opts.configuration, opts.trainer, opts.plans, opts.folds, results=root)
    if not (model.folder / fold_folder(model.folds[0]) / "progress.png").is_file():
        raise MissingFileError("fold has no progress.png (training unfinished?)", model.folder, "finish training")
    ds_name = model.folder.parent.name
    raw = paths.RAW.get()
    raw_dataset = raw / ds_name if raw is not None and (raw / ds_name).is_dir() else None
    card = build_card(model.folder, model.folds, raw_dataset)
    extra = {CARD: json.dumps(card, indent=2).encode("utf-8")}
    if raw_dataset is not None and (raw_dataset / MAPPING).is_file():
        extra[MAPPING] = (raw_dataset / MAPPING).read_bytes()
    return export_zip(root, ds_name, model.folder, model.folds, out, extra, raw, paths.PREPROCESSED.get())


def install(zip_path: str | Path, name: str | None = None, results: str | Path | None = None) -> dict:
    """Install an export zip under ``name`` (nnU-Net's installer; another model is never replaced);
    returns the registry entry."""
    return install_zip(zip_path, name, results)


def installed_record(entry: dict, root: Path) -> dict:
    """One stdout record of an installed model: its first model folder as ``path``, then the registry entry.

    >>> installed_record({"name": "sacrum", "folders": ["Dataset300_S/T__P__3d"]}, Path("/m"))
    {'status': 'installed', 'path': '/m/Dataset300_S/T__P__3d', 'name': 'sacrum', 'folders': ['Dataset300_S/T__P__3d']}
    """
    return {"status": "installed", "path": str(root / entry["folders"][0]),
            **{k: v for k, v in entry.items() if k != "folder"}}
