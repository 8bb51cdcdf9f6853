"""Predict a batch: plan the outputs (skip what is done), check the inputs, load the model once,
predict chunk by chunk through a scratch folder, and finish with one summary.

* The model is loaded **once** (``nnUNetPredictor.initialize_from_trained_
  model_folder``) and every image goes through the same predictor; the seed
  workflow reloaded it for each file. Images whose outputs exist are skipped
  before anything is loaded, so a finished run costs nothing (resume).
* Each image is first read by us (a corrupt or annexed file gives a clear
  one-line error) and then predicted through nnU-Net's own preprocessing and
  export, into a **scratch folder** (nnU-Net writes its own JSON files beside
  predictions). One failing image is reported; the others continue, and the
  batch ends in one ``BatchError`` listing every failed image (its ``done``:
  the records of the outputs that were written or skipped), after a summary
  line in the log.
* On the CPU (``-j 1``, the default there) images are predicted one after the
  other in this process: nnU-Net's worker pools would spawn processes that
  each import torch, which costs more than they save on small machines. The
  forward pass runs on every core the process may use, also where
  ``nnUNet_def_n_proc=1`` would make nnU-Net cap it at one thread. With
  ``-j N > 1`` (default on a GPU) each ``--batch-size`` chunk goes to nnU-Net's
  ``predict_from_files`` with N preprocessing/export workers.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core import cli
from ..core.bids import dataset_path, derivative_path, label_value, raw_root_of
from ..core.datalad import ensure_content, get_requested
from ..core.derivatives import generated_by, output_complete
from ..core.errors import BatchError, InputError, TotalsegBidsError
from ..core.options import resolve_options
from ..core.provenance import refuse_manual_overwrite
from ..nnunet.engine import Engine, Model, choose_device, nnunet_version
from ..nnunet.naming import INFERENCE_INFORMATION
from ..nnunet.postprocess import Postprocessing, resolve_postprocessing
from ..nnunet.train import read_best_configuration
from .case import Item, PostOptions, default_label_name, finalize, output_kind
from .checks import announce_mirroring, preflight
from .inputs import shard_inputs
from .options import PredictOptions

log = logging.getLogger(__name__)


@dataclass
class PredictSummary:
    """What a run did: outputs written (``empty``: those without foreground), skipped and failed."""

    predicted: list[Path]
    skipped: list[Path]
    empty: list[Path]
    failures: list[tuple[str, str]]
    seconds: float
    model_seconds: float = 0.0
    #: the derivative folders the outputs go to (what ``--datalad-save`` saves)
    roots: list[Path] = field(default_factory=list)

    def records(self) -> list[dict]:
        """One stdout record per output: ``skipped``, ``written``, or ``empty`` (written, no foreground).

        >>> PredictSummary([Path("a"), Path("b")], [Path("c")], [Path("b")], [], 1.0).records()[1:]
        [{'status': 'written', 'path': 'a'}, {'status': 'empty', 'path': 'b'}]
        """
        empty = set(self.empty)
        return ([{"status": "skipped", "path": str(p)} for p in self.skipped]
                + [{"status": "empty" if p in empty else "written", "path": str(p)} for p in self.predicted])

    def log(self) -> None:
        """The run's one summary line (stderr in the CLI)."""
        rate = len(self.predicted) / self.seconds * 60 if self.seconds and self.predicted else 0.0
        log.info("predicted %d, skipped %d (done), empty %d, failed %d in %.1f s (%.1f images/min, "
                 "model load %.1f s)", len(self.predicted), len(self.skipped), len(self.empty),
                 len(self.failures), self.seconds, rate, self.model_seconds)

    def finish(self) -> PredictSummary:
        """This summary when every image succeeded, else one BatchError (``done``: :meth:`records`)."""
        if self.failures:
            total = len(self.predicted) + len(self.skipped) + len(self.failures)
            shown = ", ".join(key for key, _ in self.failures[:5]) + (", ..." if len(self.failures) > 5 else "")
            raise BatchError(f"{len(self.failures)} of {total} image(s) failed: {shown}", None,
                             "fix them and re-run: finished outputs are skipped", failures=self.failures,
                             done=self.records())
        return self


