#!/usr/bin/env bash
# Install what is missing (scripts/install.sh) and run the whole test suite, slow tests included.
#   bash scripts/test.sh [pytest args]     e.g. bash scripts/test.sh -m "not slow"
# Tests run in parallel (pytest-xdist, one worker a core, at most 4; TOTALSEG_BIDS_TEST_WORKERS=N to choose,
# 0 for one process); the 25 slowest are listed at the end.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$here/scripts/install.sh"
cd "$here"
export nnUNet_def_n_proc="${nnUNet_def_n_proc:-1}"
export TOTALSEG_BIDS_NO_PROGRESS=1
# one build of the tiny local TotalSegmentator weights per run, shared by the tests and the demo test
export TOTALSEG_BIDS_TINY_WEIGHTS="${TOTALSEG_BIDS_TINY_WEIGHTS:-$(mktemp -d)/tiny_totalseg}"
cores="$(nproc 2>/dev/null || echo 2)"
workers="${TOTALSEG_BIDS_TEST_WORKERS:-$(( cores < 4 ? cores : 4 ))}"
exec "${PYTHON:-python3}" -m pytest -n "$workers" --dist loadgroup --durations=25 "$@"
