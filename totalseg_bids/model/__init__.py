"""Ship a trained nnU-Net as one zip file and install it on another machine.

``python -m totalseg_bids.model export -d 300 -c 3d_fullres -f 0 -o sacrum_model.zip``
writes nnU-Net's own export (``export_pretrained_model``) plus a model card,
``totalseg_bids_model_card.json``, and the converter's ``case_mapping.tsv``
inside the model folder of the zip. ``install sacrum_model.zip --name sacrum``
unpacks it with nnU-Net's own ``install_model_from_zip_file`` into
``$TOTALSEG_BIDS_MODELS`` (else ``$nnUNet_results``) and records the name, the
model folder and the zip's SHA-256 in ``totalseg_bids_models.json`` there;
``list`` prints one JSON object per installed model. ``predict --model sacrum``
or ``predict --model-zip FILE`` then use it.

Why it is built this way:

* The zip is nnU-Net's format, so ``nnUNetv2_install_pretrained_model_from_zip``
  installs it too; the card travels in the model folder, where it survives
  that install as well.
* Installing never replaces a different model: a dataset id already taken by
  another dataset name, or a file of the zip that differs from the installed
  one, is refused. Reinstalling the same zip only re-registers it.
* nnU-Net reads its folders from environment variables when ``nnunetv2.paths``
  is first imported; the calls here set them on nnU-Net's modules for the
  duration of the call, so one process can export from one folder and
  install into another.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..core import flags
from ..core import cli
from ..core.atomic import atomic_path, atomic_write_json, file_lock
from ..core.derivatives import now
from ..core.errors import InputError, MissingFileError, OutputError, UsageError
from ..core.options import options_from_args, resolve_options

CARD = "totalseg_bids_model_card.json"
MAPPING = "case_mapping.tsv"
REGISTRY = "totalseg_bids_models.json"
_MEMBER_RE = re.compile(r"^(?P<dataset>Dataset(?P<id>\d+)_[^/]+)/(?P<model>[^/]+__[^/]+__[^/]+)/(?P<rest>.+)$")
_NNUNET_MODULES = ("nnunetv2.paths", "nnunetv2.utilities.file_path_utilities",
                   "nnunetv2.utilities.dataset_name_id_conversion", "nnunetv2.model_sharing.model_export",
                   "nnunetv2.model_sharing.model_import")


# ------------------------------------------------------------ pure helpers
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
    return re.sub(r"^Dataset\d+_", "", dataset_folder).lower()


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
    return sorted(k for k, rest in found.items() if {"plans.json", "dataset.json"} <= rest)


def models_root(results: str | Path | None = None) -> Path:
    """Where models are installed: ``results``, ``$TOTALSEG_BIDS_MODELS`` or ``$nnUNet_results``."""
    root = results or os.environ.get("TOTALSEG_BIDS_MODELS") or os.environ.get("nnUNet_results")
    if not root:
        raise UsageError("no model folder configured", None, "export TOTALSEG_BIDS_MODELS=DIR or nnUNet_results=DIR")
    return Path(root)


@contextlib.contextmanager
def _nnunet_paths(results: Path, raw: str | None = None, preprocessed: str | None = None) -> Iterator[None]:
    """nnU-Net's module-level folder variables pointed at ``results`` (and raw/preprocessed) for one call."""
    import importlib

    values = {"nnUNet_results": str(results), "nnUNet_raw": raw, "nnUNet_preprocessed": preprocessed}
    saved: list[tuple[Any, str, Any]] = []
    with contextlib.redirect_stdout(open(os.devnull, "w")) as sink:
        try:
            for name in _NNUNET_MODULES:
                mod = importlib.import_module(name)
                for key, value in values.items():
                    if value is not None and hasattr(mod, key):
                        saved.append((mod, key, getattr(mod, key)))
                        setattr(mod, key, value)
            yield
        finally:
            for mod, key, value in reversed(saved):
                setattr(mod, key, value)
            sink.close()


# ------------------------------------------------------------------ export
def _dice(fold_dir: Path) -> dict | None:
    path = fold_dir / "validation" / "summary.json"
    if not path.is_file():
        return None
    summary = json.loads(path.read_text(encoding="utf-8"))
    per_class = {str(k): v.get("Dice") for k, v in summary.get("mean", {}).items()}
    return {"ForegroundMean": summary.get("foreground_mean", {}).get("Dice"), "PerClass": per_class}


def build_card(model_dir: Path, folds: Sequence[str], raw_dataset: Path | None) -> dict:
    """The model card: what was trained on what, how, and how well (validation Dice)."""
    from ..predict import _nnunet_version, parse_model_folder

    trainer, plans, configuration = parse_model_folder(model_dir.name)
    ds = json.loads((model_dir / "dataset.json").read_text(encoding="utf-8"))
    dataset = model_dir.parent.name
    did = int(re.match(r"Dataset(\d+)_", dataset)[1])
    card: dict[str, Any] = {
        "Dataset": dataset, "DatasetId": did, "Configuration": configuration, "Trainer": trainer, "Plans": plans,
        "Folds": list(folds), "Labels": ds.get("labels", {}), "ChannelNames": ds.get("channel_names", {}),
        "NumTraining": ds.get("numTraining"),
        "TrainingCommand": [f"nnUNetv2_train {did} {configuration} {f} -tr {trainer} -p {plans}" for f in folds],
        "Versions": {"nnunetv2": _nnunet_version(), "totalseg_bids": __version__},
        "ValidationDice": {f"fold_{f}": _dice(model_dir / f"fold_{f}") for f in folds}, "Exported": now()}
    mapping = raw_dataset / "case_mapping.json" if raw_dataset else None
    if mapping is not None and mapping.is_file():
        data = json.loads(mapping.read_text(encoding="utf-8"))
        cases = data.get("cases", [])
        images = [Path(i) for c in cases for i in c.get("images", [])]
        card["SourceDatasets"] = sorted({name for name in map(_dataset_name, images) if name})
        card["Split"] = {s: sorted(c["case_id"] for c in cases if c.get("split") == s)
                         for s in sorted({c.get("split") for c in cases if c.get("split")})}
    return card


def _dataset_name(image: Path) -> str | None:
    """The BIDS dataset folder of an image: the folder that holds its ``sub-`` folder.

    >>> _dataset_name(Path("/data/spider/sub-01/anat/sub-01_T2w.nii.gz"))
    'spider'
    """
    parts = image.parts
    for i, part in enumerate(parts[1:], start=1):
        if part.startswith("sub-"):
            return parts[i - 1]
    return None


@dataclass(frozen=True)
class ExportOptions:
    """Which trained configuration to export: nnU-Net's configuration, folds, trainer and plans,
    from ``results`` (default ``$nnUNet_results``)."""

    configuration: str = "3d_fullres"
    folds: tuple[str, ...] = ("0",)
    trainer: str = "nnUNetTrainer"
    plans: str = "nnUNetPlans"
    results: str | Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "folds", tuple(str(f) for f in self.folds))


