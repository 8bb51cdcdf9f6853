"""The README's workflow section runs verbatim from a data folder, on phantoms.

The data folder holds the three datasets the section names side by side: ``synthrad2023``
(phantom CT + MRI, the training source), and ``whole-spine`` and ``spider-challenge-2023``
holding phantom MRIs under the file names that the shipped ``test_sacrum`` config lists.
Training uses the quick ``nnUNetTrainer_2epochs_10iters`` through ``TOTALSEG_BIDS_NNUNET_TRAINER``
(documented in that section). Step 1 runs the real TotalSegmentator when tiny local weights
are cached (``TOTALSEG_BIDS_TINY_WEIGHTS``, as in CI); without them that one line is left out
and the phantom's CT labels stand in for its output, since building the weights here would
cost several minutes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO, stage_parser
from support.totalseg import CACHE_ENV, totalseg_env

SECTION = "## The same steps on a real dataset"
SUBJECTS = 6


def readme_blocks(section: str = SECTION) -> list[str]:
    """The ```bash blocks of one README section, as written."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(section)
    end = text.find("\n## ", start + len(section))
    return re.findall(r"```bash\n(.*?)```", text[start:end if end > 0 else None], flags=re.S)


def _phantoms(out: Path, *extra: str) -> None:
    subprocess.run([sys.executable, "-m", "totalseg_bids.phantoms", "--out", str(out), *extra], check=True,
                   capture_output=True, encoding="utf-8", errors="replace")


def _shipped_targets(data: Path, source: Path) -> list[Path]:
    """Phantom MRIs copied to every path the shipped test_sacrum config lists."""
    from totalseg_bids.resources import shipped_config

    cfg = json.loads(shipped_config("test_sacrum").read_text(encoding="utf-8"))
    t1 = sorted(source.glob("sub-*/anat/*_T1w.nii.gz"))
    t2 = sorted(source.glob("sub-*/anat/*_T2w.nii.gz"))
    targets = [data / rel for rel in cfg["TESTING"]]
    for n, target in enumerate(targets):
        pool = t2 if target.name.endswith("_T2w.nii.gz") else t1
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pool[n % len(pool)], target)
        desc = target.parents[2] / "dataset_description.json"
        if not desc.exists():
            desc.write_text(json.dumps({"Name": desc.parent.name, "BIDSVersion": "1.9.0"}), encoding="utf-8")
    return targets


@pytest.mark.slow
def test_readme_workflow_runs_verbatim(tmp_path, request):
    blocks = readme_blocks()
    assert blocks and "python -m totalseg_bids.train_nnunet" in blocks[0] and "--config test_sacrum" in blocks[0]
    data = tmp_path / "data"
    data.mkdir()
    script = "\n".join(blocks)
    env = {**os.environ, "DATA": str(data), "TOTALSEG_BIDS_NNUNET_TRAINER": "nnUNetTrainer_2epochs_10iters",
           "TOTALSEG_BIDS_NO_PROGRESS": "1", "nnUNet_def_n_proc": "1", "NNUNET_NP": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    if os.environ.get(CACHE_ENV):
        env.update(totalseg_env(request.getfixturevalue("tiny_totalseg_home")))
        _phantoms(data / "synthrad2023", "--subjects", str(SUBJECTS), "--no-ct-labels")
    else:
        script = "\n".join(line for line in script.splitlines()
                           if not line.startswith("python -m totalseg_bids.segment_ct"))
        _phantoms(data / "synthrad2023", "--subjects", str(SUBJECTS))
    _phantoms(tmp_path / "mri_source", "--subjects", "3", "--seed", "7")
    targets = _shipped_targets(data, tmp_path / "mri_source")
    elsewhere = tmp_path / "elsewhere"  # not the repository: nothing may rely on the checkout's folders
    elsewhere.mkdir()
    proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=elsewhere, env=env,
                          capture_output=True, encoding="utf-8", errors="replace", timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (data / "train_sacrum.json").is_file() and (data / "nnUNet" / "raw").is_dir()
    model = data / "nnUNet" / "results" / "Dataset300_Sacrum" / "nnUNetTrainer_2epochs_10iters__nnUNetPlans__3d_fullres"
    assert (model / "fold_0" / "checkpoint_final.pth").is_file()
    for image in targets:
        stem = image.name[:-len(".nii.gz")]
        ds = image.parents[2]
        out = ds / "derivatives" / "labels" / image.parent.relative_to(ds) / f"{stem}_label-sacrum_seg.nii.gz"
        assert out.is_file(), out
    assert (data / "qc" / "index.html").is_file()
    _assert_evaluated(data)


def _assert_evaluated(data: Path) -> None:
    """Step 6: one row per held-out image in the metrics table, Dice measured, the summary written."""
    import csv

    config = json.loads((data / "train_sacrum.json").read_text(encoding="utf-8"))
    with open(data / "evaluation.tsv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert len(rows) == len(config["TESTING"]) >= 1, rows
    assert all(0.0 <= float(r["dice"]) <= 1.0 for r in rows), rows
    assert "dice" in (data / "evaluation.md").read_text(encoding="utf-8").lower()


def _readme_commands() -> list[str]:
    """Every ``python -m totalseg_bids.<stage> ...`` command in the README's bash blocks,
    backslash continuations joined."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            if line.startswith("python -m totalseg_bids."):
                commands.append(line)
    return commands


@pytest.mark.parametrize("command", _readme_commands())
def test_every_readme_command_parses(command):
    """Each command the README shows uses flags and values its stage accepts (the workflow
    block above also runs them; this catches the other sections' drift cheaply)."""
    import shlex

    words = shlex.split(command.split(" | ")[0].split(" > ")[0])
    module = words[2].removeprefix("totalseg_bids.")
    args = [os.path.expandvars(w) for w in words[3:] if w not in ("&&", ";")]
    try:
        stage_parser(module).parse_args(args)
    except SystemExit as exc:
        assert exc.code == 0, f"{command}: usage error"
