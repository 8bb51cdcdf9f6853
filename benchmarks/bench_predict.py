"""Prediction throughput on the CPU or a GPU, with and without mirroring: one predictor
session (ours) against ``nnUNetv2_predict`` on the same folder with the same
settings, against one ``nnUNetv2_predict`` process per image (the seed
workflow), and nnU-Net's background workers against the sequential loop.

Full mode only. Trains the tiny model first (phantoms -> our converter ->
``nnUNetv2_plan_and_preprocess`` -> patch shrunk -> ``nnUNetv2_train`` with
``nnUNetTrainer_2epochs_10iters``), the way ``tests/support/nnunet.py``
does, then predicts the 20 MRI images (T1w + T2w) of 10 phantom subjects. Every
row also gives the mean Dice against the phantom truth, so that the timed
outputs are seen to agree; nothing is asserted.

Every method runs on the same device: ``TOTALSEG_BIDS_BENCH_DEVICE`` when set,
else what ``predict --device auto`` picks (a GPU when torch sees one). On a GPU both our predictor
and ``nnUNetv2_predict`` keep the whole sliding window on the device
(``perform_everything_on_device``, nnU-Net's default there).
"""

from __future__ import annotations

import functools
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
TTA_IMAGES = 6  # mirroring runs 8 forward passes per image in 3D: a subset keeps the run short
STEP = "0.5"  # tile step size: nnU-Net's default, the one our predictor uses
PATCH = [32, 48, 48]


@functools.lru_cache(maxsize=1)
def device() -> str:
    """The device every method of this benchmark uses (see the module docstring): ``predict``'s own choice."""
    from totalseg_bids.nnunet.engine import choose_device

    return choose_device(os.environ.get("TOTALSEG_BIDS_BENCH_DEVICE", "auto"))


def device_label(dev: str | None = None) -> str:
    """``CPU`` or ``GPU (cuda)`` for the rows' names (``dev`` defaults to :func:`device`).

    >>> device_label("cpu"), device_label("cuda")
    ('CPU', 'GPU (cuda)')
    """
    dev = dev or device()
    return "CPU" if dev == "cpu" else f"GPU ({dev})"


def _env(base: Path) -> dict:
    from totalseg_bids.nnunet.trainers import trainer_env

    env = dict(os.environ)
    env.update({"nnUNet_raw": str(base / "raw"), "nnUNet_preprocessed": str(base / "preprocessed"),
                "nnUNet_results": str(base / "results"), "nnUNet_def_n_proc": "1", "nnUNet_n_proc_DA": "0",
                "TOTALSEG_BIDS_NO_PROGRESS": "1", "PYTHONPATH": str(REPO) + os.pathsep + env.get("PYTHONPATH", "")})
    env.update(trainer_env({"nnUNet_extTrainer": ""}))
    return env


def predict_env(env: dict) -> dict:
    """The environment of every timed prediction: nnU-Net's own default thread
    count for the forward pass (the harness's ``nnUNet_def_n_proc=1``, right for
    training, would cap it at one thread and leave a core idle)."""
    return {k: v for k, v in env.items() if k != "nnUNet_def_n_proc"}


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
    log(f"  planned in {time.perf_counter() - t:.0f} s; training the tiny model on {device_label()}")
    t = time.perf_counter()
    _run(["nnUNetv2_train", str(DATASET_ID), "3d_fullres", "0", "-tr", TRAINER, "-device", device()], env, 1200)
    log(f"  trained in {time.perf_counter() - t:.0f} s")
    return Path(env["nnUNet_results"]) / folder / f"{TRAINER}__nnUNetPlans__3d_fullres", env



def truth_of(image: Path, ds: Path) -> Path:
    """The phantom's true sacrum mask of an MRI image (same grid)."""
    rel = image.relative_to(ds)
    return ds / "derivatives" / "ground_truth" / rel.parent / rel.name.replace(".nii.gz", "_label-sacrum_seg.nii.gz")


