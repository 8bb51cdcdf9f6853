"""Benchmarks of the core hot paths: BIDS indexing, label transfer, peak memory,
largest connected component."""

from __future__ import annotations

import inspect
import json
import time
import warnings
from pathlib import Path

import numpy as np

from . import bench_data as data
from .bench_common import Context, Row, available, interleave, run_cli, timed


# ====================================================================== 1. index
def bench_index(ctx: Context) -> None:
    from totalseg_bids.core.index import BidsIndex

    try:
        import bids  # pybids
        from bids import BIDSLayout
    except Exception as exc:  # noqa: BLE001
        BIDSLayout, why = None, f"not available ({exc})"
    sizes = [100] if ctx.quick else [100, 1000, 5000]
    pybids_per_subject = prev_n = None
    limit_s = 180.0
    for n in sizes:
        root = ctx.tmp / f"index_{n}"
        t0 = time.perf_counter()
        n_raw = data.make_index_tree(root, n)
        ctx.log(f"  index tree of {n} subjects written in {time.perf_counter() - t0:.1f} s")
        found = {}

        def ours(root=root, found=found):
            t = time.perf_counter()
            idx = BidsIndex.scan(root)
            dt = time.perf_counter() - t
            found["ours"] = len(idx)
            return dt

        def floor(root=root, found=found):
            t = time.perf_counter()
            files = data.scandir_walk(str(root))
            dt = time.perf_counter() - t
            found["floor"] = len(files)
            return dt

        def pybids(root=root, found=found):
            t = time.perf_counter()
            layout = BIDSLayout(str(root), validate=False)
            dt = time.perf_counter() - t
            found["pybids"] = len(layout.get(extension=".nii.gz", return_type="filename"))
            return dt

        methods = [("ours", ours), ("floor", floor)]
        skip_pybids = ""
        if BIDSLayout is None:
            skip_pybids = why
        elif pybids_per_subject is not None and pybids_per_subject * n > limit_s:
            skip_pybids = (f"skipped: predicted {pybids_per_subject * n:.0f} s "
                           f"(> {limit_s:.0f} s) from the {prev_n}-subject run")
        else:
            methods.append(("pybids", pybids))
        repeats = 2 if ctx.quick else (5 if n <= 100 else 3)
        res = interleave(methods, repeats, budget_s=1.0 if ctx.quick else 40.0)
        size = f"{n} subjects ({n_raw} raw NIfTI)"
        ctx.add(Row("BIDS index", size, "totalseg_bids BidsIndex.scan", res["ours"], ours=True,
                    note=f"{found['ours']} files"))
        if "pybids" in res:
            pybids_per_subject = min(res["pybids"]) / n
            prev_n = n
            ctx.add(Row("BIDS index", size, f"pybids {bids.__version__} BIDSLayout(validate=False)", res["pybids"],
                        note=f"{found['pybids']} .nii.gz (indexes sidecar metadata too)"))
        else:
            ctx.add(Row("BIDS index", size, "pybids BIDSLayout(validate=False)", status="skipped",
                        note=skip_pybids))
        ctx.add(Row("BIDS index", size, "os.scandir walk (floor, no parsing)", res["floor"],
                    note=f"{found['floor']} files incl. derivatives-free tree; ours/floor = "
                         f"{np.median(res['ours']) / np.median(res['floor']):.1f}x"))


# =============================================================== 2. label transfer
def register_adapter():
    """How 'ours' transfers one CT label onto one MRI grid.

    Returns ``(name, fn(ct_label, mri_image, out_path))``: the register stage's
    public one-pair API when it exists, else the core functions it is built on.
    """
    reg, why = available("totalseg_bids.register")
    if reg is not None:
        for fname in ("transfer_label", "register_pair", "transfer_pair", "register_one", "transfer"):
            fn = getattr(reg, fname, None)
            if callable(fn):
                return f"ours: register.{fname} (--method header)", _wrap_register(fn), ""
    from totalseg_bids.core.geometry import resample_label
    from totalseg_bids.core.nifti import load_grid, load_label, save_mask

    def core(ct_label, mri, out):
        lab = load_label(ct_label)
        grid = load_grid(mri)
        res = resample_label(lab.data, lab.affine, grid, mode="nearest")
        save_mask(res, grid.affine, out)

    note = "register API not available: load_label + resample_label + save_mask" + (f" ({why})" if why else "")
    return "ours: core load_label+resample_label+save_mask", core, note


