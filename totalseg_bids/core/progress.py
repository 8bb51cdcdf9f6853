"""Progress bars on stderr, shown only on a terminal (tqdm is imported only then: it costs
about 0.1 s of every run's start-up); ``TOTALSEG_BIDS_NO_PROGRESS=1`` hides them."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


def progress(iterable: Iterable[T], total: int | None = None, desc: str | None = None,
             disable: bool | None = None):
    """A tqdm progress bar on stderr, shown only on a terminal (tqdm is imported only then:
    it costs about 0.1 s of every run's start-up).

    >>> list(progress([1, 2], disable=True))
    [1, 2]
    """
    if disable is None:
        disable = not sys.stderr.isatty() or os.environ.get("TOTALSEG_BIDS_NO_PROGRESS") == "1"
    if disable:
        return _NoBar(iterable)
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, file=sys.stderr, dynamic_ncols=True, leave=False)


class _NoBar(Generic[T]):
    """What a hidden bar needs to do: iterate, count, close."""

    def __init__(self, iterable: Iterable[T] | None) -> None:
        self._iterable: Iterable[T] = iterable if iterable is not None else ()

    def __iter__(self) -> Iterator[T]:
        return iter(self._iterable)

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass
