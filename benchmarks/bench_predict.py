"""Prediction throughput on the CPU: one predictor session (ours) against one
``nnUNetv2_predict`` process per image (the seed workflow).

Full mode only. Trains the tiny model first (phantoms -> our converter ->
``nnUNetv2_plan_and_preprocess`` -> patch shrunk -> ``nnUNetv2_train`` with
``nnUNetTrainer_2epochs_10iters`` on the CPU), the way ``tests/nnunet_fixtures.py``
does, then predicts the 20 MRI images (T1w + T2w) of 10 phantom subjects.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .bench_common import REPO, Context, Row, available

DATASET_ID = 399
DATASET_NAME = "BenchSacrum"
TRAINER = "nnUNetTrainer_2epochs_10iters"
PATCH = [32, 48, 48]


def _env(base: Path) -> dict:
    from totalseg_bids.nnunet_trainers import trainer_env

    env = dict(os.environ)
    env.update({"nnUNet_raw": str(base / "raw"), "nnUNet_preprocessed": str(base / "preprocessed"),
                "nnUNet_results": str(base / "results"), "nnUNet_def_n_proc": "1", "nnUNet_n_proc_DA": "0",
                "TOTALSEG_BIDS_NO_PROGRESS": "1", "PYTHONPATH": str(REPO) + os.pathsep + env.get("PYTHONPATH", "")})
    env.update(trainer_env({"nnUNet_extTrainer": ""}))
    return env


def _run(cmd: list[str], env: dict, timeout: float = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env, capture_output=True, encoding="utf-8", errors="replace", timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed ({proc.returncode}): "
                           f"{(proc.stderr.strip().splitlines() or ['?'])[-1][:200]}")
    return proc


def train(base: Path, ds: Path, log) -> tuple[Path, dict]:
    from totalseg_bids.convert_config_to_nnunet import convert

    env = _env(base)
    for key in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    gt = ds / "derivatives" / "ground_truth"
    rel = lambda p: p.relative_to(ds.parent).as_posix()  # noqa: E731

    def entries(subs):
        out = []
        for s in subs:
            out.append(rel(gt / f"sub-{s}" / "anat" / f"sub-{s}_T1w_label-sacrum_seg.nii.gz"))
            out.append(rel(gt / f"sub-{s}" / "anat" / f"sub-{s}_acq-sag_T2w_label-sacrum_seg.nii.gz"))
        return out

    cfg = {"TYPE": "LABEL", "CONTRASTS": "t1_t2", "DATASETS_PATH": str(ds.parent),
           "TRAINING": entries(["01", "02", "03"]), "VALIDATION": entries(["04"]), "TESTING": []}
    config = base / "train.json"
    config.write_text(json.dumps(cfg))
    t = time.perf_counter()
    res = convert(config, env["nnUNet_raw"], DATASET_ID, DATASET_NAME, jobs=1)
    folder = res.folder.name
    # nnU-Net 2.8 planning calls torch.set_num_threads(nnUNet_n_proc_DA): 0 (no DA workers, right
    # for CPU training) makes it fail, so planning gets 1
    _run(["nnUNetv2_plan_and_preprocess", "-d", str(DATASET_ID), "-c", "3d_fullres", "-np", "1", "-npfp", "1"],
         {**env, "nnUNet_n_proc_DA": "1"})
    plans_file = Path(env["nnUNet_preprocessed"]) / folder / "nnUNetPlans.json"
    plans = json.loads(plans_file.read_text(encoding="utf-8"))
    plans["configurations"]["3d_fullres"]["patch_size"] = PATCH
    plans["configurations"]["3d_fullres"]["batch_size"] = 2
    plans_file.write_text(json.dumps(plans, indent=2))
    split = Path(env["nnUNet_preprocessed"]) / folder / "splits_final.json"
    if not split.exists():
        split.write_text((res.folder / "splits_final.json").read_text(encoding="utf-8"))
    log(f"  planned in {time.perf_counter() - t:.0f} s; training the tiny model on the CPU")
    t = time.perf_counter()
    _run(["nnUNetv2_train", str(DATASET_ID), "3d_fullres", "0", "-tr", TRAINER, "-device", "cpu"], env, 1200)
    log(f"  trained in {time.perf_counter() - t:.0f} s")
    return Path(env["nnUNet_results"]) / folder / f"{TRAINER}__nnUNetPlans__3d_fullres", env


def run(ctx: Context) -> None:
    bench = "Prediction, CPU, tiny 3d_fullres model (TTA off for all)"
    pred, why = available("totalseg_bids.predict")
    if pred is None:
        ctx.add(Row(bench, "-", "ours: predict (one session)", status="not available", note=why))
        return
    from totalseg_bids.phantoms import generate

    n_subjects = 10
    reuse = os.environ.get("TOTALSEG_BIDS_BENCH_REUSE")  # a kept predict folder: skip data + training
    if reuse:
        base = Path(reuse)
        ds = base / "bids" / "phantom"
        env = _env(base / "nnunet")
        model_dir = next((base / "nnunet" / "results").glob(f"Dataset{DATASET_ID}_*")) / \
            f"{TRAINER}__nnUNetPlans__3d_fullres"
        shutil.rmtree(ds / "derivatives" / "labels", ignore_errors=True)
        ctx.log(f"  reusing {base}")
    else:
        t0 = time.perf_counter()
        ds = generate(ctx.tmp / "bids" / "phantom", subjects=n_subjects, ct_spacing=3.0, seed=7)
        ctx.log(f"  {n_subjects} phantom subjects in {time.perf_counter() - t0:.0f} s")
        model_dir, env = train(ctx.tmp / "nnunet", ds, ctx.log)
    images = sorted(ds.glob("sub-*/anat/*_T1w.nii.gz")) + sorted(ds.glob("sub-*/anat/*_T2w.nii.gz"))
    n = len(images)
    size = f"{n} phantom MRI images (~{'x'.join(['60', '70', '24'])} / 72x56x34 voxels)"

    # ours: one CLI call, one predictor session, derivatives written
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "totalseg_bids.predict", "--bids-dir", str(ds), "--contrasts",
                           "T1w", "T2w", "--model-dir", str(model_dir), "--device", "cpu", "--overwrite", "--no-tta"],
                          env=env, capture_output=True, encoding="utf-8", errors="replace", timeout=1800)
    ours_s = time.perf_counter() - t
    written = len([p for p in (ds / "derivatives" / "labels").rglob("*_label-sacrum_seg.nii.gz") if "_CT_" not in p.name])
    if proc.returncode != 0:
        ctx.add(Row(bench, size, "ours: python -m totalseg_bids.predict (one session)", status="error",
                    note=(proc.stderr.strip().splitlines() or ["?"])[-1][:200]))
        return
    ctx.add(Row(bench, size, "ours: python -m totalseg_bids.predict (one session, CLI)", [ours_s / n], ours=True,
                note=f"per image; {n / ours_s * 60:.1f} images/min over {ours_s:.0f} s incl. start-up, model load, "
                     f"LCC and derivatives ({written} outputs)"))

    # nnU-Net alone, one process for the folder (reference: what the session itself costs)
    inp = ctx.tmp / "nn_in"
    inp.mkdir()
    for i, p in enumerate(images):
        os.symlink(p, inp / f"case{i:03d}_0000.nii.gz")
    common = ["-d", str(DATASET_ID), "-c", "3d_fullres", "-tr", TRAINER, "-f", "0", "-device", "cpu",
              "-npp", "1", "-nps", "1", "--disable_tta"]
    t = time.perf_counter()
    _run(["nnUNetv2_predict", "-i", str(inp), "-o", str(ctx.tmp / "nn_out_all"), *common], env, 1800)
    folder_s = time.perf_counter() - t
    ctx.add(Row(bench, size, "nnUNetv2_predict on the folder (one process, nnU-Net only)", [folder_s / n],
                note=f"per image; {n / folder_s * 60:.1f} images/min; no LCC, no BIDS outputs"))

    # the seed workflow: one nnUNetv2_predict process per image
    t = time.perf_counter()
    for i, p in enumerate(images):
        one = ctx.tmp / f"nn_in_{i:03d}"
        one.mkdir()
        os.symlink(p, one / f"case{i:03d}_0000.nii.gz")
        _run(["nnUNetv2_predict", "-i", str(one), "-o", str(ctx.tmp / f"nn_out_{i:03d}"), *common], env, 600)
    per_s = time.perf_counter() - t
    ctx.add(Row(bench, size, "seed workflow: nnUNetv2_predict once per image (20 processes)", [per_s / n],
                note=f"per image; {n / per_s * 60:.1f} images/min over {per_s:.0f} s"))
    if not reuse:
        shutil.rmtree(ctx.tmp / "nnunet", ignore_errors=True)
