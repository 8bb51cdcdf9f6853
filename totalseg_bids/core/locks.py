"""Exclusive locks between processes and machines, also on shared filesystems that refuse ``flock``.

A lock serialises the read-modify-write of a shared file (``dataset_description.json``, the QC index,
the model registry) between the processes of a batch, array tasks on other nodes and concurrent runs.
It is ``flock`` on a lock file that exists only while held. Some cluster filesystems refuse ``flock``
(Lustre mounted without ``flock``, NFS without a lock daemon: ``ENOSYS``, ``ENOLCK``,
``EOPNOTSUPP``); there the lock is the lock file itself, created with ``O_EXCL`` (atomic on NFSv3+ and
Lustre) and holding ``<host> <pid> <time>``. Such a file left by a killed holder is stale when its
process is gone (same host) or when it is older than :data:`STALE_SECONDS`; it is then broken.

``TOTALSEG_BIDS_LOCK`` chooses: ``auto`` (default: ``flock``, the lock file where a filesystem refuses it,
detected once per filesystem), ``flock`` or ``excl`` (always lock files, e.g. when nodes mount the data
with ``localflock``, whose locks other nodes do not see).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from .errors import OutputError, UsageError

log = logging.getLogger(__name__)

LOCK_ENV = "TOTALSEG_BIDS_LOCK"
LOCK_MODES = ("auto", "flock", "excl")
#: Age after which an ``O_EXCL`` lock file of another host counts as left by a dead holder
#: (``TOTALSEG_BIDS_LOCK_STALE`` seconds); the locks guard writes of a few milliseconds.
STALE_SECONDS = 300.0
#: errno values of a filesystem that refuses ``flock`` (as opposed to a lock held by someone else).
FLOCK_REFUSED = frozenset({errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP})
_no_flock: set[int] = set()  # st_dev of the filesystems that refused flock in this process


def lock_mode() -> str:
    """The lock kind asked for in ``TOTALSEG_BIDS_LOCK`` (``auto`` when unset)."""
    mode = os.environ.get(LOCK_ENV, "auto").strip().lower() or "auto"
    if mode not in LOCK_MODES:
        raise UsageError(f"{LOCK_ENV}={mode!r} is not a lock kind", None, f"use one of {', '.join(LOCK_MODES)}")
    return mode


@contextlib.contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """Exclusive lock on ``path`` (a file that exists only while the lock is held).

    ``datalad save``/``run`` therefore never commit it into a dataset, where a clone would hold it as a
    dangling symlink.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create folder ({exc.strerror})", path.parent,
                          "choose a writable output folder") from None
    fd = None if _use_excl(path) else _flock_acquire(path)
    if fd is None:
        token = _excl_acquire(path)
        try:
            yield
        finally:
            _excl_release(path, token)
        return
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _use_excl(path: Path) -> bool:
    mode = lock_mode()
    return mode == "excl" or (mode == "auto" and path.parent.stat().st_dev in _no_flock)


def _open_lock(path: Path, flags: int) -> int:
    try:
        return os.open(path, flags, 0o644)
    except (FileExistsError, FileNotFoundError):
        raise
    except OSError as exc:
        raise OutputError(f"cannot write ({exc.strerror})", path.parent, "choose a writable output folder") from None


def _open_rw(path: Path) -> tuple[int, bool]:
    """An open descriptor of lock file ``path`` and whether this call created it."""
    while True:
        try:
            return _open_lock(path, os.O_RDWR | os.O_CREAT | os.O_EXCL), True
        except FileExistsError:
            pass
        try:
            return _open_lock(path, os.O_RDWR), False
        except FileNotFoundError:  # released between the two calls
            continue


def _flock_acquire(path: Path) -> int | None:
    """An open descriptor holding ``flock`` on ``path``; None when the filesystem refuses flock."""
    delay = 0.01
    while True:
        fd, created = _open_rw(path)
        keep = False
        try:
            if not _flock(fd, path):
                if created:
                    with contextlib.suppress(OSError):
                        os.unlink(path)
                return None
            keep = _holds(path, fd)
            if keep:
                return fd
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            if not keep:
                os.close(fd)
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def _flock(fd: int, path: Path) -> bool:
    """``flock(LOCK_EX)`` on ``fd``: True once held, False when the filesystem refuses flock."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True
    except OSError as exc:
        if exc.errno not in FLOCK_REFUSED or lock_mode() == "flock":
            raise OutputError(f"cannot lock ({exc.strerror})", path,
                              f"set {LOCK_ENV}=excl to use lock files instead of flock") from None
        _refused(path, exc)
        return False


def _holds(path: Path, fd: int) -> bool:
    """Whether the locked file is still ``path`` (the holder we waited for unlinks it before releasing)
    and not an ``O_EXCL`` holder's lock file (which names its holder)."""
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return on_disk.st_ino == held.st_ino and held.st_size == 0


def _refused(path: Path, exc: OSError) -> None:
    _no_flock.add(path.parent.stat().st_dev)
    log.warning("%s: this filesystem refuses flock (%s); using O_EXCL lock files on it", path.parent,
                errno.errorcode.get(exc.errno or 0, exc.errno))


def _excl_acquire(path: Path) -> str:
    """Create ``path`` exclusively with this holder's identity (waiting for, or breaking, another's)."""
    token = f"{socket.gethostname()} {os.getpid()} {time.time():.3f} {uuid.uuid4().hex}\n"
    delay = 0.01
    while True:
        try:
            fd = _open_lock(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            if _is_stale(path):
                _break(path)
                continue
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
            continue
        try:
            os.write(fd, token.encode())
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
        os.close(fd)
        return token


def _read(path: Path) -> tuple[str, float] | None:
    """The lock file's text and age in seconds; None when it is gone."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
        return text, time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return None


def _is_stale(path: Path) -> bool:
    """Whether the holder of lock file ``path`` is gone: its process has exited (this host), or the
    file is older than ``TOTALSEG_BIDS_LOCK_STALE`` seconds (another host, or unreadable)."""
    found = _read(path)
    if found is None:
        return False
    text, age = found
    words = text.split()
    if len(words) >= 2 and words[0] == socket.gethostname() and words[1].isdigit():
        try:
            os.kill(int(words[1]), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # alive, another user's
    return age > float(os.environ.get("TOTALSEG_BIDS_LOCK_STALE", STALE_SECONDS))


def _break(path: Path) -> None:
    """Remove a stale lock file: renamed first, so of several processes breaking it one succeeds."""
    found = _read(path)
    aside = path.with_name(f"{path.name}.stale-{uuid.uuid4().hex}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    moved = _read(aside)
    if found is not None and moved is not None and moved[0] != found[0]:
        # a new holder's file was taken in the meantime: put it back unless yet another one exists
        with contextlib.suppress(OSError):
            os.link(aside, path)
    else:
        log.warning("%s: removed a stale lock (%s)", path, (found[0].strip() if found else "") or "empty")
    with contextlib.suppress(OSError):
        os.unlink(aside)


def _excl_release(path: Path, token: str) -> None:
    """Remove the lock file if it is still this holder's (it may have been broken as stale)."""
    found = _read(path)
    if found is not None and found[0] == token:
        with contextlib.suppress(OSError):
            os.unlink(path)
