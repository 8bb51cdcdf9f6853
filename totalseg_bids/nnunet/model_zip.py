"""Model zips in nnU-Net's export format, and the registry of installed models.

``export_zip`` writes nnU-Net's own export (``export_pretrained_model``) and adds
files inside the model folder of the zip (where they survive
``nnUNetv2_install_pretrained_model_from_zip`` too). ``install_zip`` unpacks with
nnU-Net's own ``install_model_from_zip_file`` into ``$TOTALSEG_BIDS_MODELS``
(else ``$nnUNet_results``) and records the name, the model folder and the
zip's SHA-256 in ``totalseg_bids_models.json`` there; ``installed_model`` and
``unpack_zip`` give ``predict`` a model folder by name or from a zip.

Installing never replaces a different model: a dataset id already taken by
another dataset name, or a file of the zip that differs from the installed
one, is refused. Reinstalling the same zip only re-registers it.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..core.atomic import atomic_path, atomic_write_json, file_lock
from ..core.derivatives import now
from ..core.errors import InputError, MissingFileError, OutputError, UsageError
from . import paths
from .naming import DATASET_JSON, PLANS_JSON, dataset_name, dataset_prefix, parse_model_identifier

REGISTRY = "totalseg_bids_models.json"
_MEMBER_RE = re.compile(r"^(?P<dataset>Dataset(?P<id>\d+)_[^/]+)/(?P<model>[^/]+__[^/]+__[^/]+)/(?P<rest>.+)$")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def default_name(dataset_folder: str) -> str:
    """Installed name of a model when none is given.

    >>> default_name("Dataset300_SacrumDataset")
    'sacrumdataset'
    """
    return dataset_name(dataset_folder).lower()


def model_folders(names: Sequence[str]) -> list[str]:
    """``Dataset<id>_<name>/<trainer>__<plans>__<configuration>`` folders of a zip listing
    that hold nnU-Net's ``plans.json`` and ``dataset.json``.

    >>> model_folders(["Dataset300_A/T__P__3d_fullres/plans.json", "Dataset300_A/T__P__3d_fullres/dataset.json",
    ...                "Dataset300_A/T__P__3d_fullres/fold_0/checkpoint_final.pth", "README"])
    ['Dataset300_A/T__P__3d_fullres']
    """
    found: dict[str, set[str]] = {}
    for n in names:
        m = _MEMBER_RE.match(n)
        if m:
            found.setdefault(f"{m['dataset']}/{m['model']}", set()).add(m["rest"])
    return sorted(k for k, rest in found.items() if {PLANS_JSON, DATASET_JSON} <= rest)


def export_zip(results: Path, dataset_folder: str, model: Path, folds: Sequence[str], output: str | Path,
               extra: Mapping[str, bytes] | None = None, raw: Path | None = None,
               preprocessed: Path | None = None) -> Path:
    """nnU-Net's export of one trained configuration, plus ``extra`` files (name -> bytes) inside
    its model folder in the zip, written atomically."""
    trainer, plans, configuration = parse_model_identifier(model.name)
    output = Path(output)
    with atomic_path(output) as tmp:
        with paths.module_paths(results, raw, preprocessed):
            from nnunetv2.model_sharing.model_export import export_pretrained_model

            try:
                export_pretrained_model(dataset_folder, str(tmp), configurations=(configuration,), trainer=trainer,
                                        plans_identifier=plans,
                                        folds=tuple(int(f) if f != "all" else f for f in folds))
            except (AssertionError, RuntimeError, FileNotFoundError) as exc:
                raise InputError(f"nnU-Net export failed ({exc})", model, "check the trained folds") from None
        prefix = f"{dataset_folder}/{model.name}"
        with zipfile.ZipFile(tmp, "a", zipfile.ZIP_DEFLATED) as zf:
            for name, data in (extra or {}).items():
                zf.writestr(f"{prefix}/{name}", data)
    return output


def open_export(zip_path: Path) -> list[str]:
    """The model folders of an nnU-Net export zip (raises on anything else)."""
    if not zip_path.is_file():
        raise MissingFileError("model zip not found", zip_path, "check the path (python -m totalseg_bids.model export)")
    try:
        with zipfile.ZipFile(zip_path) as zf:
            names = zf.namelist()
    except zipfile.BadZipFile:
        raise InputError("not a zip file", zip_path, "give a zip written by totalseg_bids.model export") from None
    folders = model_folders(names)
    if not folders or any(n.startswith("/") or ".." in Path(n).parts for n in names):
        raise InputError("not an nnU-Net model export (no Dataset*/<trainer>__<plans>__<configuration>/plans.json)",
                         zip_path, "give a zip written by totalseg_bids.model export or nnUNetv2_export_model_to_zip")
    return folders


def _refuse_different(zip_path: Path, root: Path, folders: Sequence[str]) -> None:
    """Raise when installing would replace files of another model under the same dataset id."""
    for folder in folders:
        ds_name = folder.split("/")[0]
        member = _MEMBER_RE.match(folder + "/x")
        if member is None:  # model_folders gives only folders of this pattern
            raise InputError(f"not an nnU-Net model folder: {folder}", zip_path, "give a zip written by "
                             "totalseg_bids.model export")
        did = int(member["id"])
        taken = [p.name for p in root.glob(f"{dataset_prefix(did)}*") if p.is_dir() and p.name != ds_name]
        if taken:
            raise OutputError(f"dataset id {did} is already installed as {taken[0]}", root / taken[0],
                              "install into another TOTALSEG_BIDS_MODELS folder or remove the old model")
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            dest = root / info.filename
            if info.is_dir() or not dest.is_file():
                continue
            h = hashlib.sha256()
            with zf.open(info) as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            if h.hexdigest() != sha256(dest):
                raise OutputError(f"a different model is installed here ({info.filename} differs)", dest,
                                  "install into another TOTALSEG_BIDS_MODELS folder or remove the old model")


def registry(root: Path) -> dict:
    """The installed models of ``root``: name -> entry."""
    path = root / REGISTRY
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise InputError("unreadable model registry", path, "fix or remove it and reinstall the models") from None


def _nnunet_install(zip_path: Path, root: Path) -> None:
    with paths.module_paths(root):
        from nnunetv2.model_sharing.model_import import install_model_from_zip_file

        install_model_from_zip_file(str(zip_path))


def install_zip(zip_path: str | Path, name: str | None = None, results: str | Path | None = None) -> dict:
    """nnU-Net's install of an export zip, refusing to replace another model; returns the registry entry."""
    zip_path = Path(zip_path)
    folders = open_export(zip_path)
    if name is not None and not _NAME_RE.fullmatch(name):
        raise UsageError(f"invalid model name {name!r}", None, "use letters, digits, '.', '_' or '-'")
    name = name or default_name(folders[0].split("/")[0])
    root = paths.models_root(results)
    root.mkdir(parents=True, exist_ok=True)
    digest = sha256(zip_path)
    with file_lock(root / f".{REGISTRY}.lock"):
        reg = registry(root)
        old = reg.get(name)
        if old and old.get("sha256") != digest:
            raise OutputError(f"model name {name!r} is already installed from another zip", root / REGISTRY,
                              "choose another --name")
        _refuse_different(zip_path, root, folders)
        _nnunet_install(zip_path, root)
        entry = {"name": name, "folders": list(folders), "sha256": digest, "zip": zip_path.name, "installed": now()}
        reg[name] = entry
        atomic_write_json(root / REGISTRY, reg)
    return entry


