"""One exception hierarchy for the whole library.

Every error carries the file it is about, the problem, and the fix, so the CLI
layer can print ``totalseg_bids.<module>: error: <file>: <problem>; <fix>``.
Each class also subclasses the builtin a caller would naturally catch
(``ValueError`` for bad data, ``FileNotFoundError`` for missing files, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class TotalsegBidsError(Exception):
    """Base class. ``exit_code`` is what the CLI returns for it."""

    exit_code = 1

    def __init__(self, problem: str, path: str | Path | None = None, fix: str | None = None):
        Exception.__init__(self, problem, path, fix)
        self.problem = problem
        self.path = str(path) if path is not None else None
        self.fix = fix

    def __reduce__(self):  # keeps errors picklable across process pools
        return (self.__class__, (self.problem, self.path, self.fix))

    def __str__(self) -> str:
        text = f"{self.path}: {self.problem}" if self.path else self.problem
        if self.fix:
            text += f"; {self.fix}"
        return " ".join(text.split("\n"))


class InputError(TotalsegBidsError, ValueError):
    """Input data that cannot be used as it is (corrupt, wrong values, ...)."""


class MissingFileError(InputError, FileNotFoundError):
    """An input file or folder does not exist."""


class AnnexContentMissingError(MissingFileError):
    """A git-annex/datalad file whose content is not present locally."""


class GeometryError(InputError):
    """Images whose grids or world positions do not fit together."""


class UsageError(TotalsegBidsError, ValueError):
    """Options that contradict each other or are out of range (exit 2)."""

    exit_code = 2


class OutputError(TotalsegBidsError, PermissionError):
    """An output that cannot be written (permissions, a file where a folder belongs)."""


class OutputExistsError(TotalsegBidsError, FileExistsError):
    """An output exists and differs from what this run would write; ``--overwrite`` replaces it."""


class ExternalToolError(TotalsegBidsError, RuntimeError):
    """An external program (TotalSegmentator, SCT, nnU-Net) failed."""


class BatchError(TotalsegBidsError, RuntimeError):
    """Some items of a batch failed; the others completed.

    ``failures`` holds ``(item, message)`` pairs for the summary; ``done``
    holds the results of the items that completed, so a library caller keeps
    them and the CLI still reports them.
    """

    def __init__(self, problem: str, path=None, fix=None, failures: Sequence[tuple[str, str]] = (),
                 done: Sequence = ()):
        super().__init__(problem, path, fix)
        self.failures = list(failures)
        self.done = list(done)

    def __reduce__(self):
        return (_rebuild_batch_error, (self.problem, self.path, self.fix, self.failures, self.done))


def _rebuild_batch_error(problem, path, fix, failures, done=()):
    return BatchError(problem, path, fix, failures=failures, done=done)


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (a scheduler's time limit or ``scancel``, a shutdown). It unwinds like Ctrl-C,
    so the output being written is removed instead of being left half-written; see ``core.cli.run``."""
