"""The datalad contract every stage shares (``--datalad-get``, ``--datalad-save``), checked the same way by the
datalad tests and the stage tests that take the shared options."""

from __future__ import annotations

import subprocess
from pathlib import Path

from support import assert_one_line_error, run_module
from totalseg_bids.core import datalad as cdl

IDENTITY = {"GIT_AUTHOR_NAME": "totalseg_bids tests", "GIT_AUTHOR_EMAIL": "tests@totalseg-bids.invalid",
            "GIT_COMMITTER_NAME": "totalseg_bids tests", "GIT_COMMITTER_EMAIL": "tests@totalseg-bids.invalid"}
QUIET = {"result_renderer": "disabled"}


def git(ds: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(ds), *args], capture_output=True, encoding="utf-8", errors="replace",
                          check=True).stdout.strip()


def n_commits(ds: Path) -> int:
    return int(git(ds, "rev-list", "--count", "HEAD"))


def check_shared_options(ds: Path, module: str, args: list, outputs: list[str], per_item: bool = False,
                         extra_env: dict | None = None) -> list[str]:
    """The contract every stage shares: absent content refused naming --datalad-get (one line;
    ``per_item``: each item fails on its own, one line per file, the others go on); fetched with
    TOTALSEG_BIDS_DATALAD_GET=1 (outputs left unsaved); a rerun with --datalad-save saves what
    is unsaved in one commit named after the command and says so (a run with nothing left to save
    is checked for crop above). Returns the files of the save commit."""
    env = {**(extra_env or {}), **IDENTITY, "TOTALSEG_BIDS_NO_PROGRESS": "1"}
    proc = run_module(module, *args, env=env, cwd=ds)
    if per_item:
        lines = [line for line in proc.stderr.splitlines() if ": error: " in line]
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert all("--datalad-get" in line for line in lines[:-1]) and "failed" in lines[-1], proc.stderr
    else:
        assert_one_line_error(proc, "annexed file content is not present", "--datalad-get")
    proc = run_module(module, *args, env={**env, cdl.GET_ENV: "1"}, cwd=ds)
    assert proc.returncode == 0, proc.stderr
    assert git(ds, "status", "--porcelain", "--untracked-files=all", "--", *outputs)
    before = n_commits(ds)
    proc = run_module(module, *args, "--datalad-save", env=env, cwd=ds)
    assert proc.returncode == 0, proc.stderr
    assert "--datalad-save: saved" in proc.stderr, proc.stderr
    assert n_commits(ds) == before + 1 and git(ds, "status", "--porcelain", "--untracked-files=all") == ""
    assert git(ds, "log", "-1", "--format=%s").startswith(f"python -m totalseg_bids.{module} ")
    saved = git(ds, "show", "--name-only", "--format=", "HEAD").splitlines()
    assert saved and all(any(f.startswith(o) for o in outputs) for f in saved), saved
    return saved
