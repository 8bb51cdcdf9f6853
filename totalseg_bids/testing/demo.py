"""The whole pipeline on phantom data, end to end, with a summary.

``python -m totalseg_bids.demo [--out DIR] [--subjects N]`` generates a
phantom BIDS dataset (a CT and a T1w/T2w pair per subject, half of the
subjects misaligned by 4 mm / 3 degrees), then runs every stage exactly as a
user would, each as its own ``python -m totalseg_bids.<stage>`` process. With
``--source synthrad2023|dicom|goldatlas`` it starts instead from the phantoms
written as that public dataset ships them (``phantoms --layout``) and converts
them with ``bidsify``; a Gold Atlas download carries RTSTRUCT sacrum contours,
which then stand for stage 1. ``--stop-after STAGE`` ends the run early:

1. ``segment_ct``: the real TotalSegmentator program (``--fast``). With its
   published weights installed it uses them; otherwise it uses a tiny local
   model trained on phantom images (``python -m totalseg_bids.phantoms
   --totalseg-weights``, built once into ``$TOTALSEG_BIDS_TINY_WEIGHTS``,
   default ``~/.cache/totalseg_bids/tiny_totalseg``, and reused);
2. ``register --method rigid`` (CT labels onto every MRI);
3. ``init_data_config`` (subject-level train/validation/test split);
4. ``convert_config_to_nnunet`` (nnU-Net v2 raw dataset + splits);
5. nnU-Net plan/preprocess and a short seeded training (``totalseg_bids.train_nnunet``);
6. ``predict`` on the test split, largest component kept;
7. ``qc`` report.

It ends with a table on stderr (and in ``summary.md``) that separates what each
step contributes, against the phantom's ground truth: the CT label's Dice on
the CT, the transferred labels' Dice beside the ceiling the CT label allows
(the ground truth moved by the same transform), the predictions' Dice; then
counts, time per stage and where the outputs are. stdout gets the same figures
as one JSON record (``summary.json``). Uses the GPU when there is one.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..core import cli, flags
from ..core.bids import BidsName
from ..core.errors import ExternalToolError, UsageError
from ..core.options import options_from_args, resolve_options
from ..nnunet.trainers import trainer_env
from ..totalsegmentator import default_home, home_env, is_local_build, ready
from .demo_scores import ct_label_scores, dice_table, moved_truth_scores, source_image, transfer_scores, truth_path
from .demo_summary import Scores, StepResult, format_summary, summary
from .layouts.truth import write_ground_truth

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
DATASET_ID = 501
DATASET_NAME = "DemoSacrum"
#: The demo's nnU-Net trainer: nnU-Net's own training on a small network, seeded (nnunet/trainers/).
TRAINER = "nnUNetTrainer_demo"
#: Phantom CT voxel size (mm): TotalSegmentator --fast works at 3 mm.
CT_SPACING = 2.0
#: phantom layouts the demo can start from (they hold a CT and an MRI per subject)
SOURCES = ("phantoms", "synthrad2023", "dicom", "goldatlas")
#: sources whose download already carries a sacrum contour on the CT
SHIPPED_CT_LABELS = {"goldatlas": "Gold Atlas RTSTRUCT sacrum contours (bidsify)"}
#: the demo's stages, in order; --stop-after ends the run after one of them
STAGES = ("bidsify", "segment_ct", "register", "init_data_config", "convert_config_to_nnunet", "nnunet_train",
          "predict", "qc")


@dataclass(frozen=True)
class DemoOptions:
    """What the demo runs on and how far: ``subjects`` phantoms (4 or more, for three
    splits), ``device`` for nnU-Net and TotalSegmentator, ``jobs`` per-subject workers
    (None: up to 2), ``keep`` reuses the output folder, ``source`` the layout the data
    starts from, ``stop_after`` the last stage run."""

    subjects: int = 6
    device: str = "auto"
    jobs: int | None = None
    keep: bool = False
    source: str = "phantoms"
    stop_after: str = "qc"

    def __post_init__(self) -> None:
        if self.subjects < 4:
            raise UsageError("the demo needs at least 4 subjects (train, validation and test splits)", None,
                             "use --subjects 4 or more")
        if self.source not in SOURCES or self.stop_after not in STAGES:
            raise UsageError(f"unknown --source {self.source!r} or --stop-after {self.stop_after!r}", None,
                             f"use --source {'|'.join(SOURCES)} and --stop-after {'|'.join(STAGES)}")
        if self.jobs is not None and self.jobs < 1:
            raise UsageError("--jobs must be >= 1", None, "e.g. -j 2")

    def reached(self, stage: str) -> bool:
        """Whether ``stage`` runs before the run stops.

        >>> DemoOptions(stop_after="register").reached("segment_ct"), DemoOptions(stop_after="register").reached("qc")
        (True, False)
        """
        return STAGES.index(self.stop_after) >= STAGES.index(stage)


@dataclass
class Demo:
    """State of one demo run: folders, options, environment and step timings."""

    out: Path
    options: DemoOptions
    steps: list[StepResult] = field(default_factory=list)

    @property
    def jobs(self) -> int:
        return self.options.jobs or min(2, os.cpu_count() or 1)

    @property
    def data(self) -> Path:
        return self.out / "data"

    @property
    def dataset(self) -> Path:
        return self.data / "phantom"

    @property
    def logs(self) -> Path:
        return self.out / "logs"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "nnUNet_raw": str(self.out / "nnUNet_raw"),
            "nnUNet_preprocessed": str(self.out / "nnUNet_preprocessed"),
            "nnUNet_results": str(self.out / "nnUNet_results"),
            "nnUNet_def_n_proc": env.get("nnUNet_def_n_proc", "1"),
            "nnUNet_n_proc_DA": env.get("nnUNet_n_proc_DA", "1"),
            "PYTHONPATH": str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
            "TOTALSEG_BIDS_NO_PROGRESS": "1",
        })
        env.update(trainer_env(env))
        return env

    def run(self, name: str, argv: Sequence[str | os.PathLike], detail: str = "",
            env: dict[str, str] | None = None) -> StepResult:
        """Run one step as its own process; its output goes to ``logs/<name>.log``."""
        self.logs.mkdir(parents=True, exist_ok=True)
        logfile = self.logs / f"{len(self.steps) + 1:02d}_{name}.log"
        cmd = [str(a) for a in argv]
        log.info("[%s] %s", name, " ".join(cmd))
        start, cpu = time.perf_counter(), _children_cpu()
        with open(logfile, "w", encoding="utf-8") as fh:
            fh.write("$ " + " ".join(cmd) + "\n")
            fh.flush()
            proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=self.env() | (env or {}),
                                  cwd=self.out)
        seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu
        if proc.returncode != 0:
            tail = logfile.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:] or [""]
            raise ExternalToolError(f"step {name} failed with exit {proc.returncode} ({tail[0][:200]})", logfile,
                                    "read the log for details")
        return self.record(name, seconds, detail, cpu)

    def record(self, name: str, seconds: float, detail: str = "", cpu: float = 0.0) -> StepResult:
        result = StepResult(name, seconds, detail, cpu)
        self.steps.append(result)
        log.info("[%s] done in %.1f s", name, seconds)
        return result

    def module(self, stage: str, *args: str | os.PathLike) -> list[str]:
        return [sys.executable, "-m", f"totalseg_bids.{stage}", *map(str, args)]


def _children_cpu() -> float:
    """CPU seconds used so far by this process's finished children (and theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def tiny_weights_home() -> Path:
    """Where the demo keeps the tiny local TotalSegmentator weights between runs."""
    env = os.environ.get("TOTALSEG_BIDS_TINY_WEIGHTS")
    return Path(env) if env else Path.home() / ".cache" / "totalseg_bids" / "tiny_totalseg"


