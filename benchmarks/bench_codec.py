"""The ``.nii.gz`` codec: which DEFLATE implementation and level, and what it buys.

Two groups, each measured side by side in one run:

* the codecs themselves (zlib, ISA-L's ``igzip``, zlib-ng) at several levels on
  the bytes of a NIfTI file (header + data): write time, file size, read time,
  and whether the standard library's zlib reads the stream back to the same
  bytes (every stream we write must stay plain gzip);
* a NIfTI read + write of the same CT label as a stage does it
  (``core.nifti.load_label`` + ``save_mask``) with ISA-L and with the zlib
  fallback (``TOTALSEG_BIDS_GZIP=zlib``), against nibabel's own
  (``nib.load`` + ``to_filename``).

Data: the 512x512x400 uint8 CT label of the transfer benchmark and a
256x256x30 int16 MRI (smooth anatomy-like structure plus noise).
"""

from __future__ import annotations

import contextlib
import os
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from . import bench_data as data
from .bench_common import Context, Row, interleave

#: (label, module name, level): module names are importable DEFLATE modules with zlib's API
CODECS = [("zlib 1 (nibabel's default)", "zlib", 1), ("zlib 6", "zlib", 6),
          ("ISA-L 1 (ours)", "isal.isal_zlib", 1), ("ISA-L 2", "isal.isal_zlib", 2),
          ("ISA-L 3", "isal.isal_zlib", 3),
          ("zlib-ng 1", "zlib_ng.zlib_ng", 1), ("zlib-ng 2", "zlib_ng.zlib_ng", 2),
          ("zlib-ng 6", "zlib_ng.zlib_ng", 6)]
OURS = "ISA-L 1 (ours)"


