"""A phantom cohort end to end through the stage CLIs: seconds per subject per stage.

Stages (each one ``python -m totalseg_bids.<stage>`` process, imports included):
``bidsify`` of a DICOM source and of a NIfTI source (SynthRAD2023 layout),
``segment_ct --from-existing``, ``register --method header`` and ``rigid``,
``init_data_config``, ``convert_config_to_nnunet``, ``slices``, ``stats``, ``qc``.
Each runs with ``-j 1``, ``-j 2`` and, where the stage has ``--executor dask``, on a
local Dask cluster of 2 worker processes.

Sizes: ``TOTALSEG_BIDS_BENCH_COHORT_SIZES`` (comma-separated subject counts;
default 2 in quick mode, 10,100,1000 in full mode). ``bidsify`` runs on at most
:data:`BIDSIFY_MAX` subjects and ``register --method rigid`` on at most
:data:`RIGID_MAX` (their sources and cost grow fastest); the rows say so.
The slowest stage at the smallest size is profiled (cProfile, top 5 by own
time) and, in full mode, ``benchmarks/cohort.png`` plots seconds per subject.
"""

from __future__ import annotations

import os
import pstats
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import bench_data as data
from .bench_common import REPO, Context, Row, child_env

BIDSIFY_MAX = 20
RIGID_MAX = 1000  # about 0.15 s a subject: 1,000 subjects take ~2.5 min a variant
DASK_STAGES = ("segment_ct", "register header", "register rigid")
PLOT = REPO / "benchmarks" / "cohort.png"


def sizes(quick: bool) -> list[int]:
    raw = os.environ.get("TOTALSEG_BIDS_BENCH_COHORT_SIZES")
    if raw:
        return [int(x) for x in raw.split(",") if x.strip()]
    return [2] if quick else [10, 100, 1000]


def make_dataset(tmp: Path, n: int) -> tuple[Path, Path]:
    """A BIDS phantom of ``n`` subjects (CT + T1w + T2w) cloned from 2 generated
    ones, and a ``--from-existing`` folder holding their CT sacrum labels."""
    from totalseg_bids.testing.phantoms import generate

    template = generate(tmp / "template", subjects=2, ct_spacing=3.0, seed=11)
    root = tmp / "ds"
    data.clone_phantom_subjects(template, root, n)
    shutil.rmtree(template, ignore_errors=True)
    existing = tmp / "totalseg_out"
    for lab in sorted((root / "derivatives" / "labels").rglob("*_CT_label-sacrum_seg.nii.gz")):
        stem = lab.name.replace("_label-sacrum_seg.nii.gz", "")
        (existing / stem).mkdir(parents=True, exist_ok=True)
        shutil.move(str(lab), existing / stem / "sacrum.nii.gz")
    shutil.rmtree(root / "derivatives" / "labels", ignore_errors=True)
    return root, existing


def stage_commands(root: Path, existing: Path, work: Path) -> dict[str, tuple[list[str], bool]]:
    """Stage -> (arguments after ``python -m``, whether it takes ``-j``)."""
    cfg = work / "config.json"
    reg = root / "derivatives" / "reg-labels"
    return {
        "segment_ct": (["totalseg_bids.segment_ct", "--path-img", str(root), "--classes", "sacrum",
                        "--from-existing", str(existing), "--overwrite"], True),
        "register header": (["totalseg_bids.register", "--path-img", str(root), "--label", "sacrum",
                             "--method", "header", "--overwrite"], True),
        "register rigid": (["totalseg_bids.register", "--path-img", str(root), "--label", "sacrum",
                            "--method", "rigid", "--overwrite"], True),
        "init_data_config": (["totalseg_bids.init_data_config", "--bids-dir", str(root), "--label-dir",
                              "reg-labels", "--label-suffix", "_label-sacrum_seg", "--type", "LABEL",
                              "--split-validation", "0.2", "--split-test", "0.1", "-o", str(cfg)], False),
        "convert": (["totalseg_bids.convert_config_to_nnunet", "--config", str(cfg), "--path-out",
                     str(work / "nnunet"), "-dnum", "310", "--overwrite"], True),
        "slices": (["totalseg_bids.slices", "--config", str(cfg), "--out", str(work / "slices"), "--axis",
                    "sagittal", "--only-labelled", "--overwrite"], True),
        "stats": (["totalseg_bids.stats", "--config", str(cfg), "-o", str(work / "stats.tsv")], True),
        "qc": (["totalseg_bids.qc", "--labels", *sorted(map(str, reg.rglob("*_seg.nii.gz"))), "--qc",
                str(work / "qc")], True),
    }


def run_stage(args: list[str], env: dict, prefix: list[str] | None = None) -> tuple[float, str]:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, *(prefix or []), "-m", *args, "-q"], capture_output=True,
                          encoding="utf-8", errors="replace", env=env, timeout=3600)
    dt = time.perf_counter() - t
    err = "" if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["?"])[-1][:160]
    return dt, err


