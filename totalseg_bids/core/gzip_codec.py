"""Fast DEFLATE for ``.nii.gz``: ISA-L (``isal``) when installed, else zlib.

Every stage reads and writes gzip-compressed NIfTI, and the codec dominates
their time. ISA-L's ``igzip`` writes standard gzip (any zlib reader opens it)
5-12x faster than zlib at level 1 and, on label maps, smaller: on a
512x512x400 CT label ISA-L level 1 gives 133 kB in 19 ms where zlib level 1
(nibabel's default) gives 494 kB in 232 ms; on a 256x256x30 int16 MRI
2.65 MB in 21 ms against 2.56 MB in 112 ms. Level 2 costs more time for the
same label file and a 2 % smaller MRI, level 3 is much slower on labels, so
:data:`LEVEL` is 1 (``benchmarks/RESULTS.md``).

Reading streams the decompressed bytes straight into the array's buffer in
slices of :data:`CHUNK` bytes, so a read costs the array plus the compressed
size, never two copies of the data. ``TOTALSEG_BIDS_GZIP=zlib`` forces the
zlib fallback (used to compare the two).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

#: compression level for everything we write (ISA-L 0-3, zlib 1-9)
LEVEL = 1
#: size of one decompressed slice (bounds the temporary memory of a read)
CHUNK = 1 << 20


def backend() -> str:
    """``'isal'`` when ISA-L is importable and not disabled, else ``'zlib'``."""
    if os.environ.get("TOTALSEG_BIDS_GZIP", "").lower() == "zlib":
        return "zlib"
    try:
        importlib.import_module("isal.isal_zlib")
    except ImportError:
        return "zlib"
    return "isal"


def _zlib_module():
    if backend() == "isal":
        from isal import isal_zlib

        return isal_zlib
    return zlib


def codec_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a corrupt stream raises, for either backend."""
    errs: tuple[type[BaseException], ...] = (zlib.error, EOFError, OSError)
    if backend() == "isal":
        from isal import isal_zlib

        errs += (isal_zlib.error,)  # type: ignore[operator]  # isal's stubs call it an instance
    return errs


@contextlib.contextmanager
def open_write(path: str | Path) -> Iterator[BinaryIO]:
    """A binary gzip file object for writing at :data:`LEVEL`.

    The gzip header carries no file name and a zero time stamp, so the same image
    always gives the same bytes (reruns and ``datalad rerun`` see no change).
    """
    import gzip

    opener: type[gzip.GzipFile] = gzip.GzipFile
    if backend() == "isal":
        from isal.igzip import IGzipFile

        opener = IGzipFile
    with open(path, "wb") as raw, opener(filename="", mode="wb", compresslevel=LEVEL, fileobj=raw,
                                         mtime=0) as fh:
        yield fh  # type: ignore[misc]  # a GzipFile is a binary file object


def iter_decompressed(path: str | Path, skip: int, need: int, chunk: int = CHUNK) -> Iterator[memoryview]:
    """Bytes ``skip:need`` of the decompressed stream of ``path``, in slices of at most
    ``chunk`` bytes, reading the file ``chunk`` bytes at a time.

    A caller that only scans the data (label values) never holds the whole
    volume. Streams of several gzip members are followed; :class:`EOFError`
    when the stream is shorter than ``need``, the backend's error when corrupt.

    >>> import gzip, tempfile
    >>> f = tempfile.NamedTemporaryFile(suffix=".gz", delete=False); f.close()
    >>> _ = open(f.name, "wb").write(gzip.compress(b"ab") + gzip.compress(b"cdef"))
    >>> b"".join(iter_decompressed(f.name, 1, 5, chunk=2))
    b'bcde'
    >>> os.unlink(f.name)
    """
    mod = _zlib_module()
    pos, dec = 0, mod.decompressobj(31)
    with open(path, "rb") as fh:
        data = fh.read(chunk)
        while pos < need:
            if not data:
                data = fh.read(chunk)
                if not data:
                    raise EOFError(f"gzip stream ends after {pos} of {need} bytes")
            piece = dec.decompress(data, min(chunk, need - pos))
            if dec.eof:  # the rest of the input belongs to the next gzip member
                data, dec = dec.unused_data, mod.decompressobj(31)
            else:
                data = dec.unconsumed_tail
            lo = max(skip - pos, 0)
            pos += len(piece)
            if lo < len(piece):
                yield memoryview(piece)[lo:]


def read_into(path: str | Path, out: np.ndarray, skip: int = 0) -> None:
    """Decompress ``path`` into ``out``'s buffer, discarding the first ``skip`` bytes.

    Raises :class:`EOFError` when the stream holds fewer bytes than needed and
    the backend's error on a corrupt stream; gzip CRCs are checked by the
    decompressor. Streams of several gzip members are followed.

    >>> import gzip, tempfile
    >>> f = tempfile.NamedTemporaryFile(suffix=".gz", delete=False); f.close()
    >>> _ = open(f.name, "wb").write(gzip.compress(b"hdr" + bytes(range(10))))
    >>> a = np.empty(10, np.uint8); read_into(f.name, a, skip=3); a.tolist()
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    >>> os.unlink(f.name)
    """
    flat = out.reshape(-1, order="A")
    target = memoryview(flat).cast("B") if out.size else memoryview(b"")  # type: ignore[arg-type]
    start = 0
    for piece in iter_decompressed(path, skip, skip + target.nbytes):
        target[start:start + len(piece)] = piece
        start += len(piece)
