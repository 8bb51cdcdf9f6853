"""Export a config's volumes and masks as 3D ``.npy`` with a geometry sidecar (and import them back).

``--format npy`` writes ``<out>/<split>/<BIDS stem>.npy`` for every image and
label of the config (``--npy-names clot``: the clot workflow's
``<case>_CTA_Binary.npy``, ``<case>_NCCT_Reg_Binary.npy`` for a plain CT on the
CTA's grid, ``<case>_seg_corrected_binary.npy``; ``<case>`` is the BIDS
subject, and session, label), in the source voxel order, each with ``<stem>.json``
carrying the affine, spacing, axis codes and source file
(``totalseg_bids.core.npy_volume``). ``--import DIR`` turns such a folder back
into NIfTI files with the same array and affine.

Stdout: one JSON line per volume (``status`` written or skipped, ``path`` the
file written, ``source`` the file it came from); docs/conventions.md section 8.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from dataclasses import dataclass
from typing import Sequence

from ..core import flags
from ..core import cli
from ..core.config import SPLIT_NAMES
from ..core.errors import InputError, UsageError
from ..core.options import options_from_args, resolve_options


NPY_NAMES = ("bids", "clot")


@dataclass(frozen=True)
class ExportOptions:
    """How a config is exported (or a folder imported back); paths are the call's arguments.

    ``npy_names``: ``bids`` (<BIDS stem>.npy) or ``clot`` (the clot workflow's names).
    ``overwrite``: convert again volumes whose ``.npy`` and sidecar exist.
    """

    fmt: str = "npy"
    npy_names: str = "bids"
    datasets_path: str | None = None
    overwrite: bool = False
    jobs: int | None = None

    def __post_init__(self) -> None:
        if self.fmt != "npy" or self.npy_names not in NPY_NAMES:
            raise UsageError(f"unknown --format {self.fmt!r} or --npy-names {self.npy_names!r}", None,
                             f"use --format npy and --npy-names {'|'.join(NPY_NAMES)}")


def export_file(item: tuple[Path, Path]) -> dict:
    """One NIfTI as ``.npy`` + sidecar; skipped when a complete copy exists (``--overwrite`` redoes it)."""
    from ..core.npy_volume import nifti_to_npy, sidecar_path

    src, dst = item
    status = "skipped" if dst.is_file() and sidecar_path(dst).is_file() else "written"
    return {"status": status, "path": nifti_to_npy(src, dst), "source": src}


def import_file(item: tuple[Path, Path]) -> dict:
    """One ``.npy`` volume + sidecar back to NIfTI."""
    from ..core.npy_volume import npy_to_nifti

    src, dst = item
    return {"status": "written", "path": npy_to_nifti(src, dst), "source": src}


def export_config(config: str | Path, out: str | Path, options: ExportOptions | None = None,
                  **kwargs) -> list[dict]:
    """Every image and label of ``config`` as ``.npy`` + sidecar under ``out``: one
    record per volume; a volume that fails raises one BatchError after the others are done."""
    from ..core.parallel import finish, run_tasks

    opts = resolve_options(ExportOptions, options, kwargs)
    items = plan(Path(config), opts.datasets_path, Path(out), opts.npy_names)
    if opts.overwrite:
        for _, dst in items:
            dst.unlink(missing_ok=True)
    outcomes = run_tasks(export_file, items, keys=[str(s) for s, _ in items], jobs=opts.jobs, desc="export")
    return finish(outcomes, "volumes")


def import_folder(folder: str | Path, out: str | Path, options: ExportOptions | None = None,
                  **kwargs) -> list[dict]:
    """Every ``.npy`` volume below ``folder`` back to NIfTI under ``out`` (same relative path)."""
    from ..core.parallel import finish, run_tasks

    opts = resolve_options(ExportOptions, options, kwargs)
    folder, out = Path(folder), Path(out)
    items = [(p, out / p.relative_to(folder).with_suffix(".nii.gz")) for p in sorted(folder.rglob("*.npy"))]
    outcomes = run_tasks(import_file, items, keys=[str(s) for s, _ in items], jobs=opts.jobs, desc="import")
    return finish(outcomes, "volumes")


def plan(config: Path, datasets_path: str | None, out: Path, names: str = "bids") -> list[tuple[Path, Path]]:
    """(source NIfTI, target .npy) for every image and label of the config."""
    from ..core.bids import raw_root_of
    from ..core.config import check_cases, load_config
    from ..core.npy_volume import npy_stems

    cases = load_config(config, datasets_path).cases()
    check_cases(cases, config, strict_splits=True)
    ids = [npy_stems([Path(p) for p in c.images], None, names)[0] for c in cases]
    clash = len(set(ids)) < len(ids) and names == "clot"  # one subject id in two datasets: the dataset leads
    items: dict[Path, Path] = {}
    for case in cases:
        images = list(dict.fromkeys(Path(p) for p in case.images))
        label = Path(case.label) if case.label is not None else None
        prefix = f"{raw_root_of(images[0]).name}_" if clash else ""
        folder = out / SPLIT_NAMES.get(case.split, case.split.lower())
        for src, stem in zip([*images, *([label] if label else [])], npy_stems(images, label, names, prefix)):
            dst = folder / f"{stem}.npy"
            if items.setdefault(dst, src) != src:
                raise InputError(f"two volumes would both be written as {dst.name}", src,
                                 "use --npy-names bids, or give the cases distinct subject labels")
    return [(src, dst) for dst, src in items.items()]


def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser("export", __doc__.splitlines()[0],
                         epilog="stdout: one JSON line per volume (status, path, source)\n"
                                "example:\n  python -m totalseg_bids.export --config train.json --format npy --out npy")
    p.add_argument("--config", type=Path, help="data config (docs/conventions.md)")
    p.add_argument("--import", dest="import_dir", type=Path, default=None,
                   help="instead: turn the .npy volumes of this folder back into NIfTI under --out")
    p.add_argument("--format", dest="fmt", choices=("npy",), default="npy")
    p.add_argument("--npy-names", choices=NPY_NAMES, default="bids",
                   help="bids: <BIDS stem>.npy; clot: <case>_CTA_Binary.npy, <case>_NCCT_Reg_Binary.npy, "
                        "<case>_seg_corrected_binary.npy (the clot workflow's names)")
    flags.add_out(p, dest="out", required=True, help="output folder")
    p.add_argument("--datasets-path", default=None, help="override the config's DATASETS_PATH")
    cli.add_batch_args(p, dask=False)
    return p


def _run(args: argparse.Namespace) -> int:
    opts = options_from_args(ExportOptions, args)
    if args.import_dir is not None:
        cli.report("export", lambda: import_folder(args.import_dir, args.out, opts))
        return 0
    if args.config is None:
        raise UsageError("--config is required without --import", None, "add --config train.json")
    cli.report("export", lambda: export_config(args.config, args.out, opts))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)