def bench_cohort(ctx: Context) -> None:
    env = child_env()
    bench = "Cohort end to end (stage CLIs, s per subject)"
    results: dict[str, dict[int, float]] = {}
    cluster = _dask_cluster()
    profiled = False
    try:
        for n in sizes(ctx.quick):
            _bidsify_rows(ctx, bench, n, env, results)
            t0 = time.perf_counter()
            work = ctx.tmp / f"n{n}"
            root, existing = make_dataset(work, n)
            ctx.log(f"  {n} phantom subjects ready in {time.perf_counter() - t0:.1f} s")
            slowest = None
            for stage in stage_commands(root, existing, work):
                if stage == "register rigid" and n > RIGID_MAX:
                    continue
                variants = [("-j 1", ["-j", "1"]), ("-j 2", ["-j", "2"])]
                if cluster is not None and stage in DASK_STAGES:
                    variants.append(("dask 2 workers",
                                     ["--executor", "dask", "--scheduler", cluster.scheduler_address]))
                for label, extra in variants:
                    args, takes_j = stage_commands(root, existing, work)[stage]  # qc lists the labels made so far
                    if not takes_j and label != "-j 1":
                        continue
                    dt, err = run_stage(args + (extra if takes_j else []), env)
                    note = err or f"{n} subjects; {dt:.1f} s in all"
                    ctx.add(Row(bench, f"{n} subjects", f"{stage} ({label})", [dt / n], ours=False, note=note))
                    if label == "-j 1" and not err:
                        results.setdefault(stage, {})[n] = dt / n
                        if slowest is None or dt > slowest[1]:
                            slowest = (stage, dt)
            if slowest and not profiled:
                _profile(ctx, bench, n, slowest[0], stage_commands(root, existing, work)[slowest[0]][0], env)
                profiled = True
            _linearity_rows(ctx, bench, n, results)
            shutil.rmtree(work, ignore_errors=True)
    finally:
        if cluster is not None:
            cluster.close()
    if not ctx.quick and results:
        plot(results, PLOT)
        ctx.log(f"  wrote {PLOT}")


def _bidsify_rows(ctx: Context, bench: str, n: int, env: dict, results: dict) -> None:
    from totalseg_bids.testing.layouts import write_layout

    k = min(n, BIDSIFY_MAX)
    for source, layout in (("dicom", "dicom"), ("synthrad2023", "synthrad2023")):
        src = write_layout(layout, ctx.tmp / f"src_{layout}_{k}", subjects=k)
        out = ctx.tmp / f"bids_{layout}_{k}"
        dt, err = run_stage(["totalseg_bids.bidsify", "--source", source, "--in", str(src), "--out", str(out)], env)
        note = err or f"{k} subjects{' (capped)' if k < n else ''}; {dt:.1f} s in all"
        ctx.add(Row(bench, f"{n} subjects", f"bidsify --source {source} (-j default)", [dt / k], note=note))
        if not err:
            results.setdefault(f"bidsify {source}", {})[n] = dt / k
        shutil.rmtree(src, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)


def _linearity_rows(ctx: Context, bench: str, n: int, results: dict) -> None:
    """Per-subject cost at this size over the smallest size's (1.0: linear)."""
    parts = []
    for stage, by_n in results.items():
        first = min(by_n)
        if n in by_n and first != n:
            parts.append(f"{stage} {by_n[n] / by_n[first]:.2f}")
    if parts:
        ctx.add(Row(bench, f"{n} subjects", "linearity: s/subject relative to the smallest size (-j 1)",
                    status="-", note="; ".join(parts)))


def _profile(ctx: Context, bench: str, n: int, stage: str, args: list[str], env: dict) -> None:
    out = ctx.tmp / "profile.out"
    dt, err = run_stage(args + ["-j", "1"], env, prefix=["-m", "cProfile", "-o", str(out)])
    if err or not out.exists():
        ctx.add(Row(bench, f"{n} subjects", f"profile of {stage}", status="error", note=err))
        return
    stats = pstats.Stats(str(out))
    top = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:5]
    total = sum(v[2] for v in stats.stats.values()) or 1.0
    desc = "; ".join(f"{Path(f).name}:{line}({fn}) {tt:.2f} s ({tt / total:.0%})"
                     for (f, line, fn), (_, _, tt, _, _) in top)
    ctx.add(Row(bench, f"{n} subjects", f"profile of the slowest stage, {stage} -j 1: top 5 by own time",
                status="-", note=desc))


def _dask_cluster():
    """A local Dask cluster of 2 single-threaded worker processes, or None."""
    try:
        from dask.distributed import LocalCluster
    except ImportError:
        return None
    os.environ["PYTHONPATH"] = child_env()["PYTHONPATH"]  # the workers import this checkout
    return LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)


def plot(results: dict[str, dict[int, float]], path: Path) -> None:
    """Seconds per subject against the cohort size, one line per stage (-j 1)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=80)
    for stage, by_n in sorted(results.items()):
        xs = sorted(by_n)
        ax.plot(xs, [by_n[x] for x in xs], marker="o", label=stage)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("subjects")
    ax.set_ylabel("seconds per subject (-j 1)")
    ax.set_title("Phantom cohort: cost per subject by stage (flat = linear)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
