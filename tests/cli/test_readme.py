"""The README's workflow section runs verbatim from a data folder, on phantoms.

The data folder holds the three datasets the section names side by side: ``synthrad2023``
(phantom CT + MRI, the training source), and ``whole-spine`` and ``spider-challenge-2023``
holding phantom MRIs under the file names that the shipped ``test_sacrum`` config lists.
Training uses the quick ``nnUNetTrainer_2epochs_10iters`` through ``TOTALSEG_BIDS_NNUNET_TRAINER``
(documented in that section); step 1 runs the real TotalSegmentator on the session's tiny weights.
Each numbered step is its own test, run in order in one data folder, so a failure names its step.
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
from support import REPO, script_steps, stage_parser
from support.totalseg import totalseg_env

SECTION = "## The same steps on a real dataset"
SUBJECTS = 4
#: Head-foot field of view (mm) of the phantom MRIs that test_sacrum lists: the sacrum and its neighbours.
TARGET_FOV_MM = 80


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


STEPS = script_steps("\n".join(readme_blocks()))


@pytest.fixture(scope="module")
def workflow(tmp_path_factory, tiny_totalseg_home) -> dict:
    """The data folder the README's workflow runs in: phantom CT + MRI (the training source) and phantom
    MRIs at the paths the shipped test_sacrum config lists; the steps that ran so far."""
    base = tmp_path_factory.mktemp("readme")
    data = base / "data"
    data.mkdir()
    env = {**os.environ, **totalseg_env(tiny_totalseg_home), "DATA": str(data),
           "TOTALSEG_BIDS_NNUNET_TRAINER": "nnUNetTrainer_2epochs_10iters", "TOTALSEG_BIDS_NO_PROGRESS": "1",
           "nnUNet_def_n_proc": "1", "NNUNET_NP": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    _phantoms(data / "synthrad2023", "--subjects", str(SUBJECTS), "--no-ct-labels")
    _phantoms(base / "mri_source", "--subjects", "3", "--seed", "7", "--mri-fov-mm", str(TARGET_FOV_MM))
    targets = _shipped_targets(data, base / "mri_source")
    elsewhere = base / "elsewhere"  # not the repository: nothing may rely on the checkout's folders
    elsewhere.mkdir()
    return {"data": data, "env": env, "targets": targets, "cwd": elsewhere, "done": []}


def test_workflow_has_its_steps():
    assert [title.split(".")[0] for title, _ in STEPS] == [f"# {n}" for n in range(1, 7)]
    assert "python -m totalseg_bids.train_nnunet" in STEPS[3][1] and "--config test_sacrum" in STEPS[4][1]


# steps 4 (plan, preprocess, train) and 5 (12 images, nnU-Net's test-time mirroring on the CPU) take 2-3 minutes
# when another test shares the 2 cores: over the 180 s budget
@pytest.mark.timeout(400)
@pytest.mark.slow
@pytest.mark.xdist_group("readme")
@pytest.mark.parametrize("number", range(1, len(STEPS) + 1))
def test_readme_workflow_step_runs_verbatim(workflow, number):
    """Each numbered step of the README's workflow, in order, in one data folder (a step fails at once
    when the one before it did not finish)."""
    if workflow["done"] != list(range(1, number)):
        pytest.fail(f"step {number} needs steps 1-{number - 1}; done: {workflow['done']}", pytrace=False)
    title, script = STEPS[number - 1]
    proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=workflow["cwd"], env=workflow["env"],
                          capture_output=True, encoding="utf-8", errors="replace", timeout=390)
    assert proc.returncode == 0, f"{title}\n{proc.stderr[-4000:]}"
    CHECKS[number](workflow["data"], workflow["targets"])
    workflow["done"].append(number)


def _ct_labels(data: Path, targets: list[Path]) -> None:
    assert sorted(data.glob("synthrad2023/derivatives/labels/sub-*/anat/*_label-sacrum_seg.nii.gz"))


def _transferred(data: Path, targets: list[Path]) -> None:
    assert sorted(data.glob("synthrad2023/derivatives/reg-labels/sub-*/anat/*_label-sacrum_seg.nii.gz"))


def _config(data: Path, targets: list[Path]) -> None:
    config = json.loads((data / "train_sacrum.json").read_text(encoding="utf-8"))
    assert config["TRAINING"] and config["TESTING"]


def _trained(data: Path, targets: list[Path]) -> None:
    model = data / "nnUNet" / "results" / "Dataset300_Sacrum" / "nnUNetTrainer_2epochs_10iters__nnUNetPlans__3d_fullres"
    assert (model / "fold_0" / "checkpoint_final.pth").is_file()


def _predicted(data: Path, targets: list[Path]) -> None:
    for image in targets:
        stem = image.name[: -len(".nii.gz")]
        ds = image.parents[2]
        out = ds / "derivatives" / "labels" / image.parent.relative_to(ds) / f"{stem}_label-sacrum_seg.nii.gz"
        assert out.is_file(), out
    assert (data / "qc" / "index.html").is_file()


def _assert_evaluated(data: Path, targets: list[Path]) -> None:
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


#: What each step leaves in the data folder.
CHECKS = {1: _ct_labels, 2: _transferred, 3: _config, 4: _trained, 5: _predicted, 6: _assert_evaluated}
