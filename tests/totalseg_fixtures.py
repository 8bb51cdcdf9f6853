"""Tiny local TotalSegmentator weights, built once per test session.

``totalseg_bids.testing.tiny_totalseg.build`` trains a tiny nnU-Net on phantom CTs
(and one on phantom MRIs) and installs it under every weight folder the
installed TotalSegmentator loads for ``total`` and ``total_mr``. Set
``TOTALSEG_BIDS_TINY_WEIGHTS`` to a folder to keep the build between sessions
(CI caches it per run, the demo reuses it); a complete build there is reused,
an incomplete one is completed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from totalseg_bids.testing.tiny_totalseg import build
from totalseg_bids.totalsegmentator import home_env

#: Environment variable naming a folder that keeps the tiny weights between sessions.
CACHE_ENV = "TOTALSEG_BIDS_TINY_WEIGHTS"
TASKS = ("total", "total_mr")
_CACHE: dict[str, Path] = {}
BUILD_SECONDS: dict[str, float] = {}


def totalseg_env(home: Path) -> dict:
    """Environment for a real TotalSegmentator run on the tiny weights (no usage statistics:
    the home's config.json turns them off; TOTALSEG_WEIGHTS_PATH would override the home)."""
    return home_env(home)


@pytest.fixture(scope="session")
def tiny_totalseg_home(tmp_path_factory) -> Path:
    """A TOTALSEG_HOME_DIR holding the tiny weights for ``total`` and ``total_mr``."""
    if "home" not in _CACHE:
        home = Path(os.environ[CACHE_ENV]) if os.environ.get(CACHE_ENV) else tmp_path_factory.mktemp("totalseg_home")
        t = time.perf_counter()
        build(home, TASKS, work=tmp_path_factory.mktemp("tiny_build"))
        BUILD_SECONDS["build"] = time.perf_counter() - t
        _CACHE["home"] = home
    return _CACHE["home"]
