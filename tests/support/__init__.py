"""What the tests share besides fixtures: the repository, the CLI runner and its contract, the stand-in
tools, and the comparisons several test modules make. The session fixtures live in this package's
modules (:mod:`support.nnunet`, :mod:`support.totalseg`, :mod:`support.slurm`), loaded by
``tests/conftest.py`` as plugins."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
#: Stand-ins for programs that cannot run here (each says why in its header).
FAKE_TOOLS = Path(__file__).resolve().parent / "fake_tools"


def run_module(module: str, *args: str, env: dict | None = None, cwd: str | Path | None = None,
               timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m totalseg_bids.<module> args`` as a user would."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    if env:
        full_env.update(env)
    return subprocess.run([sys.executable, "-m", f"totalseg_bids.{module}", *map(str, args)],
                          capture_output=True, encoding="utf-8", errors="replace", env=full_env, cwd=cwd,
                          timeout=timeout)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str, code: int = 1) -> None:
    """The CLI contract for bad input: exit code, one error line, no traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])


def stage_parser(module: str):
    """The argparse parser of ``python -m totalseg_bids.<module>`` (a package keeps it in one of its modules)."""
    import importlib

    mod = importlib.import_module(f"totalseg_bids.{module}")
    for inner in ("__main__", "cli", "main"):
        if hasattr(mod, "get_parser"):
            break
        try:
            mod = importlib.import_module(f"totalseg_bids.{module}.{inner}")
        except ImportError:
            continue
    return mod.get_parser()


def tree_digest(root: Path) -> str:
    """Hash of every file's path and bytes below ``root`` (source never modified)."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def read_tsv(path: Path) -> list[dict[str, str]]:
    """The rows of a tab-separated table with a header line (slices.tsv, classes.tsv, stats tables)."""
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def read_png(path: Path) -> np.ndarray:
    """The pixels of an image file, the file closed again (PIL opens lazily and keeps it open)."""
    with Image.open(path) as img:
        return np.asarray(img)


def series_volume(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """A DICOM series read independently of dcm2niix (SimpleITK/GDCM), RAS+ affine."""
    import SimpleITK as sitk

    from totalseg_bids.bidsify.geometry import sitk_affine

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    img = reader.Execute()
    return sitk.GetArrayFromImage(img).transpose(2, 1, 0), sitk_affine(img.GetDirection(), img.GetSpacing(),
                                                                     img.GetOrigin())


#: run-dependent sidecar fields; DatasetLinks depends only on where the output folder sits (inside the raw
#: dataset's derivatives/ or elsewhere)
VOLATILE = {"Date", "DatasetLinks"}


def _strip(value):
    """A sidecar without its run-dependent fields."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def outputs(root: Path) -> dict[str, object]:
    """Every output below ``root``: NIfTI/transform bytes, sidecars without volatile fields."""
    found = {}
    for p in sorted(root.rglob("*")):
        if p.is_dir():
            continue
        rel = str(p.relative_to(root))
        assert not p.name.startswith("."), f"leftover {rel}"  # no lock or temporary files
        found[rel] = _strip(json.loads(p.read_text(encoding="utf-8"))) if p.suffix == ".json" else p.read_bytes()
    return found


def assert_same_outputs(a: Path, b: Path) -> None:
    oa, ob = outputs(a), outputs(b)
    assert sorted(oa) == sorted(ob)
    for rel in oa:
        assert oa[rel] == ob[rel], rel
    gz = [rel for rel in oa if rel.endswith(".nii.gz")]
    assert gz and all(oa[rel][4:8] == b"\0\0\0\0" for rel in gz)  # gzip mtime 0: reproducible bytes


def stage_modules() -> list[str]:
    """The stages, as the installed console scripts ``totalseg-bids-<stage>`` name them."""
    from importlib.metadata import entry_points

    mods = {ep.value.split(":")[0].removeprefix("totalseg_bids.")
            for ep in entry_points(group="console_scripts") if ep.value.startswith("totalseg_bids.")}
    return sorted(mods)


STAGES = stage_modules()


def script_steps(script: str) -> list[tuple[str, str]]:
    r"""A documented bash script split at its numbered comments (``# 1. ...``): (title, script) per step,
    each script the lines before step 1 (``cd "$DATA"``...), every ``export`` of the steps before it, and
    the step's own lines, all verbatim: a step runs alone, after the ones before it ran.

    >>> [t for t, _ in script_steps('cd x\n# 1. a\nexport A=1\nrun a\n# 2. b\nrun b')]
    ['# 1. a', '# 2. b']
    >>> script_steps('cd x\n# 1. a\nexport A=1\nrun a\n# 2. b\nrun b')[1][1]
    'cd x\nexport A=1\n# 2. b\nrun b'
    """
    lines = script.splitlines()
    starts = [i for i, line in enumerate(lines) if re.match(r"# \d+\. ", line)]
    preamble = lines[: starts[0]]
    steps, exports = [], []
    for a, b in zip(starts, [*starts[1:], len(lines)]):
        body = lines[a:b]
        steps.append((body[0], "\n".join([*preamble, *exports, *body])))
        exports += [line for line in body if line.startswith("export ")]
    return steps