def _wrap_register(fn):
    params = inspect.signature(fn).parameters

    def call(ct_label, mri, out):
        kwargs = {}
        if "method" in params:
            kwargs["method"] = "header"
        if "overwrite" in params:
            kwargs["overwrite"] = True
        return fn(ct_label, mri, out, **kwargs)

    return call


def _transfer_sizes(quick: bool, memory: bool = False):
    if quick:
        return {"ct_shape": (192, 192, 150 if not memory else 125), "mri_shape": (120, 120, 24),
                "ct_spacing": (2.08, 2.08, 2.67 if not memory else 3.2), "mri_spacing": (1.87, 1.87, 10.0)}
    return {"ct_shape": (512, 512, 1000 if memory else 400), "mri_shape": (320, 320, 60),
            "ct_spacing": (0.78, 0.78, 1.0), "mri_spacing": (0.7, 0.7, 4.0)}


def bench_transfer(ctx: Context) -> None:
    import nibabel as nib
    from nibabel.processing import resample_from_to

    from totalseg_bids.core.geometry import Grid, resample_label
    from totalseg_bids.core.nifti import load_label, save_mask

    try:
        from nilearn.image import resample_to_img
    except Exception:  # noqa: BLE001
        resample_to_img = None
    sz = _transfer_sizes(ctx.quick)
    folder = ctx.tmp / "transfer"
    case = data.make_transfer_case(folder, **sz)
    ct, mri = case["ct_label"], case["mri"]
    out_dir = folder / "out"
    out_dir.mkdir()
    name, ours_fn, ours_note = register_adapter()
    size = (f"{'x'.join(map(str, case['ct_shape']))} CT label ({case['fraction'] * 100:.2f} % voxels) -> "
            f"{'x'.join(map(str, case['mri_shape']))} oblique MRI")
    outputs = {}
    mri_img = nib.load(str(mri))
    target = (case["mri_shape"], case["mri_affine"])

    def ours():
        out = out_dir / "ours_label-sacrum_seg.nii.gz"
        out.unlink(missing_ok=True)
        dt = timed(lambda: ours_fn(ct, mri, out))
        outputs["ours"] = out
        return dt

    def nibabel_rs():
        out = out_dir / "nibabel.nii.gz"

        def run():
            img = nib.load(str(ct))
            res = resample_from_to(img, target, order=0)
            nib.save(res, str(out))
        dt = timed(run)
        outputs["nibabel"] = out
        return dt

    def nilearn_rs():
        out = out_dir / "nilearn.nii.gz"

        def run():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = resample_to_img(str(ct), mri_img, interpolation="nearest", force_resample=True,
                                      copy_header=True)
            nib.save(res, str(out))
        dt = timed(run)
        outputs["nilearn"] = out
        return dt

    holder = {}

    def floor():
        # NIfTI gzip read of the CT label + write of the output mask: no resampling at all
        out = out_dir / "floor.nii.gz"
        if "mask" not in holder:
            holder["mask"] = np.asanyarray(nib.load(str(outputs["ours"])).dataobj).copy()
        t0 = time.perf_counter()
        np.asanyarray(nib.load(str(ct)).dataobj)
        t_read = time.perf_counter() - t0
        t1 = time.perf_counter()
        save_mask(holder["mask"], case["mri_affine"], out)
        holder.setdefault("read", []).append(t_read)
        holder.setdefault("write", []).append(time.perf_counter() - t1)
        return time.perf_counter() - t0

    methods = [("ours", ours), ("nibabel", nibabel_rs)]
    if resample_to_img is not None:
        methods.append(("nilearn", nilearn_rs))
    methods.append(("floor", floor))
    repeats = 2 if ctx.quick else 5
    ours()  # warm-up: imports, page cache
    res = interleave(methods, repeats)
    ref = np.asanyarray(nib.load(str(outputs["ours"])).dataobj)
    n_ref = int(ref.sum())

    def agree(key):
        other = np.asanyarray(nib.load(str(outputs[key])).dataobj)
        diff = int((other.astype(bool) != ref.astype(bool)).sum())
        return f"differs from ours on {diff} of {n_ref} label voxels"

    ctx.add(Row("Label transfer (file to file)", size, name, res["ours"], ours=True, note=ours_note))
    ctx.add(Row("Label transfer (file to file)", size, "nibabel.processing.resample_from_to(order=0)",
                res["nibabel"], note=agree("nibabel")))
    if "nilearn" in res:
        ctx.add(Row("Label transfer (file to file)", size, "nilearn resample_to_img(nearest)", res["nilearn"],
                    note=agree("nilearn")))
    else:
        ctx.add(Row("Label transfer (file to file)", size, "nilearn resample_to_img(nearest)",
                    status="not available", note="nilearn not installed"))
    share = np.median(res["floor"]) / np.median(res["ours"]) * 100
    ctx.add(Row("Label transfer (file to file)", size, "nibabel NIfTI read + write only, no resampling (floor of a "
                "whole-array read)", res["floor"],
                note=f"read {np.median(holder['read']):.2f} s + write {np.median(holder['write']) * 1e3:.0f} ms "
                     f"= {share:.0f} % of ours"))

    # compute only (arrays in memory): the resampling step itself
    lab = load_label(ct)
    grid = Grid(case["mri_shape"], case["mri_affine"])
    img = nib.Nifti1Image(lab.data, lab.affine)

    def c_ours():
        return timed(lambda: resample_label(lab.data, lab.affine, grid, mode="nearest"))

    def c_nib():
        return timed(lambda: np.asanyarray(resample_from_to(img, target, order=0).dataobj))

    def c_nil():
        def run():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                np.asanyarray(resample_to_img(img, mri_img, interpolation="nearest", force_resample=True,
                                              copy_header=True).dataobj)
        return timed(run)

    methods = [("ours", c_ours), ("nibabel", c_nib)] + \
        ([("nilearn", c_nil)] if resample_to_img else [])
    res = interleave(methods, repeats)
    ctx.add(Row("Label transfer (resampling only, in memory)", size, "ours: resample_label (bbox-cropped)",
                res["ours"], ours=True))
    ctx.add(Row("Label transfer (resampling only, in memory)", size, "nibabel resample_from_to(order=0)",
                res["nibabel"]))
    if "nilearn" in res:
        ctx.add(Row("Label transfer (resampling only, in memory)", size, "nilearn resample_to_img(nearest)",
                    res["nilearn"]))


