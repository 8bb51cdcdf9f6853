"""Config -> nnU-Net at a realistic MRI size, against the original workflow's own
converter and plain ``cp``.

133 cases of 256x256x30 int16 MRI + uint8 label: 100 subjects, a third of them
with T1w and T2w (two cases), the rest T2w only. Three methods on the same
files, each in its own process as a user runs it:

* ours: ``python -m totalseg_bids.convert_config_to_nnunet`` (CLI, imports included);
* the original: ``convert_config_to_nnunet.py`` of neuropoly/totalspineseg at
  commit ``ca02097^`` (the last commit that has it), run as a script
  (``python .../convert_config_to_nnunet.py --config ... --path-out ...``). The
  harness extracts it from a git clone named by ``TOTALSEG_BIDS_BENCH_TOTALSPINESEG``
  (a clone of https://github.com/neuropoly/totalspineseg, or its git directory);
  without one the row says "not available". Its package ``__init__`` (which
  imports torchio and gryds for augmentation, not used by the conversion) is
  replaced by an empty file: this only removes import time from the original;
* ``cp`` of the same image and label files into ``imagesTr``/``labelsTr``.

Labels are named ``sub-XXXX_<contrast>_seg.nii.gz``: the original finds the
image by dropping the last ``_`` part of the label name, so it cannot read
``_label-sacrum_seg`` names.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import bench_data as data
from .bench_common import Context, Row, child_env, interleave

ORIGINAL_COMMIT = "ca02097^"
ORIGINAL_SCRIPT = "totalspineseg/data_management/convert_config_to_nnunet.py"
ENV_CLONE = "TOTALSEG_BIDS_BENCH_TOTALSPINESEG"


def make_cohort(root: Path, subjects: int, shape: tuple[int, int, int], templates: int = 4) -> list[Path]:
    """``subjects`` subjects with a T2w (every third also a T1w) and one label per
    image; ``templates`` distinct pairs are written, the others are byte copies
    (the content does not change the cost). Returns the label paths."""
    root.mkdir(parents=True, exist_ok=True)
    data.write_json(root / "dataset_description.json", data.DESCRIPTION)
    data.write_json(root / "derivatives" / "labels" / "dataset_description.json", data.deriv_description("labels"))
    made: list[tuple[Path, Path]] = []
    labels = []
    for i in range(subjects):
        sub = f"sub-{i:04d}"
        for contrast in (("T1w", "T2w") if i % 3 == 1 else ("T2w",)):
            img = root / sub / "anat" / f"{sub}_{contrast}.nii.gz"
            lab = root / "derivatives" / "labels" / sub / "anat" / f"{sub}_{contrast}_seg.nii.gz"
            fresh = len(made) < templates
            pair = data.write_case(img, lab, shape, len(made), None if fresh else made[len(labels) % templates])
            if fresh:
                made.append(pair)
            labels.append(lab)
    return labels


def extract_original(dest: Path) -> tuple[Path | None, str]:
    """The original converter extracted from a totalspineseg clone, or why not."""
    clone = os.environ.get(ENV_CLONE)
    if not clone:
        return None, f"set {ENV_CLONE} to a git clone of neuropoly/totalspineseg"
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", clone, "archive", ORIGINAL_COMMIT, "totalspineseg"],
                             capture_output=True)
    if archive.returncode != 0:
        return None, f"git archive {ORIGINAL_COMMIT} failed in {clone}"
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    (dest / "totalspineseg" / "__init__.py").write_text("")  # see the module docstring
    script = dest / ORIGINAL_SCRIPT
    return (script, "") if script.exists() else (None, f"{ORIGINAL_SCRIPT} not found at {ORIGINAL_COMMIT}")


def _subprocess(cmd: list[str], env: dict, errors: dict, key: str) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, encoding="utf-8", errors="replace", env=env, timeout=1800)
    dt = time.perf_counter() - t
    if proc.returncode != 0:
        errors[key] = (proc.stderr.strip().splitlines() or ["?"])[-1][:200]
    return dt


def bench_convert_mri(ctx: Context) -> None:
    subjects, shape = (12, (64, 64, 10)) if ctx.quick else (100, (256, 256, 30))
    root = ctx.tmp / "data" / "ds"
    t0 = time.perf_counter()
    labels = make_cohort(root, subjects, shape)
    n_val = len(labels) // 5
    rel = [p.relative_to(root.parent).as_posix() for p in labels]
    cfg = ctx.tmp / "config.json"
    cfg.write_text(json.dumps({"TYPE": "LABEL", "CONTRASTS": "t1_t2", "DATASETS_PATH": str(root.parent),
                               "TRAINING": rel[n_val:], "VALIDATION": rel[:n_val], "TESTING": []}))
    images = [data_image(p, root) for p in labels]
    mib = sum(p.stat().st_size for p in [*images, *labels]) / 2 ** 20
    ctx.log(f"  {len(labels)} cases written in {time.perf_counter() - t0:.1f} s ({mib:.0f} MiB)")
    size = (f"{len(labels)} cases of {'x'.join(map(str, shape))} int16 MRI + label ({subjects} subjects, "
            f"a third T1w + T2w; {mib:.0f} MiB .nii.gz)")
    bench = "Config -> nnU-Net, realistic MRI (CLI processes)"
    script, why = extract_original(ctx.tmp / "original")
    env = child_env()
    errors: dict[str, str] = {}
    counter = {"i": 0}

    def out_dir(tag: str) -> Path:
        counter["i"] += 1
        path = ctx.tmp / f"out_{tag}_{counter['i']}"
        path.mkdir()
        return path

    def method(tag: str, command):
        def go() -> float:
            out = out_dir(tag)
            dt = _subprocess(command(out), env, errors, tag)
            shutil.rmtree(out, ignore_errors=True)
            return dt
        return go

    ours = method("ours", lambda out: [sys.executable, "-m", "totalseg_bids.convert_config_to_nnunet", "--config",
                                       str(cfg), "--path-out", str(out), "-dnum", "300", "--labels", "sacrum", "-q"])
    original = method("original", lambda out: [sys.executable, str(script), "--config", str(cfg), "--path-out",
                                               str(out), "-dnum", "300"])
    cp = method("cp", lambda out: ["bash", "-c", 'mkdir -p "$0/imagesTr" "$0/labelsTr" && cp "$@" "$0/imagesTr"'
                                   f' && cp {" ".join(map(_quote, labels))} "$0/labelsTr"', str(out),
                                   *map(str, images)])
    methods = [("ours", ours), ("cp", cp)] + ([("original", original)] if script else [])
    if script:
        env["PYTHONPATH"] = str(script.parents[2]) + os.pathsep + env["PYTHONPATH"]
    res = interleave(methods, 1 if ctx.quick else 3, budget_s=120)
    ctx.add(Row(bench, size, "ours: python -m totalseg_bids.convert_config_to_nnunet (symlinks, checks)",
                res["ours"], ours=True, note=errors.get("ours", "validates every label and image header")))
    if script:
        ctx.add(Row(bench, size, f"original: totalspineseg {ORIGINAL_COMMIT} convert_config_to_nnunet.py",
                    res["original"], note=errors.get("original", "loads, reorients to RPI and saves every file")))
    else:
        ctx.add(Row(bench, size, "original: totalspineseg convert_config_to_nnunet.py", status="not available",
                    note=why))
    ctx.add(Row(bench, size, "cp of the same files (two cp processes)", res["cp"], note=errors.get("cp", "")))


def data_image(label: Path, root: Path) -> Path:
    """The raw image of a ``derivatives/labels`` label of :func:`make_cohort`."""
    rel = label.relative_to(root / "derivatives" / "labels")
    return root / rel.parent / rel.name.replace("_seg.nii.gz", ".nii.gz")


def _quote(path: Path) -> str:
    import shlex

    return shlex.quote(str(path))
