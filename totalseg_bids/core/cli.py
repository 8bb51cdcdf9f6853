"""The command-line contract shared by every ``python -m totalseg_bids.<stage>``.

* Usage errors: argparse's usage on stderr, exit 2.
* Bad data: ``totalseg_bids.<stage>: error: <file>: <problem>; <fix>`` on
  stderr, exit 1, no traceback (``-v`` shows one for unexpected errors).
* Ctrl-C: exit 130; SIGTERM (a time limit, ``scancel``): exit 143. Both remove the output in progress.
* Logging goes to stderr (``-v``/``-q``); machine-readable results to stdout.
* Progress bars only when stderr is a terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import shlex
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from .. import __version__
from . import parallel
from .atomic import TMP_PREFIX
from .bids import NAMINGS
from .config import load_config
from .datalad import (
    committed_files,
    dataset_of,
    ensure_content,
    get_requested,
    head_commit,
    is_datalad_dataset,
    unsaved,
)
from .datalad import save_outputs as datalad_save
from .errors import BatchError, Terminated, TotalsegBidsError
from .options import EXECUTORS, BatchOptions
from .progress import progress  # noqa: F401  (stages show their own bars through cli.progress)

log = logging.getLogger("totalseg_bids")


def build_parser(module: str, description: str, epilog: str | None = None) -> argparse.ArgumentParser:
    """An ArgumentParser named ``python -m totalseg_bids.<module>`` with -v/-q."""
    parser = argparse.ArgumentParser(
        prog=f"python -m totalseg_bids.{module}", description=description, epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    parser.add_argument("--version", action="version", version=f"totalseg_bids {__version__}")
    return parser


def add_batch_args(parser: argparse.ArgumentParser, jobs: bool = True, dask: bool = True) -> None:
    """``--overwrite``, ``-j/--jobs``, ``--executor``/``--scheduler``."""
    parser.add_argument("--overwrite", action="store_true", help="redo outputs that already exist")
    parser.add_argument("--overwrite-manual", dest="overwrite", action="store_const", const="manual",
                        help="like --overwrite, and also replace labels whose sidecar says they were corrected "
                             "by hand (GeneratedBy Manual)")
    if jobs:
        parser.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                            help="parallel workers (default: number of CPU cores; with --executor slurm: "
                                 "SLURM worker jobs, default 4)")
    if dask:
        parser.add_argument("--executor", choices=EXECUTORS, default="local",
                            help="run per-subject tasks locally, on a Dask cluster (--scheduler) or on Dask "
                                 "workers submitted as SLURM jobs for this run (slurm; resources from "
                                 "dask-jobqueue's jobqueue.slurm settings)")
        parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                            help="Dask scheduler address (tcp://host:8786) for --executor dask")
        parser.add_argument("--dask-timeout", type=float, default=120.0, metavar="SECONDS",
                            help="how long to wait for Dask workers, at start and when all are lost "
                                 "(default: 120)")


def add_datalad_args(parser: argparse.ArgumentParser) -> None:
    """``--datalad-get`` and ``--datalad-save``."""
    parser.add_argument("--datalad-get", action="store_true",
                        help="fetch annexed inputs with datalad before reading them "
                             "(or set TOTALSEG_BIDS_DATALAD_GET=1)")
    parser.add_argument("--datalad-save", action="store_true",
                        help="datalad save the outputs once at the end of the run")


def fetch_inputs(args: argparse.Namespace | BatchOptions, paths: Iterable[str | Path]) -> list[Path]:
    """Fetch the annexed ``paths`` with ``--datalad-get`` (or TOTALSEG_BIDS_DATALAD_GET=1),
    else refuse absent content with one line; the shared step of every stage that reads inputs."""
    return ensure_content([p for p in paths if p is not None],
                          get=get_requested(getattr(args, "datalad_get", False)))


def config_inputs(config: str | Path, datasets_path: str | Path | None = None) -> list[Path]:
    """Every image and label a data config names (unchecked: :func:`fetch_inputs`
    fetches or refuses the annexed ones, the stage reports the rest)."""
    cases = load_config(config, datasets_path).cases(check_exists=False)
    return list(dict.fromkeys(p for c in cases for p in (*c.images, c.label) if p is not None))


def save_outputs(args: argparse.Namespace | BatchOptions, paths: Iterable[str | Path],
                 message: str | None = None) -> int:
    """With ``--datalad-save``: one ``datalad save`` of whatever ``paths`` (files or output
    folders) hold that is not saved yet, skipped outputs of a resumed run included.
    The message defaults to the command line. Logs and returns how many files were saved.
    ``args`` may also be a stage's options: a library call saves when its ``datalad_save`` is set."""
    if not getattr(args, "datalad_save", False):
        return 0
    existing = list(dict.fromkeys(Path(p).absolute() for p in paths if p is not None and Path(p).exists()))
    if not existing:
        log.info("--datalad-save: no output to save")
        return 0
    by_dataset: dict[Path, list[Path]] = {}
    for path in existing:
        if is_datalad_dataset(path):
            by_dataset.setdefault(dataset_of(path), []).append(path)
        else:
            log.warning("--datalad-save: %s is not inside a datalad dataset; not saved", path)
    total = 0
    for ds, members in by_dataset.items():
        # a temporary left by a killed writer (SIGKILL, a lost node) is never committed
        changed = [f for f in unsaved(ds, members) if not f.name.startswith(TMP_PREFIX)]
        if not changed:
            log.info("--datalad-save: everything is saved already in %s", ds)
            continue
        before = head_commit(ds)
        datalad_save(ds, changed, message or getattr(args, "command_line", None) or "totalseg_bids outputs")
        committed = committed_files(ds, before)
        if not committed:  # rewritten with identical content: git-annex finds the same keys
            log.info("--datalad-save: no change in %s (%d output(s) rewritten identically)", ds, len(changed))
            continue
        log.info("--datalad-save: saved %d file(s) in %s (%s)", len(committed), ds,
                 ", ".join(committed[:3]) + (", ..." if len(committed) > 3 else ""))
        total += len(committed)
    return total


