"""bidsify's bad-input catalogue: one row per kind of broken download.

Every row breaks a private copy of a phantom layout, runs ``python -m
totalseg_bids.bidsify`` as a user would and checks the CLI contract: the exit
code (1 for bad data, 2 for usage), exactly one error line naming the file
and the fix, no traceback, nothing half-written (no temporary file, no output
for the bad input, no dataset files claiming a finished conversion) and the
source tree byte for byte as it was.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support import assert_one_line_error, run_module, tree_digest

from totalseg_bids.testing.layouts import write_layout

LAYOUTS = ("dicom", "mrspineseg", "goldatlas", "synthrad2023", "totalsegmentator")


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_layouts")
    return {name: write_layout(name, root / name, subjects=1) for name in LAYOUTS}


def truncate_series(src: Path) -> None:
    for f in (src / "PAT01" / "CT").iterdir():
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def orphan_mask(src: Path) -> None:
    shutil.copyfile(src / "train/Mask/mask_case1.nii.gz", src / "train/Mask/mask_case9.nii.gz")


def drop_referenced_ct(src: Path) -> None:
    for f in (src / "1_01_P").glob("CT.IM*.dcm"):
        f.unlink()


def duplicate_case(src: Path) -> None:
    shutil.copyfile(src / "train/MR/Case1.nii.gz", src / "train/MR/Case01.nii.gz")


def rename(old: str, new: str):
    def apply(src: Path) -> None:
        (src / old).rename(src / new)
    return apply


#: (case, layout, --source [flags], how the copy is broken, words of the error line, exit code, bad output)
CATALOGUE = [
    ("unreadable DICOM series (--strict)", "dicom", "dicom --strict", truncate_series,
     ("PAT01/CT", "not converted", "not large enough", "re-copy", "--strict"), 1, "sub-PAT01_CT.nii.gz"),
    ("mask on no image (NIfTI)", "mrspineseg", "mrspineseg", orphan_mask,
     ("mask_case9.nii.gz", "mask on no image", "add MR/Case9"), 1, None),
    ("RTSTRUCT on no image", "goldatlas", "goldatlas", drop_referenced_ct,
     ("RS.consensus.dcm", "mask on no image", "beside the DICOM series"), 1, None),
    ("two files, one BIDS name", "mrspineseg", "mrspineseg", duplicate_case,
     ("Case1.nii.gz", "same BIDS name", "rename one source"), 1, None),
    ("unknown --source", "mrspineseg", "nosuch", None, ("unknown --source 'nosuch'", "use one of"), 2, None),
    ("SynthRAD id off the pattern", "synthrad2023", "synthrad2023",
     rename("Task1/pelvis/1PA001", "Task1/pelvis/1PX001"),
     ("1PX001", "not a SynthRAD id", "keep the published folder names"), 1, None),
    ("Gold Atlas folder off the pattern", "goldatlas", "goldatlas", rename("1_01_P", "patient1"),
     ("patient1", "not a Gold Atlas patient folder", "keep the published folder names"), 1, None),
    ("TotalSegmentator id off the pattern", "totalsegmentator", "totalsegmentator", rename("s0000", "case0"),
     ("case0", "not a TotalSegmentator id", "keep the published folder names"), 1, None),
]


@pytest.mark.parametrize("case,layout,source,breaker,needles,code,bad_output", CATALOGUE,
                         ids=[row[0] for row in CATALOGUE])
def test_bad_input_one_line_nothing_half_written(templates, tmp_path, case, layout, source, breaker, needles, code,
                                                 bad_output):
    src = tmp_path / "src"
    shutil.copytree(templates[layout], src)
    if breaker is not None:
        breaker(src)
    before = tree_digest(src)
    out = tmp_path / "out"
    name, *flags = source.split()
    proc = run_module("bidsify", "--source", name, "--in", src, "--out", out, "-j", "1", *flags)
    assert_one_line_error(proc, *needles, code=code)
    assert tree_digest(src) == before
    written = list(out.rglob("*")) if out.exists() else []
    assert not [p for p in written if p.name.startswith(".tmp")], written
    assert not (out / "dataset_description.json").exists()  # the dataset is never claimed complete
    if bad_output is None:
        assert not out.exists()  # refused while planning: nothing written at all
    else:
        assert not [p for p in written if p.name == bad_output]