def plan_items(inputs: Sequence[tuple[Path, ...]], nchan: int, label_name: str, kind: str, opts: PredictOptions,
               summary: PredictSummary) -> list[Item]:
    """The images still to predict; completed outputs go to ``summary.skipped``,
    inputs that cannot be planned to ``summary.failures``."""
    overwrite = opts.overwrite
    items: list[Item] = []
    for images in inputs:
        try:
            if len(images) != nchan:
                raise InputError(f"the model takes {nchan} channel(s), got {len(images)}", images[0],
                                 "list one image per model channel (object entries in the config)")
            raw = raw_root_of(images[0])
            droot = raw / "derivatives" / opts.derivatives
            out = derivative_path(images[0], droot, label_name, kind=kind, naming=opts.naming)
        except TotalsegBidsError as exc:
            summary.failures.append((str(images[0]), str(exc)))
            continue
        if droot not in summary.roots:
            summary.roots.append(droot)
        if output_complete(out) and not overwrite:
            summary.skipped.append(out)
            continue
        try:  # a hand-corrected label survives --overwrite
            refuse_manual_overwrite(out, overwrite)
        except TotalsegBidsError as exc:
            summary.failures.append((str(out), str(exc)))
            continue
        items.append(Item(tuple(images), out, raw, droot))
    outs = [i.output for i in items]
    if len(set(outs)) != len(outs):
        dup = next(o for o in outs if outs.count(o) > 1)
        raise InputError("two inputs would write the same output", dup, "list every image once")
    return items


def make_options(model: Model, engine: Engine, kind: str, opts: PredictOptions, post: Postprocessing) -> PostOptions:
    """Post-processing options and the ``GeneratedBy`` records of every sidecar."""
    nn_meta = {"Dataset": model.dataset, "Configuration": model.configuration, "Trainer": model.trainer,
               "Plans": model.plans, "Folds": list(model.folds), "Checkpoint": model.checkpoint,
               "Device": engine.device, "TTA": bool(opts.tta), "Model": model.identity or None}
    return PostOptions(post, kind, model.classes,
                       [generated_by("nnUNet", nnunet_version(), **nn_meta),
                        generated_by("totalseg_bids", PostProcessing=post.describe(model.classes),
                                     Command="totalseg_bids.predict")],
                       Path(opts.qc_dir) if opts.qc_dir else None)


def note_best_choice(model: Model) -> None:
    """Warn when nnU-Net's cross-validation chose another configuration (or an ensemble) than this model."""
    path = model.folder.parent / INFERENCE_INFORMATION
    if not path.is_file():
        return
    try:
        best = read_best_configuration(path)
    except InputError:
        return
    if best.models != ((model.trainer, model.plans, model.configuration),):
        log.warning("nnU-Net's cross-validation chose %s (%s); this run predicts with %s", best.name,
                    path, model.folder.name)


def postprocessing_of(model: Model, opts: PredictOptions) -> Postprocessing:
    """The run's post-processing (``auto`` resolved for this model and its folds), said once in the log."""
    note_best_choice(model)
    post = resolve_postprocessing(opts.postprocess, model.folder, model.folds, model.labels, opts.largest_labels,
                                  opts.largest_mode, opts.postprocessing_file, opts.removal_threshold)
    log.info("post-processing: %s", post.describe(model.classes)["Description"])
    return post


def run_items(items: Sequence[Item], model: Model, kind: str, options: PredictOptions,
              summary: PredictSummary, post: Postprocessing | None = None) -> None:
    """Load the model once and predict ``items`` chunk by chunk through a scratch folder."""
    post = post if post is not None else postprocessing_of(model, options)
    device = choose_device(options.device)
    announce_mirroring(device, options.tta, len(items))
    tm = time.perf_counter()
    engine = Engine(model, device=device, tta=options.tta, jobs=options.jobs)
    summary.model_seconds = time.perf_counter() - tm
    opts = make_options(model, engine, kind, options, post)
    batch_size = options.batch_size
    log.info("model loaded in %.1f s on %s; predicting %d image(s)", summary.model_seconds, engine.device,
             len(items))
    scratch = Path(tempfile.mkdtemp(prefix="totalseg_bids-predict-"))
    bar = cli.progress(None, total=len(items), desc="predict")
    try:
        for start in range(0, len(items), batch_size):
            _run_chunk(engine, items[start:start + batch_size], scratch, start, opts, summary, bar)
    finally:
        bar.close()
        shutil.rmtree(scratch, ignore_errors=True)