@contextlib.contextmanager
def saving(args: argparse.Namespace | BatchOptions, paths: Iterable[str | Path],
           message: str | None = None) -> Iterator[None]:
    """Run the body, then :func:`save_outputs`; also when some items failed (BatchError),
    since every output that exists is complete, but not after Ctrl-C or a fatal error."""
    paths = list(paths)
    try:
        yield
    except BatchError:
        save_outputs(args, paths, message)
        raise
    save_outputs(args, paths, message)


def record(stage: str, result: object) -> dict:
    """One stdout record: ``{"stage", "status", "path", ...}`` from a result.

    A result is a mapping, a dataclass or a path (then ``status`` is ``written``).

    >>> record("qc", Path("qc/index.html"))
    {'stage': 'qc', 'status': 'written', 'path': 'qc/index.html'}
    >>> record("register", {"status": "skipped", "path": "a_seg.nii.gz", "flags": {}})
    {'stage': 'register', 'status': 'skipped', 'path': 'a_seg.nii.gz', 'flags': {}}
    """
    if isinstance(result, (str, os.PathLike)):
        fields = {"status": "written", "path": os.fspath(result)}
    elif dataclasses.is_dataclass(result) and not isinstance(result, type):
        fields = dataclasses.asdict(result)
    else:
        fields = dict(result)  # type: ignore[call-overload]
    if "status" not in fields or "path" not in fields:
        raise ValueError(f"a {stage} record needs 'status' and 'path': {sorted(fields)}")
    return {"stage": stage, **fields}


def emit(stage: str, results: Iterable[object]) -> None:
    """Print one JSON object per result on stdout: the one machine-readable
    format of every stage (docs/conventions.md section 8)."""
    for result in results:
        print(json.dumps(record(stage, result), default=os.fspath), flush=True)


def report(stage: str, produce: Callable[[], Iterable[object]]) -> list:
    """Run a batch and :func:`emit` its results; when some items failed, emit the
    ones that completed (``BatchError.done``) and re-raise."""
    try:
        results = list(produce())
    except BatchError as exc:
        emit(stage, exc.done)
        raise
    emit(stage, results)
    return results


def add_naming_arg(parser: argparse.ArgumentParser) -> None:
    """``--naming neuropoly|bids`` for stages that write derivatives."""
    parser.add_argument("--naming", choices=NAMINGS, default="neuropoly",
                        help="derivative file names: neuropoly (<image>_label-X_seg, default) "
                             "or bids (validator-clean _space-<image>_label-X_mask / _dseg)")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time, so in-process
    ``main()`` calls (tests, notebooks) never log to a closed stream."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass

    def format(self, record: logging.LogRecord) -> str:
        """Escape what the terminal's encoding cannot show (a tool's UTF-8 output under an
        ASCII locale) instead of losing the whole line to a UnicodeEncodeError."""
        text = super().format(record)
        encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
        return text.encode(encoding, "backslashreplace").decode(encoding)