# ================================================================ 6. peak memory
def _proc_status(key: str) -> int:
    """A /proc/self/status figure in KiB (VmRSS, VmHWM)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def memory_child(argv: list[str]) -> int:
    """``--child-memory METHOD CT MRI OUT``: run one transfer, print RSS figures as JSON.

    The peak is the kernel's high-water mark of this process's resident set
    (``VmHWM``), reset after the imports (``/proc/self/clear_refs`` = 5), so it
    is the peak of the transfer itself on top of the imported libraries.
    (``getrusage(RUSAGE_SELF/CHILDREN).ru_maxrss`` is not usable here: Linux
    carries the forking parent's peak into it across fork + exec.)
    """
    method, ct, mri, out = argv
    import nibabel as nib
    from nibabel.processing import resample_from_to

    if method == "ours":
        name, fn, _ = register_adapter()
    if method == "nilearn":
        from nilearn.image import resample_to_img
    base = _proc_status("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        reset = True
    except OSError:
        reset = False
    t0 = time.perf_counter()
    if method == "ours":
        fn(Path(ct), Path(mri), Path(out))
    elif method == "nibabel":
        target = nib.load(mri)
        nib.save(resample_from_to(nib.load(ct), (target.shape[:3], target.affine), order=0), out)
        name = method
    elif method == "nilearn":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nib.save(resample_to_img(ct, mri, interpolation="nearest", force_resample=True, copy_header=True), out)
        name = method
    elif method == "read":
        np.asanyarray(nib.load(ct).dataobj)
        name = method
    elif method == "ours_read":
        from totalseg_bids.core.nifti import load_label

        load_label(Path(ct))
        name = method
    dt = time.perf_counter() - t0
    peak = _proc_status("VmHWM")
    print(json.dumps({"name": name, "baseline_kib": base, "peak_kib": peak, "seconds": dt, "reset": reset}))
    return 0


def bench_memory(ctx: Context) -> None:
    sz = _transfer_sizes(ctx.quick, memory=True)
    folder = ctx.tmp / "memory"
    t0 = time.perf_counter()
    case = data.make_transfer_case(folder, **sz)
    ctx.log(f"  memory case written in {time.perf_counter() - t0:.1f} s")
    in_mib = case["ct_bytes"] / 2 ** 20
    size = f"{'x'.join(map(str, case['ct_shape']))} uint8 CT label ({in_mib:.0f} MiB in memory)"
    rows = []
    methods = (("ours", None),
               ("nibabel", "nibabel resample_from_to(order=0), file to file"),
               ("nilearn", "nilearn resample_to_img(nearest), file to file"),
               ("read", "nibabel read of the CT label only (floor)"),
               ("ours_read", "ours: core.nifti.load_label, the whole CT label (streamed into the array)"))
    if ctx.quick:
        methods = methods[:2]
    for method, label in methods:
        proc = run_cli(["-m", "benchmarks.run", "--child-memory", method, str(case["ct_label"]),
                        str(case["mri"]), str(folder / f"out_{method}.nii.gz")], timeout=600)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["?"])[-1][:200]
            ctx.add(Row("Peak memory (RSS)", size, label or "ours", unit="MiB", ours=method == "ours",
                        status="error", note=tail))
            continue
        rec = json.loads(proc.stdout.strip().splitlines()[-1])
        peak = rec["peak_kib"] / 1024
        extra = (rec["peak_kib"] - rec["baseline_kib"]) / 1024
        rows.append(ctx.add(Row("Peak memory (RSS)", size, label or rec["name"], [peak], unit="MiB",
                                ours=method == "ours",
                                note=f"{peak / in_mib:.2f}x input; above the {rec['baseline_kib'] / 1024:.0f} MiB "
                                     f"of the imports: {extra:,.0f} MiB = {extra / in_mib:.2f}x input; "
                                     f"{rec['seconds']:.1f} s")))


# ================================================================= 4. largest CC
def lcc_adapter():
    """Our largest-connected-component function: predict's helper, else cc3d directly."""
    pred, why = available("totalseg_bids.predict")
    if pred is not None:
        for fname in ("keep_largest_component", "largest_connected_component", "keep_largest",
                      "largest_component", "keep_largest_connected_component"):
            fn = getattr(pred, fname, None)
            if callable(fn):
                def ours(mask, _fn=fn):
                    out = _fn(mask)
                    return out[0] if isinstance(out, tuple) else out
                return f"ours: predict.{fname} (cc3d, 26-conn)", ours, ""
    import cc3d

    def fallback(mask):
        return cc3d.largest_k(mask, k=1, connectivity=26) > 0

    return "ours: cc3d.largest_k(k=1, 26-conn) directly", fallback, \
        "predict's helper not available: cc3d directly" + (f" ({why})" if why else "")


def make_lcc_mask(shape) -> np.ndarray:
    """A predicted-sacrum-like mask: one main blob, 40 small false-positive islands
    and 300 speckles, all within the pelvis region around it (as nnU-Net's false
    positives are: near the anatomy, not spread over the whole field of view)."""
    rng = np.random.default_rng(3)
    mask = np.zeros(shape, np.uint8)
    scale = shape[0] / 512
    centre = np.array([s * 0.5 for s in shape])
    semi = np.array([58 * scale, 35 * scale, 45 * shape[2] / 400])
    data.ellipsoid_into(mask, centre, semi, 1)
    lo = np.maximum(centre - 2.5 * semi, 8)
    hi = np.minimum(centre + 2.5 * semi, np.array(shape) - 8)
    for _ in range(40):
        c = rng.uniform(lo, hi)
        data.ellipsoid_into(mask, c, [rng.uniform(1.5, 6) * max(scale, 0.5)] * 3, 1)
    idx = tuple(rng.integers(int(a), int(b), 300) for a, b in zip(lo, hi))
    mask[idx] = 1
    return mask


def bench_lcc(ctx: Context) -> None:
    from scipy import ndimage

    shape = (192, 192, 150) if ctx.quick else (512, 512, 400)
    mask = make_lcc_mask(shape)
    size = f"{'x'.join(map(str, shape))} mask ({mask.mean() * 100:.2f} % voxels)"
    name, ours_fn, ours_note = lcc_adapter()
    results = {}

    def ours():
        t = time.perf_counter()
        results["ours"] = np.asarray(ours_fn(mask.copy()))
        return time.perf_counter() - t

    def scipy_label():
        t = time.perf_counter()
        lab, n = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
        counts = np.bincount(lab.ravel())
        counts[0] = 0
        out = lab == counts.argmax()
        dt = time.perf_counter() - t
        results["scipy"] = out
        return dt

    methods = [("ours", ours), ("scipy", scipy_label)]
    try:
        from nnunetv2.postprocessing.remove_connected_components import (
            remove_all_but_largest_component_from_segmentation as nnunet_lcc,
        )

        def nnunet():
            t = time.perf_counter()
            results["nnunet"] = nnunet_lcc(mask, 1)
            return time.perf_counter() - t

        methods.append(("nnunet", nnunet))
    except Exception:  # noqa: BLE001
        nnunet_lcc = None
    try:
        from acvl_utils.morphology.morphology_helper import remove_all_but_largest_component_cc3d

        def acvl_cc3d():
            t = time.perf_counter()
            results["acvl_cc3d"] = remove_all_but_largest_component_cc3d(mask.astype(bool), connectivity=26)
            return time.perf_counter() - t

        methods.append(("acvl_cc3d", acvl_cc3d))
    except Exception:  # noqa: BLE001
        remove_all_but_largest_component_cc3d = None

    import cc3d

    def bbox_cc3d():
        t = time.perf_counter()
        nz = np.flatnonzero(mask.any(axis=(1, 2))), np.flatnonzero(mask.any(axis=(0, 2))), \
            np.flatnonzero(mask.any(axis=(0, 1)))
        out = np.zeros(mask.shape, bool)
        if all(len(a) for a in nz):
            sl = tuple(slice(a[0], a[-1] + 1) for a in nz)
            out[sl] = cc3d.largest_k(mask[sl], k=1, connectivity=26) > 0
        results["bbox"] = out
        return time.perf_counter() - t

    methods.append(("bbox", bbox_cc3d))
    repeats = 1 if ctx.quick else 3
    res = interleave(methods, repeats, budget_s=60)
    ref = results["ours"].astype(bool)

    def same(key):
        other = np.asarray(results[key]).astype(bool)
        return "same mask as ours" if np.array_equal(other, ref) else \
            f"DIFFERS from ours on {int((other != ref).sum())} voxels"

    ctx.add(Row("Largest connected component", size, name, res["ours"], ours=True,
                note=(ours_note + "; " if ours_note else "") + f"kept {int(ref.sum())} of {int(mask.sum())} voxels"))
    ctx.add(Row("Largest connected component", size, "scipy.ndimage.label (26-conn) + bincount", res["scipy"],
                note=same("scipy")))
    if "nnunet" in res:
        ctx.add(Row("Largest connected component", size,
                    "nnU-Net remove_all_but_largest_component_from_segmentation (skimage)", res["nnunet"],
                    note=same("nnunet")))
    if "acvl_cc3d" in res:
        ctx.add(Row("Largest connected component", size, "acvl_utils remove_all_but_largest_component_cc3d",
                    res["acvl_cc3d"], note=same("acvl_cc3d")))
    ctx.add(Row("Largest connected component", size, "cc3d.largest_k on the bounding-box crop (reference)",
                res["bbox"], note=same("bbox")))