def pick_folder(root: Path, folders: Sequence[str], configuration: str | None, source: str | Path) -> Path:
    """The model folder of ``configuration`` among an export's folders (the only one when there is one)."""
    hits = [f for f in folders if configuration is None or f.endswith(f"__{configuration}")] or list(folders)
    if len(hits) > 1:
        raise UsageError(f"the model has several configurations ({', '.join(hits)})", source, "choose one with -c")
    return root / hits[0]


def installed_model(name: str, configuration: str | None = None, results: str | Path | None = None
                    ) -> tuple[Path, dict]:
    """Model folder and identity (name, zip checksum) of an installed model."""
    root = paths.models_root(results)
    entry = registry(root).get(name)
    if entry is None:
        known = ", ".join(sorted(registry(root))) or "none"
        raise MissingFileError(f"no installed model named {name!r} (installed: {known})", root / REGISTRY,
                               "install it with python -m totalseg_bids.model install ZIP --name NAME")
    return pick_folder(root, entry["folders"], configuration, root / REGISTRY), {"Name": name,
                                                                                  "SHA256": entry["sha256"]}


def unpack_zip(zip_path: str | Path, into: str | Path, configuration: str | None = None) -> tuple[Path, dict]:
    """nnU-Net's install of a zip into a scratch folder, for ``predict --model-zip``."""
    zip_path = Path(zip_path)
    folders = open_export(zip_path)
    _nnunet_install(zip_path, Path(into))
    return pick_folder(Path(into), folders, configuration, zip_path), {"Name": zip_path.name,
                                                                        "SHA256": sha256(zip_path)}