def dice(a, b) -> float:
    """Dice of two masks (foreground > 0); 1.0 when both are empty.

    >>> import numpy as np
    >>> dice(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0]))
    0.6666666666666666
    """
    a, b = a > 0, b > 0
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def _mask(path: Path, lcc: bool = False):
    """A mask's voxels; ``lcc``: after our largest-connected-component step (per label)."""
    import nibabel as nib
    import numpy as np

    data = np.asarray(nib.load(str(path)).dataobj)
    if lcc:
        from totalseg_bids.nnunet.postprocess import keep_largest

        data = keep_largest(data.astype(np.uint8))[0]
    return data


def score(preds: list[Path], images: list[Path], ds: Path, lcc: bool = False) -> float:
    """Mean Dice of predictions against the phantom truth (a missing prediction counts 0)."""
    values = [dice(_mask(p, lcc), _mask(truth_of(i, ds))) if p.is_file() else 0.0 for p, i in zip(preds, images)]
    return sum(values) / len(values)


def identical(first: list[Path], second: list[Path], lcc: bool = False) -> int:
    """How many pairs of masks are voxel for voxel the same (``lcc``: the second after our LCC step)."""
    import numpy as np

    return sum(1 for a, b in zip(first, second)
               if a.is_file() and b.is_file() and np.array_equal(_mask(a), _mask(b, lcc)))


def ours_outputs(images: list[Path], ds: Path) -> list[Path]:
    rel = [i.relative_to(ds) for i in images]
    return [ds / "derivatives" / "labels" / r.parent / r.name.replace(".nii.gz", "_label-sacrum_seg.nii.gz")
            for r in rel]


def run_ours(ds: Path, model_dir: Path, env: dict, tta: bool) -> tuple[float, str]:
    """``python -m totalseg_bids.predict`` on every image (its default -j for the device); seconds, error."""
    shutil.rmtree(ds / "derivatives" / "labels", ignore_errors=True)
    cmd = [sys.executable, "-m", "totalseg_bids.predict", "--bids-dir", str(ds), "--contrasts", "T1w", "T2w",
           "--model-dir", str(model_dir), "--device", device(), "--overwrite"] + ([] if tta else ["--no-tta"])
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, encoding="utf-8", errors="replace", timeout=3600)
    seconds = time.perf_counter() - t
    return seconds, "" if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["?"])[-1][:200]


def nnunet_folder(inp: Path, out: Path, env: dict, tta: bool) -> float:
    """``nnUNetv2_predict`` once on the whole folder, one preprocessing and one export worker."""
    cmd = ["nnUNetv2_predict", "-i", str(inp), "-o", str(out), "-d", str(DATASET_ID), "-c", "3d_fullres",
           "-tr", TRAINER, "-f", "0", "-device", device(), "-step_size", STEP, "-npp", "1", "-nps", "1"]
    t = time.perf_counter()
    _run(cmd + ([] if tta else ["--disable_tta"]), env, 3600)
    return time.perf_counter() - t


def mirroring_group(ctx: Context, ds: Path, images: list[Path], inp: Path, model_dir: Path, env: dict,
                    tta: bool, size: str) -> list[Path] | None:
    """Ours vs ``nnUNetv2_predict`` on the folder, same mirroring; Dice of both; our outputs."""
    bench = f"Prediction, {device_label()}, tiny 3d_fullres model, mirroring (TTA) {'on' if tta else 'off'}"
    flag = "" if tta else " --no-tta"
    ours_s, err = run_ours(ds, model_dir, env, tta)
    if err:
        ctx.add(Row(bench, size, f"ours: python -m totalseg_bids.predict{flag}", status="error", note=err))
        return None
    ours = ours_outputs(images, ds)
    kept = ctx.tmp / f"ours_tta{int(tta)}"
    shutil.copytree(ds / "derivatives" / "labels", kept)
    ours = [kept / p.relative_to(ds / "derivatives" / "labels") for p in ours]
    n = len(images)
    out = ctx.tmp / f"nn_out_tta{int(tta)}"
    folder_s = nnunet_folder(inp, out, env, tta)
    theirs = [out / f"case{i:03d}.nii.gz" for i in range(n)]
    same = identical(ours, theirs, lcc=True)
    ctx.add(Row(bench, size, f"ours: python -m totalseg_bids.predict{flag} (one session)", [ours_s / n], ours=True,
                note=f"per image; {n / ours_s * 60:.1f} images/min over {ours_s:.0f} s incl. start-up, model load, "
                     f"LCC and derivatives; Dice vs truth {score(ours, images, ds):.3f}; "
                     f"{same}/{n} masks voxel-identical to nnU-Net's after the same LCC"))
    ctx.add(Row(bench, size, f"nnUNetv2_predict on the folder{' --disable_tta' if not tta else ''} "
                             f"(one process, -npp 1 -nps 1, -step_size {STEP})", [folder_s / n],
                note=f"per image; {n / folder_s * 60:.1f} images/min over {folder_s:.0f} s; "
                     f"Dice vs truth {score(theirs, images, ds):.3f} as written (no LCC), "
                     f"{score(theirs, images, ds, lcc=True):.3f} after our LCC; no BIDS outputs"))
    return ours


