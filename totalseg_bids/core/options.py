"""Stage options: one frozen dataclass per stage, built once and passed down.

A stage's entry function takes ``options`` (built by the CLI from its parsed
arguments, or by a library caller) or the same fields as keyword arguments,
so a new option is one dataclass field plus one argparse argument whose
``dest`` is the field's name.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

T = TypeVar("T")

#: Where a batch's per-case tasks run: a local process pool, a Dask cluster, or Dask workers
#: submitted as SLURM jobs for the batch.
Executor = Literal["local", "dask", "slurm"]
EXECUTORS: tuple[str, ...] = get_args(Executor)


@dataclass(frozen=True)
class ParallelOptions:
    """Where a stage's per-case tasks run, defined once: ``jobs`` worker processes (None: every
    CPU core), a local process pool or a Dask cluster (``executor``, ``scheduler``: its client or
    address; it stays with the caller and is never shipped with a task).

    A stage that reads many files but writes no outputs of its own (``stats``, the QC report)
    inherits these alone; a stage that writes outputs inherits :class:`BatchOptions`.
    """

    jobs: int | None = None
    executor: Executor = "local"
    scheduler: Any = field(default=None, compare=False)


@dataclass(frozen=True)
class BatchOptions(ParallelOptions):
    """The options every batch stage shares, defined once: a stage's options dataclass
    inherits them, and ``core.cli.add_batch_args``/``add_datalad_args`` give their flags.

    ``jobs``/``executor``/``scheduler``: where the per-case tasks run (:class:`ParallelOptions`);
    ``overwrite`` (``"manual"`` also replaces hand-corrected labels); ``datalad_get``/``datalad_save``: datalad.

    >>> @dataclass(frozen=True)
    ... class StageOptions(BatchOptions):
    ...     label: str = "sacrum"
    >>> StageOptions(jobs=2)
    StageOptions(jobs=2, executor='local', scheduler=None, overwrite=False, datalad_get=False, \
datalad_save=False, label='sacrum')
    """

    overwrite: bool | str = False
    datalad_get: bool = False
    datalad_save: bool = False


def resolve_options(cls: type[T], options: T | None, kwargs: Mapping[str, Any]) -> T:
    """``options`` as given, or ``cls(**kwargs)``; never both.

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Opts:
    ...     jobs: int = 1
    >>> resolve_options(Opts, None, {"jobs": 2})
    Opts(jobs=2)
    >>> resolve_options(Opts, Opts(3), {})
    Opts(jobs=3)
    """
    if options is not None:
        if kwargs:
            raise TypeError(f"give {cls.__name__} or keyword arguments, not both: {sorted(kwargs)}")
        if not isinstance(options, cls):
            raise TypeError(f"options must be a {cls.__name__}, not {type(options).__name__}")
        return options
    return cls(**kwargs)


def options_from_args(cls: type[T], args: argparse.Namespace, **extra: Any) -> T:
    """The options of ``cls`` found (by field name) in parsed arguments, then ``extra``.

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Opts:
    ...     jobs: int = 1
    ...     overwrite: bool = False
    >>> options_from_args(Opts, argparse.Namespace(jobs=4, verbose=1), overwrite=True)
    Opts(jobs=4, overwrite=True)
    """
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]  # cls is a dataclass by contract
    values = {k: v for k, v in vars(args).items() if k in names}
    values.update(extra)
    return cls(**values)


def normalise_fields(options: object, tuples: tuple[str, ...] = (), paths: tuple[str, ...] = (),
                     absolute: bool = False) -> None:
    """In a frozen options dataclass's ``__post_init__``: the named sequence fields become tuples
    (argparse gives lists; the options stay hashable and compare equal) and the named path fields
    ``Path`` objects (absolute with ``absolute``, so they mean the same in a worker); None stays None.

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Opts:
    ...     contrasts: tuple = ()
    ...     qc_dir: object = None
    ...     def __post_init__(self):
    ...         normalise_fields(self, tuples=("contrasts",), paths=("qc_dir",))
    >>> Opts(["T1w", "T2w"], "qc")
    Opts(contrasts=('T1w', 'T2w'), qc_dir=PosixPath('qc'))
    """
    for name in tuples:
        if getattr(options, name) is not None:
            object.__setattr__(options, name, tuple(getattr(options, name)))
    for name in paths:
        value = getattr(options, name)
        if value is not None:
            object.__setattr__(options, name, Path(value).absolute() if absolute else Path(value))
