"""The clot workflow's ``Processed/Original`` and ``Processed/Sliced`` trees beside ``Augmented``.

``Original`` holds every source volume of a split as a 3D ``.npy`` with its
geometry sidecar, named as the clot workflow names them
(``<case>_CTA_Binary.npy``, ``<case>_NCCT_Reg_Binary.npy``,
``<case>_seg_corrected_binary.npy``); ``Sliced`` holds the source slices as
they are.
"""

from __future__ import annotations

from pathlib import Path

from ..core.atomic import atomic_copy
from ..core.errors import InputError
from ..core.npy_volume import nifti_to_npy, npy_stems
from .layout import CLOT_SPLITS, sample_paths, sample_stem


def original_items(rows: list[dict], out: Path) -> list[tuple[Path, Path]]:
    """(source NIfTI, target ``.npy``) of every volume named in ``slices.tsv``, once each."""
    items: dict[Path, Path] = {}
    for split, images, label in dict.fromkeys((r["split"], r["images"], r.get("label", "")) for r in rows):
        paths = list(dict.fromkeys(Path(p) for p in images.split(";")))
        lab = Path(label) if label else None
        for p in [*paths, *([lab] if lab else [])]:
            if not p.is_file():
                raise InputError("source volume of slices.tsv not found", p,
                                 "keep the volumes the slices were made from, or use --layout mmseg")
        base = out / "Processed" / "Original" / CLOT_SPLITS[split]
        srcs = [*paths, *([lab] if lab else [])]
        for k, (src, stem) in enumerate(zip(srcs, npy_stems(paths, lab, "clot"))):
            dst = base / ("masks" if lab is not None and k == len(srcs) - 1 else "images") / f"{stem}.npy"
            if items.setdefault(dst, src) != src:
                raise InputError(f"two volumes would both be written as {dst.name}", src,
                                 "give the cases distinct subject labels")
    return [(src, dst) for dst, src in items.items()]


def write_volume(item: tuple[Path, Path]) -> Path:
    """One NIfTI as ``.npy`` + geometry sidecar; an existing complete copy is kept."""
    return nifti_to_npy(*item)


def copy_sliced(rows: list[dict], src: Path, out: Path) -> None:
    """``Processed/Sliced``: the source slices as they are (one file per channel stays so)."""
    for row in rows:
        files = row["file"].split(";")
        f_imgs, f_mask = sample_paths("clotseg", row["split"], sample_stem(files), Path(files[0]).suffix,
                                      Path(row["mask"]).suffix, len(files), "Sliced")
        for s, d in zip(files, f_imgs):
            atomic_copy(src / s, out / d)
        if row["mask"]:
            atomic_copy(src / row["mask"], out / f_mask)


def tree_counts(rows: list[dict], manifest: list[dict]) -> dict[str, dict[str, int]]:
    """What each folder of the ``Processed`` tree holds per split, as the clot workflow reports it:
    cases (``Original``), source slices (``Sliced``), samples (``Augmented``).

    >>> tree_counts([{"split": "train", "images": "a"}, {"split": "train", "images": "a"}],
    ...             [{"split": "train"}] * 5)["Sliced"]
    {'Training': 2, 'Validation': 0, 'Testing': 0}
    """
    cases = {(r["split"], r["images"]) for r in rows}
    return {"Original": {name: sum(s == split for s, _ in cases) for split, name in CLOT_SPLITS.items()},
            "Sliced": {name: sum(r["split"] == split for r in rows) for split, name in CLOT_SPLITS.items()},
            "Augmented": {name: sum(r["split"] == split for r in manifest) for split, name in CLOT_SPLITS.items()}}


def tree_table(counts: dict[str, dict[str, int]]) -> str:
    """The counts of :func:`tree_counts` as an aligned table (one row per folder).

    >>> print(tree_table({"Original": {"Training": 3, "Validation": 1, "Testing": 1}}))
    Processed  Training  Validation  Testing
    Original   3         1           1
    """
    header = ["Processed", *CLOT_SPLITS.values()]
    lines = [header, *([folder, *(str(n) for n in per.values())] for folder, per in counts.items())]
    widths = [max(len(line[c]) for line in lines) for c in range(len(header))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in lines)