def predict(inputs: Sequence[tuple[Path, ...]], model: Model, options: PredictOptions | None = None,
            **kwargs) -> PredictSummary:
    """Predict every input with one model load; see the module docstring.

    ``options`` (or its fields as keyword arguments): see :class:`PredictOptions`.
    Returns the summary when every image succeeded; otherwise raises one
    ``BatchError`` after the others are done, whose ``done`` holds their records.
    """
    t0 = time.perf_counter()
    opts = resolve_options(PredictOptions, options, kwargs).check()
    kind = output_kind(model.labels)
    label_name = opts.label_name or default_label_name(model, kind)
    label_value(label_name)  # raises a usage error on a name without letters or digits
    summary = PredictSummary([], [], [], [], 0.0)
    items = plan_items(shard_inputs(inputs, opts), len(model.channels) or 1, label_name, kind, opts, summary)
    if summary.skipped:
        log.info("%d output(s) already done, skipped (--overwrite redoes them)", len(summary.skipped))
    if items:
        post = postprocessing_of(model, opts)  # a missing or foreign postprocessing.pkl fails before the model loads
        ensure_content([p for it in items for p in it.images], get=get_requested(opts.datalad_get))
        items = preflight(items, summary.failures)
    if items:
        run_items(items, model, kind, opts, summary, post)
    summary.seconds = time.perf_counter() - t0
    summary.log()
    return summary.finish()


def _run_chunk(engine: Engine, chunk: Sequence[Item], scratch: Path, offset: int, opts: PostOptions,
               summary: PredictSummary, bar: Any = None) -> None:
    """Predict and finalise one chunk (validated by :func:`preflight`); failures are recorded, not raised."""
    ready = [(item, scratch / f"case{offset + n:06d}") for n, item in enumerate(chunk)]
    if not ready:
        return
    done: dict[int, Path] = {}
    if engine.jobs > 1 and len(ready) > 1:
        try:
            engine.predict_many([it.images for it, _ in ready], [t for _, t in ready])
            done = {n: Path(str(t) + engine.file_ending) for n, (_, t) in enumerate(ready)}
        except Exception as exc:  # noqa: BLE001 - fall back to one by one to find the culprit
            log.warning("batch prediction failed (%s); predicting this chunk image by image", type(exc).__name__)
    for n, (item, trunc) in enumerate(ready):
        t_image = time.perf_counter()
        try:
            pred = done.get(n) or engine.predict_one(item.images, trunc)
            if not pred.is_file():
                raise InputError("nnU-Net wrote no prediction", item.key, "rerun with -vv to see nnU-Net's output")
            meta = finalize(item, pred, opts)
            summary.predicted.append(item.output)
            if meta["empty"]:
                summary.empty.append(item.output)
        except TotalsegBidsError as exc:
            summary.failures.append((item.key, str(exc)))
        except MemoryError:
            summary.failures.append((item.key, f"{item.key}: out of memory; use a smaller --batch-size or a GPU"))
        except Exception as exc:
            log.debug("prediction failed", exc_info=True)
            msg = " ".join(str(exc).split())[:200]
            summary.failures.append((item.key, (f"{item.key}: nnU-Net failed ({type(exc).__name__}: {msg}); "
                                                "check the image (rerun with -vv for nnU-Net's output)")))
        finally:
            _image_done(item, time.perf_counter() - t_image, bar)


def _image_done(item: Item, seconds: float, bar: Any) -> None:
    """Advance the per-image bar and log the image's elapsed time (shared by every path)."""
    log.info("%s: %.1f s", dataset_path(item.images[0]), seconds)
    if bar is not None:
        bar.update(1)
