"""Shared pieces of the benchmark harness: rows, timing, machine description."""

from __future__ import annotations

import importlib
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Row:
    """One measured method. ``values`` are per-repeat costs (seconds, or MiB when
    ``unit`` says so). The row with ``ours=True`` is the reference of its group."""

    bench: str
    size: str
    method: str
    values: list[float] = field(default_factory=list)
    unit: str = "s"
    ours: bool = False
    note: str = ""
    status: str = ""  # "", "not available", "skipped", "error: ..."

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None


@dataclass
class Context:
    quick: bool
    tmp: Path
    log: Callable[[str], None]
    rows: list[Row] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        self.log(f"  {row.bench} | {row.size} | {row.method}: "
                 f"{fmt_value(row.median, row.unit) if row.values else row.status} {row.note}")
        return row


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def warm_memory(gib: float = 2.0) -> float:
    """Touch ``gib`` GiB once and free it; returns the seconds it took.

    On a virtual machine the first touch of guest memory the host has not yet
    backed costs ~3 s a GiB (a 100 MB array then takes 0.4 s to fill instead of
    15 ms). Without this, that cost lands on whichever method allocates first.
    """
    import numpy as np

    t = time.perf_counter()
    block = 256 << 20
    chunks = [np.ones(block, np.uint8) for _ in range(int(gib * (1 << 30)) // block)]
    del chunks
    return time.perf_counter() - t


def interleave(methods: list[tuple[str, Callable[[], float]]], repeats: int,
               budget_s: float | None = None) -> dict[str, list[float]]:
    """Run each method once per round, ``repeats`` rounds (side by side, so
    drift and cache effects hit all methods alike). Each round starts one
    method later, so no method always runs first. Each callable returns its
    own elapsed seconds (so set-up it does is not counted). A method whose
    first round exceeds ``budget_s`` is not repeated.

    >>> calls = []
    >>> _ = interleave([(k, lambda k=k: calls.append(k) or 0.0) for k in "abc"], 2)
    >>> "".join(calls)
    'abcbca'
    """
    out: dict[str, list[float]] = {name: [] for name, _ in methods}
    for r in range(repeats):
        shift = r % len(methods) if methods else 0
        for name, fn in methods[shift:] + methods[:shift]:
            if r > 0 and budget_s is not None and out[name] and out[name][0] > budget_s:
                continue
            out[name].append(float(fn()))
    return out


def available(module: str) -> tuple[object | None, str]:
    """Import a totalseg_bids stage, or say why it cannot be used."""
    try:
        return importlib.import_module(module), ""
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            return None, "not available (module not written yet)"
        return None, f"not available (import failed: {exc})"
    except Exception as exc:  # noqa: BLE001 - a half-written module must not stop the harness
        return None, f"not available (import failed: {type(exc).__name__}: {exc})"


def fmt_value(v: float | None, unit: str = "s") -> str:
    if v is None:
        return "-"
    if unit == "s":
        if v < 1e-3:
            return f"{v * 1e6:.0f} us"
        if v < 1.0:
            return f"{v * 1e3:.1f} ms"
        return f"{v:.2f} s"
    if unit == "MiB":
        return f"{v:,.0f} MiB"
    return f"{v:.3g} {unit}"


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return "-"
    if r >= 100:
        return f"{r:,.0f}x"
    if r >= 10:
        return f"{r:.1f}x"
    return f"{r:.2f}x"


def markdown_table(rows: list[Row]) -> str:
    """Rows grouped by (benchmark, size); ``alt/ours`` = the method's cost divided
    by ours (> 1: ours is faster / smaller)."""
    refs = {}
    for r in rows:
        if r.ours and r.values:
            refs[(r.bench, r.size)] = r.median
    lines = ["| Benchmark | Size | Method | Median | n | alt/ours | Note |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        ref = refs.get((r.bench, r.size))
        if r.values:
            value = fmt_value(r.median, r.unit)
            ratio = "1.00 (ref)" if r.ours else (fmt_ratio(r.median / ref) if ref else "-")
        else:
            value, ratio = r.status or "-", "-"
        method = f"**{r.method}**" if r.ours else r.method
        note = r.note.replace("|", "/")
        lines.append(f"| {r.bench} | {r.size} | {method} | {value} | {len(r.values) or '-'} | {ratio} | {note} |")
    return "\n".join(lines)


def _version(mod: str) -> str:
    try:
        m = importlib.import_module(mod)
        return str(getattr(m, "__version__", "?"))
    except Exception:  # noqa: BLE001
        return "not installed"


#: import name -> distribution name, where the two differ
DISTRIBUTIONS = {"bids": "pybids", "cc3d": "connected-components-3d", "zlib_ng": "zlib-ng", "ants": "antspyx"}


def _distribution_version(mod: str) -> str:
    """The installed version of the package that provides ``mod``, without importing it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTIONS.get(mod, mod))
    except PackageNotFoundError:
        return _version(mod)


def _gpu() -> str:
    """The CUDA device torch sees, or why there is none (the harness never needs one)."""
    try:
        import torch
    except ImportError:
        return "none (torch not installed)"
    if not torch.cuda.is_available():
        return "none; no code path assumes one"
    return torch.cuda.get_device_name(0)


def machine_info() -> dict[str, str]:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "?"
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 1024 ** 2:.1f} GiB"
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        usable = os.cpu_count() or 1
    info = {
        "CPU": cpu,
        "cores": f"{usable} usable ({os.cpu_count()} online)",
        "RAM": ram,
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
    }
    for mod, name in (("numpy", "numpy"), ("nibabel", "nibabel"), ("scipy", "scipy"), ("bids", "pybids"),
                      ("nilearn", "nilearn"), ("cc3d", "cc3d"), ("SimpleITK", "SimpleITK"),
                      ("torch", "torch"), ("nnunetv2", "nnunetv2"), ("isal", "isal (ISA-L)"),
                      ("zlib_ng", "zlib-ng"), ("dask", "dask"), ("distributed", "distributed"),
                      ("ants", "antspyx")):
        info[name] = _distribution_version(mod)
    info["GPU"] = _gpu()
    info["OPENBLAS_CORETYPE"] = os.environ.get("OPENBLAS_CORETYPE", "(unset)")
    return info


def child_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("TOTALSEG_BIDS_NO_PROGRESS", "1")
    if extra:
        env.update(extra)
    return env


def run_cli(args: list[str], env: dict | None = None, timeout: float = 600,
            cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, encoding="utf-8", errors="replace",
                          env=child_env(env), timeout=timeout, cwd=cwd)