def overlap_child(model_dir: str, images: list[str], out: str, repeats: int) -> dict:
    """In one process, one loaded predictor: the sequential loop that ``-j 1`` runs
    (``Engine.predict_one``: preprocess, forward, export, one image after the
    other) against nnU-Net's ``predict_from_files`` (``Engine.predict_many``),
    where background processes preprocess the next image and export the last one
    while this process runs the forward pass. Run as ``python -c`` so that the
    spawned workers do not re-import the harness."""
    from totalseg_bids.nnunet.engine import Engine, resolve_model

    engine = Engine(resolve_model(model_dir), device=device(), tta=False, jobs=1)
    cases = [[Path(i)] for i in images]
    ways = {"sequential": 0, "workers1": 1}
    times: dict[str, list[float]] = {k: [] for k in ways}
    for r in range(repeats):
        for way in (list(ways) if r % 2 == 0 else list(reversed(ways))):
            target = Path(out) / f"{way}_{r}"
            target.mkdir(parents=True)
            outs = [target / f"case{i:03d}" for i in range(len(cases))]
            t = time.perf_counter()
            if ways[way] == 0:
                for c, o in zip(cases, outs):
                    engine.predict_one(c, o)
            else:
                engine.jobs = ways[way]
                engine.predict_many(cases, outs)
            times[way].append(time.perf_counter() - t)
    return times


def run_overlap(ctx: Context, images: list[Path], ds: Path, model_dir: Path, env: dict, size: str) -> None:
    """Sequential predictor loop vs nnU-Net's background workers on the same images, no mirroring."""
    bench = (f"Prediction, {device_label()}, no TTA: sequential loop vs overlapped preprocessing/export "
             "(one loaded predictor)")
    out = ctx.tmp / "overlap"
    repeats = int(os.environ.get("TOTALSEG_BIDS_BENCH_REPEATS", "1"))  # each way: ~20 images
    code = ("import json,sys; from benchmarks.bench_predict import overlap_child; "
            "print('RESULT ' + json.dumps(overlap_child(sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], "
            "int(sys.argv[4]))))")
    proc = _run([sys.executable, "-c", code, str(model_dir), json.dumps([str(i) for i in images]), str(out),
                 str(repeats)], env, 3600)
    times = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])
    n = len(images)
    ref = [out / f"sequential_0/case{i:03d}.nii.gz" for i in range(n)]
    labels = {"sequential": "sequential loop, as -j 1 (Engine.predict_one: preprocess -> forward -> export)",
              "workers1": "predict_from_files, 1 preprocessing + 1 export worker (overlapped)"}
    for way, label in labels.items():
        preds = [out / f"{way}_0/case{i:03d}.nii.gz" for i in range(n)]
        per = [t / n for t in times[way]]
        ctx.add(Row(bench, size, label, per, ours=way == "sequential",
                    note=f"per image, nnU-Net part only (no LCC, no derivatives), {len(per)} alternating runs; "
                         f"Dice vs truth {score(preds, images, ds):.3f}; {identical(preds, ref)}/{n} masks "
                         "voxel-identical to the sequential loop's"))