def stand_in_totalsegmentator_output(dataset: Path, dest: Path) -> Path:
    """Lay the phantom's CT masks out as TotalSegmentator writes them
    (``<dest>/<CT stem>/<class>.nii.gz``) for ``segment_ct --from-existing``."""
    gt = dataset / "derivatives" / "ground_truth"
    for mask in sorted(gt.rglob("*_CT_label-sacrum_seg.nii.gz")):
        stem = BidsName.parse(mask).source().stem
        target = dest / stem / "sacrum.nii.gz"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            shutil.copyfile(mask, target)
    return dest


def _has_gpu(device: str) -> bool:
    """Whether nnU-Net will run on a GPU for ``--device`` (auto asks torch)."""
    if device != "auto":
        return device.startswith("cuda")
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def _data_step(demo: Demo) -> None:
    """The phantom dataset: written as BIDS, or as a publisher ships it and
    converted by ``bidsify`` (its ground truth then rendered on each grid)."""
    ds, source = demo.dataset, demo.options.source
    subjects = demo.options.subjects
    if source == "phantoms":
        demo.run("phantoms", demo.module("phantoms", "--out", ds, "--subjects", subjects, "--seed", 0,
                                          "--ct-spacing", CT_SPACING, "--misalign-mm", 4, "--misalign-deg", 3,
                                          "--misalign-fraction", 0.5, "--no-ct-labels", "-q"))
        return
    download = demo.data / f"{source}_download"
    demo.run("phantoms", demo.module("phantoms", "--layout", source, "--out", download,
                                      "--subjects", subjects, "--seed", 0, "-q"),
             detail=f"{source} layout as published")
    extra = ["--classes", "sacrum"] if source == "goldatlas" else []
    demo.run("bidsify", demo.module("bidsify", "--source", source, "--in", download, "--out", ds,
                                     "-j", demo.jobs, "-q", *extra), detail=f"--source {source}")
    write_ground_truth(ds, seed=0)


