"""``python -m totalseg_bids.totalsegmentator.server LOG``: TotalSegmentator's Python API, serving many images.

Reads one JSON request per line on stdin (the keyword arguments of
``totalsegmentator.python_api.totalsegmentator``), runs it, answers one JSON
line on the original stdout: ``{"ok": true}`` or ``{"ok": false, "error": ...,
"output": ...}``. Everything TotalSegmentator and nnU-Net print goes to LOG
(their stdout and stderr), whose part written during a failed request is sent
back with the error. Ends at the end of stdin.

It runs in a process of its own (:class:`.api.ApiRunner` starts it) because
TotalSegmentator rewrites the ``nnUNet_*`` variables of its process. Heavy
imports happen in :func:`main` only: nnU-Net's spawned helper processes import
this module again and must stay light.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import IO


def _redirect_output(log_path: str) -> IO[str]:
    """Keep a handle on the real stdout for answers, then send fds 1 and 2 to the log."""
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    return answers


def _log_since(log_path: str, offset: int, limit: int = 20000) -> str:
    with open(log_path, "rb") as fh:
        fh.seek(offset)
        return fh.read()[-limit:].decode("utf-8", "replace")


def serve(requests: IO[str], answers: IO[str], log_path: str) -> None:
    """Answer every request line until the end of ``requests``."""
    from totalsegmentator.python_api import totalsegmentator

    answers.write(json.dumps({"ok": True, "ready": True}) + "\n")
    for line in requests:
        if not line.strip():
            continue
        offset = os.path.getsize(log_path)
        try:
            totalsegmentator(**json.loads(line))
            answer: dict[str, bool | str] = {"ok": True}
        except BaseException as exc:  # noqa: BLE001 - every failure is reported, the server goes on
            sys.stdout.flush()
            traceback.print_exc()
            sys.stderr.flush()
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "output": _log_since(log_path, offset)}
            if isinstance(exc, KeyboardInterrupt):
                answers.write(json.dumps(answer) + "\n")
                raise
        sys.stdout.flush()
        sys.stderr.flush()
        answers.write(json.dumps(answer) + "\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m totalseg_bids.totalsegmentator.server LOG", file=sys.stderr)
        return 2
    answers = _redirect_output(argv[0])
    serve(sys.stdin, answers, argv[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