def export(dataset: str, output: str | Path, options: ExportOptions | None = None, **kwargs) -> Path:
    """nnU-Net's export of one trained configuration, plus our model card, written atomically.

    ``options`` (or its fields as keyword arguments): see :class:`ExportOptions`.
    """
    from ..predict import find_dataset_folder, resolve_model

    opts = resolve_options(ExportOptions, options, kwargs)
    configuration, trainer, plans = opts.configuration, opts.trainer, opts.plans
    root = Path(opts.results or os.environ.get("nnUNet_results") or "")
    if not str(root) or not root.is_dir():
        raise UsageError("export needs nnUNet_results", root or None, "export nnUNet_results=DIR")
    model = resolve_model(None, dataset, configuration, trainer, plans, opts.folds, results=root)
    if not (model.folder / f"fold_{model.folds[0]}" / "progress.png").is_file():
        raise MissingFileError("fold has no progress.png (training unfinished?)", model.folder, "finish training")
    ds_name = find_dataset_folder(root, str(dataset)).name
    raw = os.environ.get("nnUNet_raw")
    raw_dataset = Path(raw) / ds_name if raw and (Path(raw) / ds_name).is_dir() else None
    card = build_card(model.folder, model.folds, raw_dataset)
    output = Path(output)
    with atomic_path(output) as tmp:
        with _nnunet_paths(root, raw, os.environ.get("nnUNet_preprocessed")):
            from nnunetv2.model_sharing.model_export import export_pretrained_model

            try:
                export_pretrained_model(ds_name, str(tmp), configurations=(configuration,), trainer=trainer,
                                        plans_identifier=plans, folds=tuple(int(f) if f != "all" else f
                                                                            for f in model.folds))
            except (AssertionError, RuntimeError, FileNotFoundError) as exc:
                raise InputError(f"nnU-Net export failed ({exc})", model.folder, "check the trained folds") from None
        prefix = f"{ds_name}/{model.folder.name}"
        with zipfile.ZipFile(tmp, "a", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(f"{prefix}/{CARD}", json.dumps(card, indent=2))
            if raw_dataset is not None and (raw_dataset / MAPPING).is_file():
                zf.write(raw_dataset / MAPPING, f"{prefix}/{MAPPING}")
    return output


# ----------------------------------------------------------------- install
def _open_export(zip_path: Path) -> tuple[list[str], dict[str, bytes | None]]:
    """The model folders of an nnU-Net export zip and its model card (raises on anything else)."""
    if not zip_path.is_file():
        raise MissingFileError("model zip not found", zip_path, "check the path (python -m totalseg_bids.model export)")
    try:
        with zipfile.ZipFile(zip_path) as zf:
            names = zf.namelist()
            folders = model_folders(names)
            cards = {f: zf.read(f"{f}/{CARD}") if f"{f}/{CARD}" in names else None for f in folders}
    except zipfile.BadZipFile:
        raise InputError("not a zip file", zip_path, "give a zip written by totalseg_bids.model export") from None
    if not folders or any(n.startswith("/") or ".." in Path(n).parts for n in names):
        raise InputError("not an nnU-Net model export (no Dataset*/<trainer>__<plans>__<configuration>/plans.json)",
                         zip_path, "give a zip written by totalseg_bids.model export or nnUNetv2_export_model_to_zip")
    return folders, cards


def _refuse_different(zip_path: Path, root: Path, folders: Sequence[str]) -> None:
    """Raise when installing would replace files of another model under the same dataset id."""
    for folder in folders:
        ds_name = folder.split("/")[0]
        did = int(_MEMBER_RE.match(folder + "/x")["id"])
        taken = [p.name for p in root.glob(f"Dataset{did:03d}_*") if p.is_dir() and p.name != ds_name]
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


def _registry(root: Path) -> dict:
    path = root / REGISTRY
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise InputError("unreadable model registry", path, "fix or remove it and reinstall the models") from None


def install(zip_path: str | Path, name: str | None = None, results: str | Path | None = None) -> dict:
    """nnU-Net's install of an export zip, refusing to replace another model; returns the registry entry."""
    zip_path = Path(zip_path)
    folders, cards = _open_export(zip_path)
    if name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise UsageError(f"invalid model name {name!r}", None, "use letters, digits, '.', '_' or '-'")
    name = name or default_name(folders[0].split("/")[0])
    root = models_root(results)
    root.mkdir(parents=True, exist_ok=True)
    digest = sha256(zip_path)
    with file_lock(root / f".{REGISTRY}.lock"):
        reg = _registry(root)
        old = reg.get(name)
        if old and old.get("sha256") != digest:
            raise OutputError(f"model name {name!r} is already installed from another zip", root / REGISTRY,
                              "choose another --name")
        _refuse_different(zip_path, root, folders)
        with _nnunet_paths(root):
            from nnunetv2.model_sharing.model_import import install_model_from_zip_file

            install_model_from_zip_file(str(zip_path))
        entry = {"name": name, "folders": list(folders), "sha256": digest, "zip": zip_path.name, "installed": now()}
        reg[name] = entry
        atomic_write_json(root / REGISTRY, reg)
    return entry


def installed(results: str | Path | None = None) -> list[dict]:
    """Registry entries with their model cards (``card`` is None for a zip without one)."""
    root = models_root(results)
    out = []
    for name, entry in sorted(_registry(root).items()):
        card_path = root / entry["folders"][0] / CARD
        card = json.loads(card_path.read_text(encoding="utf-8")) if card_path.is_file() else None
        out.append({**entry, "folder": str(root / entry["folders"][0]), "card": card})
    return out


def _pick(root: Path, folders: Sequence[str], configuration: str | None, source: str | Path) -> Path:
    hits = [f for f in folders if configuration is None or f.endswith(f"__{configuration}")] or list(folders)
    if len(hits) > 1:
        raise UsageError(f"the model has several configurations ({', '.join(hits)})", source, "choose one with -c")
    return root / hits[0]


def installed_model(name: str, configuration: str | None = None, results: str | Path | None = None
                    ) -> tuple[Path, dict]:
    """Model folder and identity (name, zip checksum) of an installed model."""
    root = models_root(results)
    entry = _registry(root).get(name)
    if entry is None:
        known = ", ".join(sorted(_registry(root))) or "none"
        raise MissingFileError(f"no installed model named {name!r} (installed: {known})", root / REGISTRY,
                               "install it with python -m totalseg_bids.model install ZIP --name NAME")
    return _pick(root, entry["folders"], configuration, root / REGISTRY), {"Name": name, "SHA256": entry["sha256"]}


def unpack_zip(zip_path: str | Path, into: str | Path, configuration: str | None = None) -> tuple[Path, dict]:
    """nnU-Net's install of a zip into a scratch folder, for ``predict --model-zip``."""
    zip_path = Path(zip_path)
    folders, _cards = _open_export(zip_path)
    with _nnunet_paths(Path(into)):
        from nnunetv2.model_sharing.model_import import install_model_from_zip_file

        install_model_from_zip_file(str(zip_path))
    return _pick(Path(into), folders, configuration, zip_path), {"Name": zip_path.name, "SHA256": sha256(zip_path)}


# --------------------------------------------------------------------- CLI
def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser(
        "model", __doc__.splitlines()[0],
        epilog="examples:\n"
               "  python -m totalseg_bids.model export -d 300 -c 3d_fullres -f 0 -o sacrum_model.zip\n"
               "  python -m totalseg_bids.model install sacrum_model.zip --name sacrum\n"
               "  python -m totalseg_bids.model list")
    sub = p.add_subparsers(dest="action", required=True)
    ex = sub.add_parser("export", help="write a trained model (nnU-Net's zip format) with its model card")
    flags.add_dataset_id(ex, dest="dataset", type=str, required=True, help="dataset id or name in $nnUNet_results")
    ex.add_argument("-c", "--configuration", default="3d_fullres")
    ex.add_argument("-f", "--folds", nargs="+", default=["0"], help="folds to export (default 0)")
    ex.add_argument("-tr", "--trainer", default="nnUNetTrainer")
    ex.add_argument("-p", "--plans", default="nnUNetPlans")
    flags.add_out(ex, dest="output", required=True, help="zip file to write")
    ins = sub.add_parser("install", help="install an exported zip into $TOTALSEG_BIDS_MODELS or $nnUNet_results")
    ins.add_argument("zip", type=Path)
    ins.add_argument("--name", default=None, help="name for predict --model (default: the dataset name)")
    sub.add_parser("list", help="installed models with their cards, one JSON object per line")
    return p


def installed_record(entry: dict, root: Path) -> dict:
    """One stdout record of an installed model: its first model folder as ``path``, then the registry entry.

    >>> installed_record({"name": "sacrum", "folders": ["Dataset300_S/T__P__3d"]}, Path("/m"))
    {'status': 'installed', 'path': '/m/Dataset300_S/T__P__3d', 'name': 'sacrum', 'folders': ['Dataset300_S/T__P__3d']}
    """
    return {"status": "installed", "path": str(root / entry["folders"][0]),
            **{k: v for k, v in entry.items() if k != "folder"}}


def _run(args: argparse.Namespace) -> int:
    if args.action == "export":
        zip_path = export(args.dataset, args.output, options_from_args(ExportOptions, args))
        cli.emit("model", [{"status": "written", "path": zip_path, "dataset": args.dataset,
                            "configuration": args.configuration}])
    elif args.action == "install":
        cli.emit("model", [installed_record(install(args.zip, args.name), models_root())])
    else:
        cli.emit("model", [installed_record(entry, models_root()) for entry in installed()])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)