def _segment_ct_step(demo: Demo) -> None:
    """Stage 1 with the real TotalSegmentator: published weights when installed,
    else the tiny local model (built on first use, said in the output)."""
    ds = demo.dataset
    ts_device = flags.parse_device(demo.options.device, spelling="totalsegmentator")
    args = ["--bids-dir", ds, "--classes", "sacrum", "--fast", "--device", ts_device, "-j", 1]
    weights_ready, why = ready()
    if shutil.which("TotalSegmentator") is None:
        log.warning("TotalSegmentator cannot run here (%s): using the phantom's CT masks, which stand in "
                    "for TotalSegmentator output", why)
        existing = stand_in_totalsegmentator_output(ds, demo.out / "totalsegmentator_output")
        demo.run("segment_ct", demo.module("segment_ct", "--bids-dir", ds, "--classes", "sacrum", "--from-existing",
                                           existing), detail="phantom masks as TotalSegmentator output")
        return
    if weights_ready and not is_local_build(default_home()):
        demo.run("segment_ct", demo.module("segment_ct", *args), detail="TotalSegmentator, installed weights")
        return
    home = tiny_weights_home()
    log.warning("segment_ct: TotalSegmentator runs with a TINY LOCAL MODEL trained on phantom images (%s), "
                "not TotalSegmentator's published weights: its labels show the pipeline, not TotalSegmentator's "
                "quality", home)
    demo.run("totalseg_weights", demo.module("phantoms", "--totalseg-weights", home, "-q"),
             detail="tiny local model (built once, then reused)")
    demo.run("segment_ct", demo.module("segment_ct", *args), env=home_env(home),
             detail="real TotalSegmentator --fast, tiny local model")


def _ct_labels_step(demo: Demo, scores: Scores) -> None:
    """Stage 1: the CT sacrum, from the download itself when it ships one; its Dice on the CT."""
    source = demo.options.source
    if source in SHIPPED_CT_LABELS:
        log.info("segment_ct: the %s download ships CT sacrum contours; TotalSegmentator is not needed", source)
        demo.logs.mkdir(parents=True, exist_ok=True)
        (demo.logs / f"{len(demo.steps) + 1:02d}_segment_ct.log").write_text(
            f"not run: {SHIPPED_CT_LABELS[source]} in {demo.dataset / 'derivatives' / 'labels'}\n", encoding="utf-8")
        demo.record("segment_ct", 0.0, SHIPPED_CT_LABELS[source])
    else:
        _segment_ct_step(demo)
    labels = sorted((demo.dataset / "derivatives" / "labels").rglob("*_label-sacrum_seg.nii.gz"))
    scores.ct_labels = [p for p in labels if source_image(p).suffix in ("CT", "ct")]
    scores.ct_label_dice = ct_label_scores(demo.dataset, scores.ct_labels)


def _transfer_step(demo: Demo, qc_dir: Path, scores: Scores) -> None:
    """Stage 2: CT labels onto every MRI; their Dice, and the Dice of the truth moved the same way."""
    ds = demo.dataset
    demo.run("register", demo.module("register", "--bids-dir", ds, "--method", "rigid", "--label", "sacrum",
                                      "-j", demo.jobs, "--qc", qc_dir), detail="rigid")
    scores.transferred = sorted((ds / "derivatives" / "reg-labels").rglob("*_label-sacrum_seg.nii.gz"))
    scores.transfer_dice = transfer_scores(ds, scores.transferred)
    scores.transfer_ceiling = moved_truth_scores(ds, scores.transferred)


def _dataset_steps(demo: Demo, config: Path) -> None:
    """Stages 3-4: the subject-level split, then the nnU-Net raw dataset."""
    demo.run("init_data_config", demo.module("init_data_config", "--bids-dir", demo.dataset,
                                              "--label-dir", "reg-labels", "--label-suffix", "_label-sacrum_seg",
                                              "--type", "LABEL", "--split-validation", 0.2, "--split-test", 0.25,
                                              "--seed", 0, "-o", config))
    demo.run("convert_config_to_nnunet", demo.module("convert_config_to_nnunet", "--config", config,
                                                      "--path-out", demo.out / "nnUNet_raw", "-dnum", DATASET_ID,
                                                      "-dname", DATASET_NAME, "--labels", "sacrum"))


