"""Bad-input catalogue: every stage x every kind of bad input.

Each case corrupts one file (or the config, or the output folder) of a private
copy of the phantom dataset, runs the stage's ``main()`` in-process (the same
``cli.run`` a user's ``python -m`` goes through, without paying the interpreter
start-up ~90 times), and checks the CLI contract:

* exit 1, exactly one ``totalseg_bids.<stage>: error: <file>: <problem>; <fix>``
  line naming the bad file, no traceback;
* no partial output: no ``.tmp-*`` left anywhere, no output for the bad input,
  and for all-or-nothing stages (init_data_config, convert_config_to_nnunet,
  stats) no new file at all;
* batch stages finish the good subject (sub-03) anyway;
* the whole input tree (sha256 of every file, symlink targets) is unchanged.

Paths with spaces and unicode must *work*: that is the positive control of
every stage. ``CATALOGUE`` at the bottom lists every stage x input x case.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import importlib
import io
import json
import os
import shutil
import subprocess
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from support import run_module

BAD_SUB, GOOD_SUB = "01", "03"
UNICODE_DIR = "my data ü 数据 (copy)"


# ============================================================== helpers
def tree_state(roots, exclude=()) -> dict[str, str]:
    """sha256 (or symlink target) of every file below ``roots`` except ``exclude``."""
    exclude = [Path(e) for e in exclude]
    state = {}
    for root in roots:
        root = Path(root)
        if root.is_file() or root.is_symlink():
            paths = [root]
        else:
            paths = [p for p in root.rglob("*") if p.is_symlink() or p.is_file()]
        for p in paths:
            if any(p == e or e in p.parents for e in exclude):
                continue
            if p.is_symlink():
                state[str(p)] = "link:" + os.readlink(p)
            else:
                state[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return state


def files_below(root: Path) -> set[Path]:
    return {p for p in Path(root).rglob("*") if p.is_file() or p.is_symlink()} if Path(root).exists() else set()


def run_main(module: str, argv) -> subprocess.CompletedProcess:
    """``python -m totalseg_bids.<module> argv`` in-process: exit code, stdout, stderr."""
    mod = importlib.import_module(f"totalseg_bids.{module}")
    out, err = io.StringIO(), io.StringIO()
    argv = [str(a) for a in argv]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = mod.main(argv)
        except SystemExit as exc:
            code = exc.code
        except BaseException:  # noqa: BLE001 - an escaped exception is a contract violation
            err.write(traceback.format_exc())
            code = "escaped"
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def error_lines(proc) -> list[str]:
    return [line for line in proc.stderr.splitlines() if ": error: " in line]


def load_fully(path: Path) -> np.ndarray:
    return np.asanyarray(nib.load(str(path)).dataobj)


def save_like(path: Path, data: np.ndarray, affine=None, template=None) -> None:
    """Overwrite ``path`` with ``data`` (test set-up, not an output of the code under test)."""
    img = template if template is not None else nib.load(str(path))
    affine = img.affine if affine is None else affine
    new = nib.Nifti1Image(data, affine)
    new.set_qform(affine, code=1)
    new.set_sform(affine, code=1)
    path.unlink()
    nib.save(new, str(path))


def annex_link(path: Path, ds: Path) -> None:
    """Replace ``path`` by a git-annex symlink whose content is absent."""
    key = "SHA256E-s123456--0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0.nii.gz"
    target = ds / ".git" / "annex" / "objects" / "Xq" / "7z" / key / key
    rel = os.path.relpath(target, path.parent)
    path.unlink()
    os.symlink(rel, path)


def corrupt(path: Path, kind: str, ds: Path) -> None:
    """Turn ``path`` into one of the catalogue's bad files."""
    if kind == "missing":
        path.unlink()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "notgzip":
        path.write_bytes(b"this is a text file, not a NIfTI image\n" * 20)
    elif kind == "notnifti":  # gzip, so it passes the magic-number check
        path.write_bytes(gzip.compress(b'{"a json": "file, gzipped, named .nii.gz"}\n' * 40))
    elif kind == "annex":
        annex_link(path, ds)
    else:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
        if kind == "4d":
            save_like(path, np.stack([data, data], axis=-1), template=img)
        elif kind in ("nan", "inf"):
            data = data.astype(np.float32)
            bad = np.nan if kind == "nan" else np.inf
            data[tuple(s // 2 for s in data.shape)] = bad
            data[0, 0, 0] = -bad
            save_like(path, data, template=img)
        elif kind == "float":  # a soft / linearly interpolated mask
            save_like(path, data.astype(np.float32) * 0.6, template=img)
        elif kind == "values":  # a binary _seg with a stray class 7
            data = data.astype(np.uint8).copy()
            nz = np.argwhere(data > 0)
            data[tuple(nz[: max(1, len(nz) // 3)].T)] = 7
            save_like(path, data, template=img)
        elif kind == "values02":  # a binary _seg whose foreground is 2, not 1
            save_like(path, (data > 0).astype(np.uint8) * 2, template=img)
        elif kind == "offgrid":  # the same file 5 m away: no overlap with anything
            aff = img.affine.copy()
            aff[:3, 3] += 5000.0
            save_like(path, data, affine=aff, template=img)
        else:  # pragma: no cover
            raise ValueError(kind)


@contextlib.contextmanager
def unwritable(folder: Path):
    """Make ``folder`` refuse new files: chmod a-w, or ``chattr +i`` as root
    (root ignores permission bits); skip when neither works."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)],
                                                        capture_output=True).returncode != 0:
        pytest.skip("running as root and chattr +i is unavailable: cannot make a folder read-only")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=False)


# ============================================================== fixtures
@pytest.fixture(scope="session")
def small_template(phantom_template, tmp_path_factory) -> Path:
    """The phantom dataset, sub-01 and sub-03 only (sub-02's two sessions make every
    batch twice as long without adding a kind of bad input)."""
    dst = tmp_path_factory.mktemp("bad_input_template") / "ds"
    shutil.copytree(phantom_template, dst, symlinks=True)
    for p in sorted(dst.rglob("sub-02*"), key=lambda p: len(p.parts)):
        if p.exists():
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    gt = dst / "derivatives" / "ground_truth"
    for p in gt.rglob("*"):
        if p.is_file() and ("vertebraeL5" in p.name or "phantom_dseg" in p.name):
            p.unlink()
    for p in (dst / "derivatives" / "labels").rglob("*total_dseg*"):  # register would fall back on it
        p.unlink()
    return dst


def gt_label(ds: Path, sub: str, contrast: str = "T2w") -> Path:
    stem = f"sub-{sub}_acq-sag_T2w" if contrast == "T2w" else f"sub-{sub}_{contrast}"
    return ds / "derivatives" / "ground_truth" / f"sub-{sub}" / "anat" / f"{stem}_label-sacrum_seg.nii.gz"


def image(ds: Path, sub: str, contrast: str = "T2w") -> Path:
    stem = f"sub-{sub}_acq-sag_T2w" if contrast == "T2w" else f"sub-{sub}_{contrast}"
    return ds / f"sub-{sub}" / "anat" / f"{stem}.nii.gz"


def ct_label(ds: Path, sub: str) -> Path:
    return ds / "derivatives" / "labels" / f"sub-{sub}" / "anat" / f"sub-{sub}_CT_label-sacrum_seg.nii.gz"


def write_config(ds: Path, path: Path, training, testing, validation=()) -> Path:
    rel = lambda p: p if isinstance(p, dict) else Path(p).relative_to(ds.parent).as_posix()  # noqa: E731
    cfg = {"TYPE": "LABEL", "CONTRASTS": "t1_t2", "DATASETS_PATH": str(ds.parent),
           "TRAINING": [rel(p) for p in training], "VALIDATION": [rel(p) for p in validation],
           "TESTING": [rel(p) for p in testing]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    return path


def default_config(ds: Path, path: Path) -> Path:
    return write_config(ds, path, [gt_label(ds, BAD_SUB, "T1w"), gt_label(ds, BAD_SUB, "T2w")],
                        [gt_label(ds, GOOD_SUB, "T1w"), gt_label(ds, GOOD_SUB, "T2w")])


# ============================================================== stages
@dataclass
class Setup:
    argv: list
    out: Path                      # the output folder (created, empty, before the run)
    inputs: list                   # roots whose content must not change
    targets: dict                  # name -> file the catalogue corrupts
    good: list = field(default_factory=list)   # outputs (paths or globs below out) a batch must still write
    atomic: bool | None = False    # True: all-or-nothing (no file at all on error); None: either
                                   # nothing, or a batch whose good items completed


def setup_segment_ct(ds: Path, tmp: Path) -> Setup:
    ts = tmp / "ts_out"
    for sub in (BAD_SUB, GOOD_SUB):
        (ts / f"sub-{sub}_CT").mkdir(parents=True)
        src = ds / "derivatives" / "ground_truth" / f"sub-{sub}" / "anat" / f"sub-{sub}_CT_label-sacrum_seg.nii.gz"
        shutil.copyfile(src, ts / f"sub-{sub}_CT" / "sacrum.nii.gz")
    out = ds / "derivatives" / "ts-labels"
    return Setup(["--path-img", ds, "--from-existing", ts, "--path-out", out, "-j", "1"], out, [ds, ts],
                 {"ct": ds / f"sub-{BAD_SUB}" / "anat" / f"sub-{BAD_SUB}_CT.nii.gz",
                  "existing": ts / f"sub-{BAD_SUB}_CT" / "sacrum.nii.gz"},
                 good=[out / f"sub-{GOOD_SUB}" / "anat" / f"sub-{GOOD_SUB}_CT_label-sacrum_seg.nii.gz"])


def setup_register(ds: Path, tmp: Path) -> Setup:
    out = ds / "derivatives" / "reg-labels"
    # one contrast: one bad CT label then breaks exactly one pair (two pairs: test_one_bad_file_two_items)
    return Setup(["--path-img", ds, "--path-out", out, "--contrasts", "T2w", "-j", "1"], out, [ds],
                 {"ct_label": ct_label(ds, BAD_SUB), "mri": image(ds, BAD_SUB)},
                 good=[out / f"sub-{GOOD_SUB}" / "anat" / f"sub-{GOOD_SUB}_acq-sag_T2w_label-sacrum_seg.nii.gz"])


def setup_init_data_config(ds: Path, tmp: Path) -> Setup:
    listing = tmp / "lists" / "train.txt"
    listing.parent.mkdir()
    listing.write_text("".join(f"{gt_label(ds, s, c)}\n" for s in (BAD_SUB, GOOD_SUB) for c in ("T1w", "T2w")))
    out = tmp / "out"
    return Setup(["--txt", listing, "--type", "LABEL", "-o", out / "config.json", "--check-geometry"], out,
                 [ds, listing.parent], {"label": gt_label(ds, BAD_SUB), "image": image(ds, BAD_SUB),
                                        "list": listing}, atomic=True)


def setup_convert(ds: Path, tmp: Path) -> Setup:
    cfg = default_config(ds, tmp / "configs" / "config.json")
    out = tmp / "nnUNet_raw"
    return Setup(["--config", cfg, "--path-out", out, "-dnum", "7", "-j", "1"], out, [ds, cfg.parent],
                 {"label": gt_label(ds, BAD_SUB), "image": image(ds, BAD_SUB), "config": cfg}, atomic=True)


def setup_crop(ds: Path, tmp: Path) -> Setup:
    out = ds / "derivatives" / "cropped"
    return Setup(["--path-img", ds, "--contrasts", "T2w", "--roi-dir", "labels", "--roi-label", "sacrum",
                  "--path-out", out, "-j", "1"], out, [ds],
                 {"image": image(ds, BAD_SUB), "roi": ct_label(ds, BAD_SUB)},
                 good=[out / f"sub-{GOOD_SUB}" / "anat" / f"sub-{GOOD_SUB}_acq-sag_desc-cropped_T2w.nii.gz"])


def setup_slices(ds: Path, tmp: Path) -> Setup:
    cfg = default_config(ds, tmp / "configs" / "config.json")
    out = tmp / "slices"
    return Setup(["--config", cfg, "--out", out, "-j", "1", "--only-labelled", "--empty-fraction", "0"], out,
                 [ds, cfg.parent], {"label": gt_label(ds, BAD_SUB), "image": image(ds, BAD_SUB), "config": cfg},
                 good=[f"images/*/sub-{GOOD_SUB}_acq-sag_T2w_*.png"], atomic=None)


def setup_stats(ds: Path, tmp: Path) -> Setup:
    cfg = default_config(ds, tmp / "configs" / "config.json")
    out = tmp / "stats"
    return Setup(["--config", cfg, "-o", out / "stats.tsv", "--json", out / "stats.json", "-j", "1"], out,
                 [ds, cfg.parent], {"label": gt_label(ds, BAD_SUB), "image": image(ds, BAD_SUB), "config": cfg},
                 atomic=True)


def setup_qc(ds: Path, tmp: Path) -> Setup:
    out = tmp / "qc"
    return Setup(["--labels", gt_label(ds, BAD_SUB), gt_label(ds, GOOD_SUB), "--qc", out, "-j", "1"], out, [ds],
                 {"label": gt_label(ds, BAD_SUB), "image": image(ds, BAD_SUB)},
                 good=[out / "entries" / f"sub-{GOOD_SUB}_acq-sag_T2w_label-sacrum_seg.json"])


SETUPS: dict[str, Callable[[Path, Path], Setup]] = {
    "segment_ct": setup_segment_ct, "register": setup_register, "init_data_config": setup_init_data_config,
    "convert_config_to_nnunet": setup_convert, "crop": setup_crop, "slices": setup_slices,
    "stats": setup_stats, "qc": setup_qc,
}


# ------------------------------------------------- config- and folder-level bad inputs
def _cfg_entries(s: Setup, ds: Path) -> dict:
    return json.loads(Path(s.targets["config"]).read_text(encoding="utf-8"))


def special(stage: str, kind: str, s: Setup, ds: Path, tmp: Path) -> str:
    """Apply a non-file bad input; return the text the error line must contain."""
    if kind == "othersubject":  # the label of sub-03 given as the label of sub-01's image
        if stage == "register":
            s.argv += ["--mri", image(ds, BAD_SUB), "--ct-label", ct_label(ds, GOOD_SUB)]
            s.good = []  # an explicit pair is the whole batch
            return ct_label(ds, GOOD_SUB).name
        if stage == "qc":
            s.argv[:] = ["--images", image(ds, BAD_SUB), "--labels", gt_label(ds, GOOD_SUB), "--qc", s.out, "-j", "1"]
            s.good = []
            return gt_label(ds, GOOD_SUB).name
        cfg = _cfg_entries(s, ds)
        rel = lambda p: p.relative_to(ds.parent).as_posix()  # noqa: E731
        cfg["TRAINING"][1] = {"IMAGE": rel(image(ds, BAD_SUB)), "LABEL": rel(gt_label(ds, GOOD_SUB))}
        s.targets["config"].write_text(json.dumps(cfg, indent=2))
        return gt_label(ds, GOOD_SUB).name
    if kind == "duplicate":
        cfg = _cfg_entries(s, ds)
        cfg["TRAINING"].append(cfg["TRAINING"][0])
        s.targets["config"].write_text(json.dumps(cfg, indent=2))
        return f"sub-{BAD_SUB}_T1w"
    if kind == "twosplits":  # sub-01's T2w in TRAINING, its T1w in TESTING
        cfg = _cfg_entries(s, ds)
        cfg["TESTING"].append(cfg["TRAINING"].pop(0))
        s.targets["config"].write_text(json.dumps(cfg, indent=2))
        return f"sub-{BAD_SUB}"
    if kind == "notraining":  # a config without its TRAINING list
        cfg = _cfg_entries(s, ds)
        del cfg["TRAINING"]
        s.targets["config"].write_text(json.dumps(cfg, indent=2))
        return (s.targets["config"].name, "TRAINING")
    if kind == "outdir":  # -o names an existing folder
        out = Path(s.argv[s.argv.index("-o") + 1])
        out.mkdir(parents=True)
        return (out.name, "folder")
    if kind == "sidecar":  # the label's JSON sidecar listed as a label
        sidecar = gt_label(ds, BAD_SUB).with_name(gt_label(ds, BAD_SUB).name.replace(".nii.gz", ".json"))
        if not sidecar.exists():
            sidecar.write_text('{"Description": "sidecar"}\n')
        listing = s.targets["list"]
        listing.write_text(listing.read_text(encoding="utf-8") + f"{sidecar}\n")
        return sidecar.name
    if kind == "textlabel":  # a text file named _seg.nii.gz, without --check-geometry
        s.argv.remove("--check-geometry")
        corrupt(s.targets["label"], "notgzip", ds)
        return s.targets["label"].name
    if kind == "escape":  # a relative entry climbing out of DATASETS_PATH
        cfg = _cfg_entries(s, ds)
        outside = tmp / "outside" / "ds"
        shutil.copytree(ds, outside, symlinks=True, ignore=shutil.ignore_patterns("derivatives"))
        shutil.copytree(ds / "derivatives", outside / "derivatives", symlinks=True)
        cfg["TRAINING"][0] = "../outside/ds/" + str(cfg["TRAINING"][0]).split("/", 1)[1]
        s.targets["config"].write_text(json.dumps(cfg, indent=2))
        return (s.targets["config"].name, "outside DATASETS_PATH")
    if kind == "notype":  # a config without TYPE
        cfg = _cfg_entries(s, ds)
        del cfg["TYPE"]
        s.targets["config"].write_text(json.dumps(cfg, indent=2))
        return (s.targets["config"].name, "TYPE")
    if kind == "outfile":  # the output folder option names an existing file
        flag = next(f for f in ("--path-out", "--out", "--qc", "-o") if f in s.argv)
        out = Path(s.argv[s.argv.index(flag) + 1])
        target = out if flag != "-o" else out.parent
        if target.is_dir():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("a file where the output folder goes\n")
        s.out, s.good, s.atomic = tmp / "unused-out", [], True
        return target.name
    if kind == "idcollision":
        other = s.out / "Dataset007_SomeoneElses"
        other.mkdir(parents=True)
        (other / "dataset.json").write_text('{"name": "SomeoneElses"}\n')
        return "Dataset007_SomeoneElses"
    raise ValueError(kind)  # pragma: no cover


# ============================================================== the catalogue
FILE_KINDS = ("missing", "empty", "truncated", "notgzip", "notnifti", "4d", "nan", "float", "values", "offgrid",
              "annex")
#: (stage, target, kind). ``target`` None: a config / folder level bad input.
CATALOGUE = [
    *[("segment_ct", "ct", k) for k in ("empty", "truncated", "notgzip", "notnifti", "4d", "annex")],
    *[("segment_ct", "existing", k) for k in ("missing", "truncated", "notnifti", "4d", "float", "values",
                                              "offgrid")],
    *[("register", "ct_label", k) for k in ("missing", "empty", "truncated", "notgzip", "notnifti", "4d", "nan",
                                            "float", "values", "offgrid", "annex")],
    *[("register", "mri", k) for k in ("empty", "truncated", "notnifti", "4d", "offgrid", "annex")],
    ("register", None, "othersubject"),
    *[("init_data_config", "label", k) for k in ("missing", "empty", "truncated", "notnifti", "4d", "float",
                                                 "values", "offgrid", "annex")],
    *[("init_data_config", "image", k) for k in ("missing", "annex")],  # reads image headers only
    *[("init_data_config", None, k) for k in ("sidecar", "textlabel", "outdir")],
    *[("convert_config_to_nnunet", "label", k) for k in ("missing", "empty", "truncated", "notgzip", "notnifti",
                                                         "4d", "float", "values", "offgrid", "annex")],
    *[("convert_config_to_nnunet", "image", k) for k in ("missing", "truncated", "notnifti", "4d", "nan",
                                                         "annex")],
    *[("convert_config_to_nnunet", None, k) for k in ("othersubject", "duplicate", "twosplits", "idcollision",
                                                      "notraining")],
    *[("crop", "image", k) for k in ("empty", "truncated", "notnifti", "4d", "nan", "annex")],
    *[("crop", "roi", k) for k in ("truncated", "float", "4d", "offgrid")],
    *[("slices", "image", k) for k in ("missing", "truncated", "4d", "nan")],
    *[("slices", "label", k) for k in ("truncated", "float", "values", "offgrid")],
    *[("slices", None, k) for k in ("othersubject", "duplicate", "twosplits", "notraining")],
    *[("stats", "label", k) for k in ("missing", "truncated", "notnifti", "4d", "float", "values02")],
    ("stats", "image", "nan"),
    *[("stats", None, k) for k in ("duplicate", "notraining", "outdir")],
    *[("qc", "label", k) for k in ("missing", "truncated", "notnifti", "4d", "float", "values")],
    ("qc", "image", "truncated"),
    ("qc", None, "othersubject"),
]

#: The same classes of bad input swept over every stage that can meet them: +/-Inf intensities,
#: config entries escaping DATASETS_PATH, a config missing a required key, an output folder
#: option naming an existing file.
SWEEP = [
    *[(stage, "image", "inf") for stage in ("convert_config_to_nnunet", "crop", "slices", "stats")],
    ("register", "ct_label", "inf"),  # the MRI's voxels matter to intensity methods only ("segment_ct", "ct", "nan"),
    ("segment_ct", "ct", "inf"), ("qc", "image", "nan"),
    *[(stage, None, k) for stage in ("convert_config_to_nnunet", "slices", "stats") for k in ("escape", "notype")],
    *[(stage, None, "outfile") for stage in ("segment_ct", "register", "convert_config_to_nnunet", "crop", "slices",
                                             "stats", "qc")],
]
CATALOGUE += SWEEP

#: Known contract violations, one per case, kept visible until the stage is fixed.
XFAIL: dict[tuple, str] = {}


def _param(case):
    stage, target, kind = case
    marks = [pytest.mark.xfail(strict=True, reason=XFAIL[case])] if case in XFAIL else []
    return pytest.param(*case, id=f"{stage}-{target or 'cfg'}-{kind}", marks=marks)


@pytest.mark.parametrize("stage,target,kind", [_param(c) for c in CATALOGUE])
def test_bad_input(stage, target, kind, small_template, tmp_path):
    ds = tmp_path / "ds"
    shutil.copytree(small_template, ds, symlinks=True)
    s = SETUPS[stage](ds, tmp_path)
    if target is None:
        needle = special(stage, kind, s, ds, tmp_path)
    else:
        path = s.targets[target]
        corrupt(path, kind, ds)
        needle = path.name
        if stage in ("register", "crop") and kind == "annex":
            s.good = []  # absent annexed inputs stop the run before any work (one `datalad get`)
    s.out.mkdir(parents=True, exist_ok=True)
    before_inputs = tree_state(s.inputs, exclude=[s.out])
    before_out = files_below(s.out)

    proc = run_main(stage, s.argv)

    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = error_lines(proc)
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith(f"totalseg_bids.{stage}: error: "), line
    for text in (needle if isinstance(needle, tuple) else (needle,)):
        assert text in line, (text, line)
    assert "; " in line, f"no fix after the problem: {line}"
    assert "internal error" not in line, line
    # no partial output
    leftovers = list(tmp_path.rglob(".tmp-*"))
    assert not leftovers, leftovers
    new = files_below(s.out) - before_out
    if stage == "qc" and kind not in ("othersubject", "outfile"):
        # QC's output is the report of bad inputs: the bad file is an entry
        # flagged "error", never an "ok" one; the command still exits 1 (above)
        records = [json.loads(p.read_text(encoding="utf-8")) for p in new if p.suffix == ".json"]
        bad_records = [r for r in records if needle in (str(r.get("label")) + str(r.get("image")))]
        assert bad_records and all(r["status"] == "error" for r in bad_records), records
    elif s.atomic:
        assert not new, sorted(map(str, new))
    else:
        # no output for the bad input: a bad image/MRI/T2w label spoils its own outputs only,
        # a bad CT, CT label or ROI all outputs of the subject
        prefix = f"sub-{BAD_SUB}_" if target in ("ct", "ct_label", "roi", "existing") else f"sub-{BAD_SUB}_acq-sag_T2w"
        bad = [p for p in new if p.name.startswith(prefix) and p.suffix in (".gz", ".png", ".npy", ".tif")]
        assert not bad, sorted(map(str, bad))
        if new or s.atomic is False:
            check_good(s, proc)
    for p in new:
        if p.name.endswith(".nii.gz"):
            load_fully(p)
    # inputs unchanged
    assert tree_state(s.inputs, exclude=[s.out]) == before_inputs


@pytest.mark.parametrize("kind,words", [("missing", "missing"), ("values", "0 and 1"), ("values02", "0 and 1")])
def test_qc_says_what_is_wrong(kind, words, small_template, tmp_path):
    """QC names the problem: a missing label is missing, a _seg holding {0, 2} breaks the 0/1 rule."""
    ds = tmp_path / "ds"
    shutil.copytree(small_template, ds, symlinks=True)
    s = setup_qc(ds, tmp_path)
    label = s.targets["label"]
    if kind == "values02":
        img = nib.load(str(label))
        save_like(label, (np.asanyarray(img.dataobj) > 0).astype(np.uint8) * 2, template=img)
    else:
        corrupt(label, kind, ds)
    proc = run_main("qc", s.argv)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    lines = error_lines(proc)
    assert len(lines) == 1 and label.name in lines[0] and words in lines[0], lines
    assert "not a BIDS file name" not in lines[0], lines
    rec = json.loads((s.out / "entries" / f"{label.name[:-7]}.json").read_text(encoding="utf-8"))
    assert rec["status"] == "error" and any(words in f["message"] for f in rec["flags"]), rec["flags"]


def check_good(s: Setup, proc) -> None:
    """The good subject's outputs exist and load completely."""
    for good in s.good:
        found = [good] if isinstance(good, Path) else list(s.out.glob(good))
        assert found and all(p.exists() for p in found), (good, proc.stderr)
        for p in found:
            if p.name.endswith(".nii.gz"):
                load_fully(p)
            elif p.suffix == ".json":
                json.loads(p.read_text(encoding="utf-8"))


def test_one_bad_file_two_items_is_one_line(small_template, tmp_path):
    """One bad CT label feeding two MRIs (T1w and T2w): still one error line."""
    ds = tmp_path / "ds"
    shutil.copytree(small_template, ds, symlinks=True)
    s = setup_register(ds, tmp_path)
    s.argv.remove("--contrasts")
    s.argv.remove("T2w")
    corrupt(s.targets["ct_label"], "truncated", ds)
    proc = run_main("register", s.argv)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    check_good(s, proc)
    lines = error_lines(proc)
    assert all(s.targets["ct_label"].name in line for line in lines[:-1]), lines
    assert len(lines) == 1, lines


# ------------------------------------------------- read-only output folder
READONLY = ["segment_ct", "register", "init_data_config", "convert_config_to_nnunet", "crop", "slices", "stats",
            "qc"]
_RO_LINES = "one error line per item + summary instead of one line"
XFAIL_READONLY: dict[str, str] = {}


@pytest.mark.parametrize("stage", [pytest.param(s, marks=[pytest.mark.xfail(strict=True, reason=XFAIL_READONLY[s])]
                                                if s in XFAIL_READONLY else []) for s in READONLY])
def test_read_only_output_folder(stage, small_template, tmp_path):
    ds = tmp_path / "ds"
    shutil.copytree(small_template, ds, symlinks=True)
    s = SETUPS[stage](ds, tmp_path)
    before_inputs = tree_state(s.inputs, exclude=[s.out])
    with unwritable(s.out):
        proc = run_main(stage, s.argv)
        after_out = files_below(s.out)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = error_lines(proc)
    assert len(lines) == 1, proc.stderr
    assert "internal error" not in lines[0] and "; " in lines[0], lines[0]
    assert str(s.out.name) in lines[0] or "writ" in lines[0], lines[0]
    assert not after_out, after_out
    assert tree_state(s.inputs, exclude=[s.out]) == before_inputs


# ------------------------------------------------- spaces and unicode must work
@pytest.mark.parametrize("stage", list(SETUPS))
def test_spaces_and_unicode_paths_work(stage, small_template, tmp_path):
    base = tmp_path / UNICODE_DIR
    ds = base / "ds"
    shutil.copytree(small_template, ds, symlinks=True)
    s = SETUPS[stage](ds, base)
    before_inputs = tree_state(s.inputs, exclude=[s.out])
    proc = run_main(stage, s.argv)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not error_lines(proc), proc.stderr
    new = files_below(s.out)
    assert new, "no output written"
    check_good(s, proc)
    for p in new:
        if p.name.endswith(".nii.gz"):
            load_fully(p)
        elif p.suffix == ".json":
            json.loads(p.read_text(encoding="utf-8"))
    assert not list(tmp_path.rglob(".tmp-*"))
    assert tree_state(s.inputs, exclude=[s.out]) == before_inputs


def test_unicode_paths_through_a_real_process(small_template, tmp_path):
    """The same through ``python -m`` (argv and stdout encoding of a real process)."""
    base = tmp_path / UNICODE_DIR
    ds = base / "ds"
    shutil.copytree(small_template, ds, symlinks=True)
    s = setup_register(ds, base)
    proc = run_module("register", *s.argv, env={"PYTHONIOENCODING": "utf-8"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    outputs = [json.loads(line)["path"] for line in proc.stdout.splitlines() if line.startswith("{")]
    assert outputs and all(UNICODE_DIR in o for o in outputs), proc.stdout
    for good in s.good:
        load_fully(good)


# ------------------------------------------------- predict: validation before any model is needed
def test_predict_missing_model_folder(small_template, tmp_path):
    ds = tmp_path / "ds"
    shutil.copytree(small_template, ds, symlinks=True)
    before = tree_state([ds])
    missing = tmp_path / "results" / "Dataset301_X" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    proc = run_main("predict", ["--bids-dir", ds, "--contrasts", "T2w", "--model-dir", missing, "--device", "cpu"])
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    lines = error_lines(proc)
    assert len(lines) == 1 and "nnUNetTrainer__nnUNetPlans__3d_fullres" in lines[0] and "; " in lines[0], proc.stderr
    assert not (ds / "derivatives" / "labels" / f"sub-{BAD_SUB}" / "anat" /
                f"sub-{BAD_SUB}_acq-sag_T2w_label-sacrum_seg.nii.gz").exists()
    assert tree_state([ds]) == before


def test_predict_unknown_dataset_id(small_template, tmp_path):
    ds = tmp_path / "ds"
    shutil.copytree(small_template, ds, symlinks=True)
    results = tmp_path / "results"
    (results / "Dataset301_Phantom").mkdir(parents=True)
    proc = run_module("predict", "--bids-dir", ds, "--contrasts", "T2w", "-d", "999", "-c", "3d_fullres",
                      "--device", "cpu", env={"nnUNet_results": str(results), "nnUNet_raw": str(tmp_path / "r"),
                                              "nnUNet_preprocessed": str(tmp_path / "p")})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    lines = error_lines(proc)
    assert len(lines) == 1 and "999" in lines[0] and "; " in lines[0], proc.stderr
    assert "Dataset301_Phantom" in lines[0]  # lists what is there
