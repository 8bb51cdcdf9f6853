"""Stage-level benchmarks: config -> nnU-Net conversion, scaling with the cohort size,
register -j 1 vs -j 2, prediction throughput."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

from . import bench_data as data
from .bench_common import Context, Row, available, interleave, run_cli, timed


# ======================================================== 3. config -> nnU-Net
def copy_and_reorient(config: Path, out: Path) -> None:
    """The seed workflow's conversion: for every case load the image and the
    label, reorient to RAS (closest canonical), save into imagesTr/labelsTr."""
    import nibabel as nib

    from totalseg_bids.core.bids import image_for_label

    cfg = json.loads(config.read_text(encoding="utf-8"))
    base = Path(cfg["DATASETS_PATH"])
    (out / "imagesTr").mkdir(parents=True)
    (out / "labelsTr").mkdir()
    n = 0
    for split in ("TRAINING", "VALIDATION"):
        for rel in cfg[split]:
            label = base / rel
            image = image_for_label(label)
            case = f"Sacrum_{n:04d}"
            img = nib.as_closest_canonical(nib.load(str(image)))
            nib.save(img, str(out / "imagesTr" / f"{case}_0000.nii.gz"))
            lab = nib.as_closest_canonical(nib.load(str(label)))
            nib.save(lab, str(out / "labelsTr" / f"{case}.nii.gz"))
            n += 1
    (out / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "T2w"}, "labels": {"background": 0, "sacrum": 1},
        "numTraining": n, "file_ending": ".nii.gz"}))


def plain_copy(config: Path, out: Path) -> None:
    """``cp`` of the same files (shutil.copyfile, what cp does), no checks."""
    from totalseg_bids.core.bids import image_for_label

    cfg = json.loads(config.read_text(encoding="utf-8"))
    base = Path(cfg["DATASETS_PATH"])
    (out / "imagesTr").mkdir(parents=True)
    (out / "labelsTr").mkdir()
    n = 0
    for split in ("TRAINING", "VALIDATION"):
        for rel in cfg[split]:
            label = base / rel
            case = f"Sacrum_{n:04d}"
            shutil.copyfile(image_for_label(label), out / "imagesTr" / f"{case}_0000.nii.gz")
            shutil.copyfile(label, out / "labelsTr" / f"{case}.nii.gz")
            n += 1


def bench_convert(ctx: Context) -> None:
    conv, why = available("totalseg_bids.convert_config_to_nnunet")
    n, shape = (20, (32, 32, 12)) if ctx.quick else (200, (96, 96, 32))
    root = ctx.tmp / "cohort" / "ds"
    t0 = time.perf_counter()
    labels = data.make_small_cohort(root, n, shape=shape, unique=True)
    cfg = data.write_label_config(ctx.tmp / "config.json", root, labels, n_val=n // 5)
    ctx.log(f"  {n}-case cohort written in {time.perf_counter() - t0:.1f} s")
    img_mib = sum(p.stat().st_size for p in (root).rglob("*_T2w.nii.gz")) / 2 ** 20
    size = f"{n} cases ({'x'.join(map(str, shape))} int16, oblique LPS; {img_mib:.1f} MiB of .nii.gz images)"
    bench = "Config -> nnU-Net raw dataset"
    counter = {"i": 0}

    def fresh(tag: str) -> Path:
        counter["i"] += 1
        out = ctx.tmp / f"out_{tag}_{counter['i']}"
        return out

    def ours(jobs=None):
        def run():
            out = fresh("ours")
            out.mkdir()
            t = time.perf_counter()
            conv.convert(cfg, out, 301, "SacrumBench", jobs=jobs)
            dt = time.perf_counter() - t
            shutil.rmtree(out, ignore_errors=True)
            return dt
        return run

    def reorient():
        out = fresh("reorient")
        dt = timed(lambda: copy_and_reorient(cfg, out))
        shutil.rmtree(out, ignore_errors=True)
        return dt

    def cp():
        out = fresh("cp")
        dt = timed(lambda: plain_copy(cfg, out))
        shutil.rmtree(out, ignore_errors=True)
        return dt

    methods = []
    if conv is not None:
        methods += [("ours", ours()), ("ours_j1", ours(1))]
    methods += [("reorient", reorient), ("cp", cp)]
    repeats = 1 if ctx.quick else 3
    res = interleave(methods, repeats)
    if conv is not None:
        ctx.add(Row(bench, size, "ours: convert_config_to_nnunet (default: symlinks, -j all cores)", res["ours"],
                    ours=True, note="validates every label (reads it) and the image header"))
        ctx.add(Row(bench, size, "ours with -j 1", res["ours_j1"]))
    else:
        ctx.add(Row(bench, size, "ours: convert_config_to_nnunet", status="not available", note=why))
    ctx.add(Row(bench, size, "copy-and-reorient (seed workflow: load, as_closest_canonical, save), serial",
                res["reorient"]))
    ctx.add(Row(bench, size, "plain cp of the same files (shutil.copyfile), serial", res["cp"]))


# ======================================================== 7. scaling
def bench_scaling(ctx: Context) -> None:
    conv, why_c = available("totalseg_bids.convert_config_to_nnunet")
    idc, why_i = available("totalseg_bids.init_data_config")
    from totalseg_bids.core.index import BidsIndex

    sizes = [10, 100] if ctx.quick else [10, 100, 1000]
    bench = "Scaling: index + config + convert"
    prev = None
    for n in sizes:
        root = ctx.tmp / f"n{n}" / "ds"
        t0 = time.perf_counter()
        data.make_small_cohort(root, n, shape=(16, 16, 8), unique=False)
        ctx.log(f"  {n}-subject tiny cohort written in {time.perf_counter() - t0:.1f} s")
        size = f"{n} subjects"
        repeats = 1 if (ctx.quick or n >= 1000) else 3
        stage_times: dict[str, list[float]] = {"index": [], "config": [], "convert": [], "total": []}
        missing = []
        for r in range(repeats):
            t = time.perf_counter()
            if idc is not None:
                labels = idc.query_bids([root], "LABEL", label_dir="reg-labels", label_suffix="_label-sacrum_seg")
            else:
                labels = [f.path for f in BidsIndex.scan(root / "derivatives" / "reg-labels")]
                missing.append("init_data_config")
            stage_times["index"].append(time.perf_counter() - t)
            cfg_path = ctx.tmp / f"n{n}" / f"config_{r}.json"
            t = time.perf_counter()
            if idc is not None:
                idc.write_config(idc.build_config(labels, type="LABEL", split_validation=0.2, split_test=0.0), cfg_path)
                stage_times["config"].append(time.perf_counter() - t)
            if conv is not None and idc is not None:
                out = ctx.tmp / f"n{n}" / f"nnunet_{r}"
                out.mkdir()
                t = time.perf_counter()
                conv.convert(cfg_path, out, 302, "Scaling")
                stage_times["convert"].append(time.perf_counter() - t)
                shutil.rmtree(out, ignore_errors=True)
            if stage_times["config"] and stage_times["convert"]:
                stage_times["total"].append(stage_times["index"][-1] + stage_times["config"][-1]
                                            + stage_times["convert"][-1])
        labels_desc = {"index": "index (init_data_config.query_bids -> BidsIndex.scan)",
                       "config": "config (build_config + write_config)",
                       "convert": "convert (convert_config_to_nnunet.convert, default)",
                       "total": "total"}
        for stage in ("index", "config", "convert", "total"):
            vals = stage_times[stage]
            if not vals:
                why = why_i if stage in ("config", "index") else (why_c or why_i)
                ctx.add(Row(bench, size, labels_desc[stage], status="not available", note=why or "needs config"))
                continue
            med = float(np.median(vals))
            note = f"{med / n * 1e3:.2f} ms per subject"
            if prev is not None and prev.get(stage):
                note += f"; x{med / prev[stage]:.1f} time for x{n / prev['n']:.0f} subjects"
            ctx.add(Row(bench, size, labels_desc[stage], vals, note=note))
        prev = {k: float(np.median(v)) for k, v in stage_times.items() if v}
        prev["n"] = n
        shutil.rmtree(ctx.tmp / f"n{n}", ignore_errors=True)


# ======================================================== register -j
def bench_jobs(ctx: Context) -> None:
    reg, why = available("totalseg_bids.register")
    if reg is None:
        ctx.add(Row("register -j 1 vs -j 2", "-", "register --method header", status="not available", note=why))
        return
    from totalseg_bids.testing.phantoms import generate

    n, spacing, templates = (4, 3.0, 1) if ctx.quick else (200, 1.0, 2)
    t0 = time.perf_counter()
    template = generate(ctx.tmp / "template", subjects=templates, ct_spacing=spacing, seed=5)
    root = ctx.tmp / "ds"
    data.clone_phantom_subjects(template, root, n)
    shutil.rmtree(template, ignore_errors=True)
    ctx.log(f"  {n} phantom subjects (CT {spacing:g} mm) ready in {time.perf_counter() - t0:.1f} s")
    size = f"{n} phantom subjects x 2 MRI (CT {spacing:g} mm)"
    out = root / "derivatives" / "reg-labels"
    errors = {}

    def run(jobs):
        def go():
            shutil.rmtree(out, ignore_errors=True)
            t = time.perf_counter()
            proc = run_cli(["-m", "totalseg_bids.register", "--path-img", str(root), "--method", "header",
                            "-j", str(jobs), "-q"], timeout=1200)
            dt = time.perf_counter() - t
            if proc.returncode != 0:
                errors[jobs] = (proc.stderr.strip().splitlines() or ["?"])[-1][:200]
            return dt
        return go

    res = interleave([("j1", run(1)), ("j2", run(2))], 1)
    written = len(list(out.rglob("*.nii.gz"))) if out.exists() else 0
    bench = "register -j 1 vs -j 2 (CLI, process start included)"
    ctx.add(Row(bench, size, "ours: register --method header -j 1", res["j1"], ours=True,
                note=errors.get(1, f"{written} labels written")))
    speedup = np.median(res["j1"]) / np.median(res["j2"])
    ctx.add(Row(bench, size, "ours: register --method header -j 2", res["j2"],
                note=errors.get(2, f"speed-up {speedup:.2f}x on 2 cores")))


# ======================================================== 5. prediction
def bench_predict(ctx: Context) -> None:
    from . import bench_predict

    bench_predict.run(ctx)