def mri_volume(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """An int16 MRI-like volume: a smooth body with structure, plus noise.

    >>> v = mri_volume((16, 16, 4)); v.dtype.name, v.shape
    ('int16', (16, 16, 4))
    """
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"))
    body = np.exp(-(grid[0] ** 2 + (1.3 * grid[1]) ** 2) * 2.0) * 800
    texture = 120 * np.sin(9 * grid[0]) * np.cos(7 * grid[1]) * np.cos(3 * grid[2])
    return (body + texture * (body > 100) + rng.normal(0, 25, shape)).clip(0).astype(np.int16)


def _module(name: str):
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _write(mod, level: int, raw: bytes, path: Path) -> None:
    comp = mod.compressobj(level, zlib.DEFLATED, 31)
    with open(path, "wb") as fh:
        fh.write(comp.compress(raw))
        fh.write(comp.flush())


def _read(mod, path: Path) -> bytes:
    dec = mod.decompressobj(31)
    with open(path, "rb") as fh:
        return dec.decompress(fh.read()) + dec.flush()


def codec_group(ctx: Context, name: str, raw: bytes, folder: Path, repeats: int) -> None:
    """Write, size and read of ``raw`` through every installed codec, side by side."""
    bench = "NIfTI gzip codec: write (size, read, plain zlib reads it)"
    methods: list[tuple[str, Callable[[], float]]] = []
    reads: dict[str, list[float]] = {}
    missing = []
    for label, modname, level in CODECS:
        mod = _module(modname)
        if mod is None:
            missing.append(label)
            continue
        path = folder / f"{modname.split('.')[0]}_{level}.nii.gz"

        def one(mod=mod, level=level, path=path, label=label) -> float:
            t = time.perf_counter()
            _write(mod, level, raw, path)
            dt = time.perf_counter() - t
            t = time.perf_counter()
            _read(mod, path)
            reads.setdefault(label, []).append(time.perf_counter() - t)
            return dt

        methods.append((label, one))
    res = interleave(methods, repeats)
    for label, modname, level in CODECS:
        if label in missing:
            ctx.add(Row(bench, name, label, status="not available", note=f"{modname.split('.')[0]} not installed"))
            continue
        path = folder / f"{modname.split('.')[0]}_{level}.nii.gz"
        plain = _read(zlib, path) == raw
        ctx.add(Row(bench, name, label, res[label], ours=label == OURS,
                    note=f"{path.stat().st_size / 1e3:,.0f} kB; read {np.median(reads[label]) * 1e3:.0f} ms; "
                         f"stdlib zlib reads the same bytes: {'yes' if plain else 'NO'}"))


@contextlib.contextmanager
def gzip_backend(name: str) -> Iterator[None]:
    """``core.gzip_codec`` on ``name`` ('isal' or 'zlib') for the block's duration."""
    old = os.environ.get("TOTALSEG_BIDS_GZIP")
    os.environ["TOTALSEG_BIDS_GZIP"] = name
    try:
        yield
    finally:
        if old is None:
            del os.environ["TOTALSEG_BIDS_GZIP"]
        else:
            os.environ["TOTALSEG_BIDS_GZIP"] = old


def nifti_group(ctx: Context, name: str, label_path: Path, folder: Path, repeats: int) -> None:
    """Read + write of a CT label as a stage does it, ISA-L and zlib, against nibabel."""
    import nibabel as nib

    from totalseg_bids.core.nifti import load_label, save_mask

    bench = "NIfTI read + write of a label (file to file)"
    parts: dict[str, dict[str, list[float]]] = {}

    def ours(backend: str) -> Callable[[], float]:
        def run() -> float:
            with gzip_backend(backend):
                t = time.perf_counter()
                vol = load_label(label_path)
                t_read = time.perf_counter() - t
                save_mask(vol.data, vol.affine, folder / f"ours_{backend}.nii.gz")
                dt = time.perf_counter() - t
            parts.setdefault(backend, {}).setdefault("read", []).append(t_read)
            return dt
        return run

    def nibabel() -> float:
        t = time.perf_counter()
        img = nib.load(str(label_path))
        arr = np.asanyarray(img.dataobj)
        t_read = time.perf_counter() - t
        nib.Nifti1Image(arr, img.affine, img.header).to_filename(str(folder / "nibabel.nii.gz"))
        parts.setdefault("nibabel", {}).setdefault("read", []).append(t_read)
        return time.perf_counter() - t

    res = interleave([("isal", ours("isal")), ("zlib", ours("zlib")), ("nibabel", nibabel)], repeats)
    same = np.array_equal(np.asanyarray(nib.load(str(folder / "ours_isal.nii.gz")).dataobj),
                          np.asanyarray(nib.load(str(label_path)).dataobj))
    labels = {"isal": "ours: core.nifti load_label + save_mask (ISA-L 1)",
              "zlib": "ours with the zlib fallback (TOTALSEG_BIDS_GZIP=zlib)",
              "nibabel": "nibabel: nib.load + to_filename (zlib 1)"}
    for key, label in labels.items():
        note = f"read {np.median(parts[key]['read']) * 1e3:.0f} ms"
        if key == "isal":
            note += f"; nibabel reads our file back to the same array: {'yes' if same else 'NO'}"
        ctx.add(Row(bench, name, label, res[key], ours=key == "isal", note=note))


def bench_codec(ctx: Context) -> None:
    ct_shape = (192, 192, 150) if ctx.quick else (512, 512, 400)
    mri_shape = (128, 128, 20) if ctx.quick else (256, 256, 30)
    repeats = 2 if ctx.quick else 3
    ct_spacing = (2.08, 2.08, 2.67) if ctx.quick else (0.78, 0.78, 1.0)
    case = data.make_transfer_case(ctx.tmp / "case", ct_shape=ct_shape, ct_spacing=ct_spacing, write_mri=False)
    label_path = case["ct_label"]
    label_raw = _read(zlib, label_path)
    mri_path = data.save_nifti(mri_volume(mri_shape), np.diag([0.9, 0.9, 4.0, 1.0]), ctx.tmp / "mri.nii.gz")
    mri_raw = _read(zlib, mri_path)
    folder = ctx.tmp / "out"
    folder.mkdir()
    ct_name = f"{'x'.join(map(str, ct_shape))} uint8 CT label ({case['fraction'] * 100:.2f} % voxels)"
    codec_group(ctx, ct_name, label_raw, folder, repeats)
    codec_group(ctx, f"{'x'.join(map(str, mri_shape))} int16 MRI", mri_raw, folder, repeats)
    # a fresh 100 MB array's page faults cost 15-400 ms on a VM, at random: more repeats for the median
    nifti_group(ctx, ct_name, label_path, folder, 2 * repeats + 1)