def _train_predict_steps(demo: Demo, config: Path, qc_dir: Path, scores: Scores) -> None:
    """Stages 5-7: a short nnU-Net training, prediction on the test split, QC."""
    ds, device = demo.dataset, demo.options.device
    demo.run("nnunet_train", demo.module("train_nnunet", DATASET_ID, "3d_fullres", "0", TRAINER),
             detail=TRAINER, env={"DEVICE": device} if device != "auto" else None)
    if not demo.options.reached("predict"):
        return
    # mirroring test-time augmentation costs 8 forward passes per window: worth it on a GPU, not on 2 CPU cores
    tta = "--tta" if _has_gpu(device) else "--no-tta"
    demo.run("predict", demo.module("predict", "--config", config, "--split", "TESTING", "-d", DATASET_ID,
                                     "-c", "3d_fullres", "-tr", TRAINER, "-f", "0", "--device", device,
                                     "--label-name", "sacrum", "--derivatives", "predictions",
                                     "--keep-largest", "per-label", tta, "--qc", qc_dir), detail=tta)
    scores.predictions = sorted((ds / "derivatives" / "predictions").rglob("*_label-sacrum_seg.nii.gz"))
    scores.prediction_dice = dice_table([(p, truth_path(ds, source_image(p))) for p in scores.predictions])
    if demo.options.reached("qc"):
        demo.run("qc", demo.module("qc", "--labels", *scores.predictions, "--qc", qc_dir, "--stage", "predict"))


def _outputs(demo: Demo, config: Path, qc_dir: Path) -> dict[str, str]:
    ds = demo.dataset
    return {"dataset": str(ds), "ct_labels": str(ds / "derivatives" / "labels"),
            "transferred_labels": str(ds / "derivatives" / "reg-labels"),
            "predictions": str(ds / "derivatives" / "predictions"), "config": str(config),
            "nnunet_raw": str(demo.out / "nnUNet_raw"), "qc_report": str(qc_dir / "index.html"),
            "logs": str(demo.logs)}


def run_demo(out: Path, options: DemoOptions | None = None, **kwargs) -> dict:
    """Run the pipeline into ``out`` (up to ``options.stop_after``); return the summary dict."""
    options = resolve_options(DemoOptions, options, kwargs)
    out = Path(out).absolute()
    if out.exists() and not options.keep:
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    demo, scores = Demo(out, options), Scores()
    config, qc_dir, start = out / "config.json", out / "qc", time.perf_counter()
    _data_step(demo)
    if options.reached("segment_ct"):
        _ct_labels_step(demo, scores)
    if options.reached("register"):
        _transfer_step(demo, qc_dir, scores)
    if options.reached("init_data_config"):
        _dataset_steps(demo, config)
    if options.reached("nnunet_train"):
        _train_predict_steps(demo, config, qc_dir, scores)
    result = summary(options.subjects, options.source, demo.dataset, demo.steps, scores, config, qc_dir,
                     _outputs(demo, config, qc_dir), time.perf_counter() - start)
    (out / "summary.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (out / "summary.md").write_text(format_summary(result), encoding="utf-8")
    return result


def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser("demo", __doc__.splitlines()[0],
                         epilog="example: python -m totalseg_bids.demo --out demo_output --subjects 6")
    flags.add_out(p, dest="out", required=True, help="folder for everything the demo writes (replaced)")
    p.add_argument("--subjects", type=int, default=DemoOptions.subjects,
                   help=f"phantom subjects (default {DemoOptions.subjects})")
    flags.add_device(p, help="nnU-Net and TotalSegmentator device: auto (the GPU when there is one), cpu, cuda[:N]")
    p.add_argument("-j", "--jobs", type=int, default=None, help="parallel workers for per-subject stages")
    p.add_argument("--keep", action="store_true", help="reuse --out instead of starting afresh")
    p.add_argument("--source", choices=SOURCES, default="phantoms",
                   help="phantoms: a BIDS phantom dataset (default); synthrad2023, dicom, goldatlas: the phantoms "
                        "as that public dataset ships them, converted by bidsify first")
    p.add_argument("--stop-after", choices=STAGES, default="qc", metavar="STAGE",
                   help=f"end after this stage ({', '.join(STAGES)}; default qc, the whole pipeline)")
    return p


def _run(args: argparse.Namespace) -> int:
    result = run_demo(args.out, options_from_args(DemoOptions, args))
    out = Path(args.out).absolute()
    log.info("summary (also in %s):\n%s", out / "summary.md", format_summary(result))
    cli.emit("demo", [{"status": "written", "path": out / "summary.json", "kind": "summary", **result}])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)


if __name__ == "__main__":
    raise SystemExit(main())
