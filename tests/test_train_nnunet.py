"""totalseg_bids.train_nnunet: the glue around nnU-Net's own tools (checks, split file, folds, stdout record).

nnU-Net's tools are replaced by stand-ins that only log their arguments: the real
plan/preprocess/train runs in the slow session fixture and the README workflow.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from conftest import assert_one_line_error

from totalseg_bids.core.errors import UsageError
from totalseg_bids.train_nnunet import TrainOptions

MODULE = "train_nnunet"


def _stand_ins(bin_dir: Path, log: Path) -> None:
    """``nnUNetv2_plan_and_preprocess`` and ``nnUNetv2_train`` that append their argv (JSON) to ``log``."""
    bin_dir.mkdir()
    for name in ("nnUNetv2_plan_and_preprocess", "nnUNetv2_train"):
        tool = bin_dir / name
        tool.write_text("#!/usr/bin/env python3\nimport json, sys\n"
                        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
                        "print('progress a tool prints')\n", encoding="utf-8")
        tool.chmod(tool.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def nnunet_env(tmp_path) -> dict:
    raw, pre, res = (tmp_path / n for n in ("raw", "pre", "res"))
    ds = raw / "Dataset300_Sacrum"
    ds.mkdir(parents=True)
    (ds / "splits_final.json").write_text(json.dumps([{"train": ["a"], "val": ["b"]}]), encoding="utf-8")
    _stand_ins(tmp_path / "bin", tmp_path / "calls.jsonl")
    return {"nnUNet_raw": str(raw), "nnUNet_preprocessed": str(pre), "nnUNet_results": str(res), "DEVICE": "cpu",
            "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}


def test_cli_trains_every_fold_and_prints_the_model_record(nnunet_env, tmp_path, cli):
    proc = cli(MODULE, "300", "3d_fullres", "0 1", "nnUNetTrainer_2epochs_10iters",
               env={**nnunet_env, "TRAIN_ARGS": "--npz"})
    assert proc.returncode == 0, proc.stderr
    model = Path(nnunet_env["nnUNet_results"]) / "Dataset300_Sacrum" / \
        "nnUNetTrainer_2epochs_10iters__nnUNetPlans__3d_fullres"
    (rec,) = [json.loads(line) for line in proc.stdout.splitlines()]  # the tools' output went to stderr
    assert "progress a tool prints" in proc.stderr
    assert rec == {"stage": MODULE, "status": "written", "path": str(model), "dataset_id": "300",
                   "configuration": "3d_fullres", "folds": ["0", "1"], "trainer": "nnUNetTrainer_2epochs_10iters"}
    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text(encoding="utf-8").splitlines()]
    assert calls[0][:3] == ["-d", "300", "--verify_dataset_integrity"]
    assert [c[:3] for c in calls[1:]] == [["300", "3d_fullres", "0"], ["300", "3d_fullres", "1"]]
    assert all(c[-1] == "--npz" and "cpu" in c for c in calls[1:])
    split = Path(nnunet_env["nnUNet_preprocessed"]) / "Dataset300_Sacrum" / "splits_final.json"
    assert json.loads(split.read_text(encoding="utf-8")) == [{"train": ["a"], "val": ["b"]}]


def test_library_options_and_errors(nnunet_env, tmp_path, cli, monkeypatch):
    from totalseg_bids.train_nnunet import train

    for key, value in nnunet_env.items():
        monkeypatch.setenv(key, value)
    by_options = train("300", TrainOptions(folds=["2"], preprocess=False))
    assert by_options == train("300", folds=("2",), preprocess=False)
    calls = (tmp_path / "calls.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(calls) == 2 and all(json.loads(c)[:3] == ["300", "3d_fullres", "2"] for c in calls)
    with pytest.raises(UsageError, match="no fold"):
        TrainOptions(folds=())
    assert_one_line_error(cli(MODULE, "301", env=nnunet_env), "no Dataset301_* folder")
