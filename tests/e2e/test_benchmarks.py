"""The benchmark harness runs and its compared methods compute the same thing.

No timing is asserted (the figures live in benchmarks/RESULTS.md); what a benchmark
must guarantee is that the methods it compares give the same result, so a speed-up
never comes from doing less.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from support import REPO


@pytest.mark.slow
def test_label_transfer_methods_agree(tmp_path):
    """Ours, nibabel and nilearn put the label on exactly the same MRI voxels, every gzip
    stream a codec writes reads back through the standard library's zlib, and evaluate's
    figures equal nnU-Net's Dice and MONAI's distances case by case."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["TOTALSEG_BIDS_NO_PROGRESS"] = "1"
    out = tmp_path / "results.md"
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--only", "codec", "transfer", "lcc",
                           "evaluate",
                           "--out", str(out), "--tmp", str(tmp_path / "data")],
                          cwd=REPO, env=env, capture_output=True, encoding="utf-8", errors="replace", timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.read_text(encoding="utf-8").startswith("# totalseg_bids benchmarks")
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| Label transfer")]
    agreements = [re.search(r"differs from ours on (\d+) of (\d+)", line) for line in rows]
    agreements = [m for m in agreements if m]
    assert agreements, proc.stdout[-2000:]
    for m in agreements:
        assert int(m.group(1)) == 0 and int(m.group(2)) > 0, proc.stdout[-2000:]
    codecs = [line for line in proc.stdout.splitlines() if line.startswith("| NIfTI gzip codec")]
    measured = [line for line in codecs if "not available" not in line]
    assert len(measured) >= 4, proc.stdout[-3000:]  # zlib and ISA-L at least, on both volumes
    assert all("stdlib zlib reads the same bytes: yes" in line for line in measured), proc.stdout[-3000:]
    evaluate = [line for line in proc.stdout.splitlines() if line.startswith("| evaluate") and "max abs" in line]
    assert len(evaluate) >= 4, proc.stdout[-3000:]  # nnU-Net twice, MONAI from files and in memory
    for line in evaluate:
        assert "same empty-mask cases: yes" in line, line
        assert all(float(d) < 1e-4 for d in re.findall(r"_?[a-z0-9]+ (\d\.\de[+-]\d+)", line)), line
    ours = [line for line in proc.stdout.splitlines() if line.startswith("| NIfTI read + write")]
    assert any("nibabel reads our file back to the same array: yes" in line for line in ours), proc.stdout[-3000:]


def test_benchmarks_list():
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "run.py"), "--list"],
                          cwd=REPO, capture_output=True, encoding="utf-8", errors="replace", timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "index" in proc.stdout and "predict" in proc.stdout
    assert "convert_mri" in proc.stdout and "cohort" in proc.stdout


def test_harness_doctests():
    """The harness's own helpers (interleaving, device choice, codec data) keep their examples."""
    import doctest
    import importlib
    import pkgutil

    saved_env = dict(os.environ)  # benchmarks.run sets the harness's defaults on import
    sys.path.insert(0, str(REPO))
    try:
        import benchmarks

        names = [m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name != "__main__"]
        failed = {n: doctest.testmod(importlib.import_module(f"benchmarks.{n}")).failed for n in names}
    finally:
        sys.path.remove(str(REPO))
        os.environ.clear()
        os.environ.update(saved_env)
    assert "bench_common" in failed and "bench_predict" in failed
    assert not any(failed.values()), failed