def stage_name(logger_name: str, main_name: str = "totalseg_bids") -> str:
    """The name a log line starts with: the stage, whichever of its modules logged.

    Modules name their loggers ``__name__``; a stage that is a package
    (``register``, ``qc``, ...) shows as the stage, ``core`` modules as themselves.

    >>> stage_name("totalseg_bids.register.itk"), stage_name("totalseg_bids.core.nifti")
    ('totalseg_bids.register', 'totalseg_bids.core.nifti')
    >>> stage_name("__main__", "totalseg_bids.qc"), stage_name("totalseg_bids.crop")
    ('totalseg_bids.qc', 'totalseg_bids.crop')
    """
    if logger_name == "__main__":
        return main_name
    parts = logger_name.split(".")
    if len(parts) > 2 and parts[0] == "totalseg_bids" and parts[1] != "core":
        return ".".join(parts[:2])
    return logger_name


class _ModuleNameFormatter(logging.Formatter):
    """Shows ``totalseg_bids.<stage>`` for records of any module of a stage (see :func:`stage_name`)."""

    def __init__(self, fmt: str, main_name: str):
        super().__init__(fmt)
        self.main_name = main_name

    def format(self, record: logging.LogRecord) -> str:
        name = stage_name(record.name, self.main_name)
        if name != record.name:
            record = logging.makeLogRecord({**record.__dict__, "name": name})
        return super().format(record)


def setup_logging(verbose: int = 0, quiet: bool = False, main_name: str = "totalseg_bids") -> None:
    """Log to stderr for the package and for a stage run as ``python -m`` (whose
    module logger is then ``__main__``, outside the package's logger)."""
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    handler = _StderrHandler()
    handler.setFormatter(_ModuleNameFormatter("%(name)s: %(levelname)s: %(message)s"
                                              if verbose else "%(name)s: %(message)s", main_name))
    for name in ("totalseg_bids", "__main__"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.addHandler(handler)
        logger.setLevel(level)
        # records still reach handlers the caller set on the root logger (pytest's caplog,
        # an application's own logging); Python's last-resort printer stays unused
    if not verbose:
        warnings.simplefilter("ignore")  # third-party warnings would break the one-line contract


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None,
        func: Callable[[argparse.Namespace], int | None]) -> int:
    """Parse ``argv``, run ``func(args)`` and turn every outcome into an exit code."""
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 0 for --help/--version, 2 for usage errors
        return int(exc.code or 0)
    # the exact command, for provenance (datalad save messages, sidecars)
    args.command_line = shlex.join([*parser.prog.split(), *(sys.argv[1:] if argv is None else map(str, argv))])
    prog = parser.prog.replace("python -m ", "")
    setup_logging(getattr(args, "verbose", 0), getattr(args, "quiet", False), main_name=prog)
    if getattr(args, "dask_timeout", None) is not None:
        parallel.DASK_TIMEOUT = args.dask_timeout
    with sigterm_raises():
        return _dispatch(parser, prog, args, func)


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` while the body runs (main thread, default handler only), so a
    time limit or ``scancel`` unwinds the stage: the output being written is removed, not left half-written."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def _raise(signum, _frame):
        raise Terminated()

    signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _dispatch(parser: argparse.ArgumentParser, prog: str, args: argparse.Namespace,
              func: Callable[[argparse.Namespace], int | None]) -> int:
    """``func(args)``, with every outcome turned into one stderr line and an exit code."""
    try:
        code = func(args)
        return int(code or 0)
    except BatchError as exc:
        # one line per distinct problem (one bad CT label fails every MRI paired with it)
        messages = list(dict.fromkeys(message for _item, message in exc.failures))
        for message in messages:
            print(f"{prog}: error: {message}", file=sys.stderr)
        if len(messages) != 1:
            print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except TotalsegBidsError as exc:
        if exc.exit_code == 2:
            parser.print_usage(sys.stderr)
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Terminated:
        print(f"{prog}: terminated (SIGTERM: a time limit, scancel or shutdown); the output in progress was "
              "removed; rerun the same command to finish", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        where = exc.filename or "output"
        print(f"{prog}: error: {where}: {exc.strerror or exc}; check the path and its permissions",
              file=sys.stderr)
        if getattr(args, "verbose", 0):
            traceback.print_exc()
        return 1
    except MemoryError:
        print(f"{prog}: error: out of memory; use fewer --jobs or a machine with more memory",
              file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - last resort: one line, traceback with -v
        msg = " ".join(str(exc).split())[:300]
        print(f"{prog}: error: internal error ({type(exc).__name__}: {msg}); "
              "rerun with -v for details and report it", file=sys.stderr)
        if getattr(args, "verbose", 0):
            traceback.print_exc()
        return 1