def run(ctx: Context) -> None:
    pred, why = available("totalseg_bids.predict")
    if pred is None:
        ctx.add(Row(f"Prediction, {device_label()}", "-", "ours: predict (one session)", status="not available",
                    note=why))
        return
    from totalseg_bids.testing.phantoms import generate

    n_subjects = 10
    reuse = os.environ.get("TOTALSEG_BIDS_BENCH_REUSE")  # a kept predict folder: skip data + training
    if reuse:
        base = Path(reuse)
        ds = base / "bids" / "phantom"
        env = _env(base / "nnunet")
        model_dir = next((base / "nnunet" / "results").glob(f"Dataset{DATASET_ID}_*")) / \
            f"{TRAINER}__nnUNetPlans__3d_fullres"
        ctx.log(f"  reusing {base}")
    else:
        t0 = time.perf_counter()
        ds = generate(ctx.tmp / "bids" / "phantom", subjects=n_subjects, ct_spacing=3.0, seed=7)
        ctx.log(f"  {n_subjects} phantom subjects in {time.perf_counter() - t0:.0f} s")
        model_dir, env = train(ctx.tmp / "nnunet", ds, ctx.log)
    env = predict_env(env)
    images = sorted(ds.glob("sub-*/anat/*_T1w.nii.gz")) + sorted(ds.glob("sub-*/anat/*_T2w.nii.gz"))
    n = len(images)
    size = f"{n} phantom MRI images (~60x70x24 / 72x56x34 voxels)"
    inp = ctx.tmp / "nn_in"
    inp.mkdir()
    for i, p in enumerate(images):
        os.symlink(p, inp / f"case{i:03d}_0000.nii.gz")

    ours = mirroring_group(ctx, ds, images, inp, model_dir, env, False, size)
    if ours is not None and not os.environ.get("TOTALSEG_BIDS_BENCH_NO_SEED"):
        seed_workflow(ctx, images, ds, env, size)
    k = int(os.environ.get("TOTALSEG_BIDS_BENCH_TTA_IMAGES", TTA_IMAGES))
    few = images[:k // 2] + images[n // 2:n // 2 + k - k // 2]  # as many T1w as T2w
    tta_ds, tta_inp = subset(ctx.tmp / "tta", ds, few)
    mirroring_group(ctx, tta_ds, [tta_ds / i.relative_to(ds) for i in few], tta_inp, model_dir, env, True,
                    f"{len(few)} of the {size}")
    run_overlap(ctx, images, ds, model_dir, env, size)
    if not reuse:
        shutil.rmtree(ctx.tmp / "nnunet", ignore_errors=True)


def subset(root: Path, ds: Path, images: list[Path]) -> tuple[Path, Path]:
    """A BIDS dataset with copies of some images (and their truth) and an nnU-Net input folder of the same."""
    sub = root / ds.name
    sub.mkdir(parents=True)
    shutil.copy2(ds / "dataset_description.json", sub / "dataset_description.json")
    inp = root / "nn_in"
    inp.mkdir()
    for i, p in enumerate(images):
        for src in (p, truth_of(p, ds)):
            dst = sub / src.relative_to(ds)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
        os.symlink(sub / p.relative_to(ds), inp / f"case{i:03d}_0000.nii.gz")
    return sub, inp


def seed_workflow(ctx: Context, images: list[Path], ds: Path, env: dict, size: str) -> None:
    """The seed workflow: one ``nnUNetv2_predict`` process per image, no mirroring."""
    bench = f"Prediction, {device_label()}, tiny 3d_fullres model, mirroring (TTA) off"
    common = ["-d", str(DATASET_ID), "-c", "3d_fullres", "-tr", TRAINER, "-f", "0", "-device", device(),
              "-step_size", STEP, "-npp", "1", "-nps", "1", "--disable_tta"]
    preds = []
    t = time.perf_counter()
    for i, p in enumerate(images):
        one = ctx.tmp / f"nn_in_{i:03d}"
        one.mkdir()
        os.symlink(p, one / f"case{i:03d}_0000.nii.gz")
        _run(["nnUNetv2_predict", "-i", str(one), "-o", str(ctx.tmp / f"nn_out_{i:03d}"), *common], env, 600)
        preds.append(ctx.tmp / f"nn_out_{i:03d}" / f"case{i:03d}.nii.gz")
    per_s = time.perf_counter() - t
    ctx.add(Row(bench, size, f"seed workflow: nnUNetv2_predict once per image ({len(images)} processes)",
                [per_s / len(images)], note=f"per image; {len(images) / per_s * 60:.1f} images/min over "
                                            f"{per_s:.0f} s; Dice vs truth {score(preds, images, ds):.3f}"))
