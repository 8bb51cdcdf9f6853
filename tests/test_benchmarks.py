"""The benchmark harness runs end to end (``--quick``) and prints a table.

Not a timed test: only that ``python -m benchmarks --quick`` works (exit 0, a
Markdown table with rows). The figures themselves live in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_benchmarks_quick_runs(tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["TOTALSEG_BIDS_NO_PROGRESS"] = "1"
    out = tmp_path / "results.md"
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--out", str(out),
                           "--tmp", str(tmp_path / "data")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert any(line.startswith("| Benchmark | Size | Method |") for line in table), proc.stdout[-2000:]
    assert len(table) > 10, proc.stdout[-2000:]
    assert "BIDS index" in proc.stdout
    assert out.read_text().startswith("# totalseg_bids benchmarks")


def test_benchmarks_list():
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "run.py"), "--list"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "index" in proc.stdout and "predict" in proc.stdout
