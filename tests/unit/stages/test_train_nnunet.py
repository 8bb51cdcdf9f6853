"""totalseg_bids.train_nnunet: the glue around nnU-Net's own tools (checks, split file, folds, resume,
find_best_configuration, stdout records).

nnU-Net's tools are replaced by stand-ins that only log their arguments (find_best_configuration's also
writes its ``inference_information.json``): the real plan/preprocess/train/find_best runs in the slow
session fixture (tests/support/nnunet.py) and the README workflow.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from support import assert_one_line_error

from totalseg_bids.core.errors import UsageError
from totalseg_bids.train_nnunet import TrainOptions, get_parser, main, options_from_cli, train

MODULE = "train_nnunet"
TRAINER = "nnUNetTrainer_2epochs_10iters"
FIND_BEST = """
import json, os, sys
args = sys.argv[1:]
def after(flag):
    i = args.index(flag) + 1
    out = []
    while i < len(args) and not args[i].startswith("-"):
        out.append(args[i]); i += 1
    return out
folder = [d for d in os.listdir(os.environ["nnUNet_results"]) if d.startswith("Dataset%03d_" % int(args[0]))][0]
models = [{"plans": after("-p")[0], "configuration": c, "trainer": after("-tr")[0]} for c in after("-c")]
best = {"selected_model_or_models": [{"configuration": models[0]["configuration"], "trainer": models[0]["trainer"],
                                      "plans_identifier": models[0]["plans"]}],
        "result_on_crossval_pre_pp": 0.8, "result_on_crossval_post_pp": 0.85, "postprocessing_file": "pp.pkl"}
info = {"folds": [int(f) for f in after("-f")], "considered_models": models, "best_model_or_ensemble": best}
open(os.path.join(os.environ["nnUNet_results"], folder, "inference_information.json"), "w").write(json.dumps(info))
"""


def _stand_ins(bin_dir: Path, log: Path) -> None:
    """nnU-Net's tools as scripts that append ``[tool, argv...]`` (JSON) to ``log``."""
    bin_dir.mkdir()
    for name in ("nnUNetv2_plan_and_preprocess", "nnUNetv2_train", "nnUNetv2_find_best_configuration"):
        tool = bin_dir / name
        tool.write_text("#!/usr/bin/env python3\nimport json, sys\n"
                        f"open({str(log)!r}, 'a').write(json.dumps([{name!r}, *sys.argv[1:]]) + '\\n')\n"
                        "print('progress a tool prints')\n" + (FIND_BEST if "find_best" in name else ""),
                        encoding="utf-8")
        tool.chmod(tool.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def nnunet_env(tmp_path, monkeypatch) -> dict:
    """Raw, preprocessed and results folders, a converted dataset with two folds, and the stand-ins first
    on PATH; also set in this process (for the in-process ``main``/``train`` calls)."""
    raw, pre, res = (tmp_path / n for n in ("raw", "pre", "res"))
    ds = raw / "Dataset300_Sacrum"
    ds.mkdir(parents=True)
    (res / "Dataset300_Sacrum").mkdir(parents=True)
    (ds / "splits_final.json").write_text(json.dumps([{"train": ["a"], "val": ["b"]}, {"train": ["b"], "val": ["a"]}]),
                                          encoding="utf-8")
    _stand_ins(tmp_path / "bin", tmp_path / "calls.jsonl")
    env = {"nnUNet_raw": str(raw), "nnUNet_preprocessed": str(pre), "nnUNet_results": str(res), "DEVICE": "cpu",
           "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("TRAIN_ARGS", "SKIP_PREPROCESS", "TOTALSEG_BIDS_NNUNET_TRAINER"):
        monkeypatch.delenv(key, raising=False)
    return env


def _calls(tmp_path: Path) -> list[list[str]]:
    path = tmp_path / "calls.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def _model(env: dict, configuration: str = "3d_fullres") -> Path:
    return Path(env["nnUNet_results"]) / "Dataset300_Sacrum" / f"{TRAINER}__nnUNetPlans__{configuration}"


def _trained(env: dict, configuration: str, fold: int, npz: bool = False, final: bool = True) -> None:
    """A fold as nnU-Net leaves it: final checkpoint and validation (or only the latest checkpoint)."""
    fold_dir = _model(env, configuration) / f"fold_{fold}"
    (fold_dir / "validation").mkdir(parents=True, exist_ok=True)
    (fold_dir / ("checkpoint_final.pth" if final else "checkpoint_latest.pth")).write_bytes(b"x")
    if final:
        (fold_dir / "validation" / "summary.json").write_text("{}")
    if npz:
        (fold_dir / "validation" / "a.npz").write_bytes(b"x")


def test_seed_form_trains_every_fold_and_prints_the_model_record(nnunet_env, tmp_path, cli):
    """The seed's positional command line, in a subprocess as a user runs it."""
    proc = cli(MODULE, "300", "3d_fullres", "0 1", TRAINER, env={**nnunet_env, "TRAIN_ARGS": "--npz"})
    assert proc.returncode == 0, proc.stderr
    (rec,) = [json.loads(line) for line in proc.stdout.splitlines()]  # the tools' output went to stderr
    assert "progress a tool prints" in proc.stderr
    assert rec == {"stage": MODULE, "status": "written", "path": str(_model(nnunet_env)), "dataset_id": "300",
                   "configuration": "3d_fullres", "folds": [0, 1], "trained": [0, 1], "trainer": TRAINER,
                   "plans": "nnUNetPlans"}
    calls = _calls(tmp_path)
    assert calls[0][:4] == ["nnUNetv2_plan_and_preprocess", "-d", "300", "--verify_dataset_integrity"]
    assert [c[:4] for c in calls[1:]] == [["nnUNetv2_train", "300", "3d_fullres", "0"],
                                          ["nnUNetv2_train", "300", "3d_fullres", "1"]]
    assert all(c.count("--npz") == 1 and "cpu" in c for c in calls[1:])
    split = Path(nnunet_env["nnUNet_preprocessed"]) / "Dataset300_Sacrum" / "splits_final.json"
    assert len(json.loads(split.read_text(encoding="utf-8"))) == 2
    assert "find_best_configuration runs once folds 0 1 of 3d_fullres are trained" in proc.stderr


@pytest.mark.parametrize("folds,needle", [(["5"], "fold 5 is not in the split file (folds 0-1)"),
                                          (["0", "2"], "fold 2 is not in the split file")])
def test_a_fold_the_split_file_lacks_is_refused_before_planning(nnunet_env, tmp_path, capsys, folds, needle):
    assert main(["-d", "300", "-f", *folds, "-tr", TRAINER]) == 1
    err = capsys.readouterr().err
    assert needle in err and "splits_final.json" in err and len(err.strip().splitlines()) == 1
    assert _calls(tmp_path) == []  # nothing planned, nothing trained


def test_no_split_file_is_refused(nnunet_env, tmp_path, capsys):
    (Path(nnunet_env["nnUNet_raw"]) / "Dataset300_Sacrum" / "splits_final.json").unlink()
    assert main(["-d", "300", "-f", "0"]) == 1
    assert "no splits_final.json: nnU-Net would split the cases at random" in capsys.readouterr().err
    assert _calls(tmp_path) == []


def test_all_folds_of_two_configurations_resume_then_find_best(nnunet_env, tmp_path, capsys):
    """``-f all -c 3d_fullres 2d``: --npz implied; complete folds skipped, an interrupted one continued,
    a fold without its probabilities only validated; once every fold is trained, find_best_configuration
    runs over both configurations with ensembling, and its choice is the last record."""
    _trained(nnunet_env, "3d_fullres", 0, npz=True)
    _trained(nnunet_env, "3d_fullres", 1, final=False)  # interrupted: only checkpoint_latest.pth
    _trained(nnunet_env, "2d", 0)  # trained without --npz
    assert main(["-d", "300", "-c", "3d_fullres", "2d", "-f", "all", "-tr", TRAINER]) == 0
    calls = _calls(tmp_path)
    assert calls[0][:2] == ["nnUNetv2_plan_and_preprocess", "-d"] and calls[0][5:7] == ["3d_fullres", "2d"]
    train_calls = {(c[2], c[3]): c for c in calls if c[0] == "nnUNetv2_train"}
    assert sorted(train_calls) == [("2d", "0"), ("2d", "1"), ("3d_fullres", "1")]
    assert "--c" in train_calls[("3d_fullres", "1")] and "--val" in train_calls[("2d", "0")]
    assert all("--npz" in c for c in train_calls.values())
    assert not any(c[0] == "nnUNetv2_find_best_configuration" for c in calls)  # the stand-ins wrote no folds
    # every fold is there now: a rerun trains nothing, plans nothing, and asks nnU-Net for its choice
    for configuration in ("3d_fullres", "2d"):
        for fold in (0, 1):
            _trained(nnunet_env, configuration, fold, npz=True)
    (tmp_path / "calls.jsonl").unlink()
    capsys.readouterr()
    assert main(["-d", "300", "-c", "3d_fullres", "2d", "-f", "all", "-tr", TRAINER]) == 0
    (find,) = _calls(tmp_path)
    assert find[0] == "nnUNetv2_find_best_configuration" and "--disable_ensembling" not in find
    assert find[find.index("-c") + 1:find.index("-tr")] == ["2d", "3d_fullres"]
    assert find[find.index("-f") + 1:find.index("-np")] == ["0", "1"]
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["status"] for r in records] == ["skipped", "skipped", "written"]
    assert records[-1]["kind"] == "best_configuration" and records[-1]["best"] == f"{TRAINER}__nnUNetPlans__2d"
    assert (records[-1]["dice"], records[-1]["dice_postprocessed"], records[-1]["folds"]) == (0.8, 0.85, [0, 1])
    # nothing new: the recorded choice is reused
    (tmp_path / "calls.jsonl").unlink()
    assert main(["-d", "300", "-c", "3d_fullres", "2d", "-f", "all", "-tr", TRAINER]) == 0
    assert _calls(tmp_path) == []
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["status"] == "skipped"


def test_options_and_command_line(nnunet_env, tmp_path, monkeypatch):
    by_options = train("300", TrainOptions(folds=["1"], preprocess=False, trainer=TRAINER, find_best=False))
    assert by_options == train("300", folds=("1",), preprocess=False, trainer=TRAINER, find_best=False)
    calls = _calls(tmp_path)
    assert [c[:4] for c in calls] == [["nnUNetv2_train", "300", "3d_fullres", "1"]] * 2
    with pytest.raises(UsageError, match="no fold"):
        TrainOptions(folds=())
    with pytest.raises(UsageError, match="invalid fold"):
        TrainOptions(folds=["x"])
    with pytest.raises(UsageError, match="already names every fold"):
        TrainOptions(folds=["all", "0"])
    assert TrainOptions(configurations=["3d_fullres", "2d"]).save_npz and not TrainOptions().save_npz

    def parse(*argv):
        return options_from_cli(get_parser().parse_args(list(argv)))

    monkeypatch.setenv("TOTALSEG_BIDS_NNUNET_TRAINER", TRAINER)
    dataset_id, opts = parse("300", "2d", "0 1 2")
    assert (dataset_id, opts.configurations, opts.folds, opts.trainer) == ("300", ("2d",), ("0", "1", "2"), TRAINER)
    assert parse("-d", "300", "-c", "2d", "3d_fullres", "-f", "all", "--no-npz")[1].npz is False
    with pytest.raises(UsageError, match="given twice"):
        parse("300", "-d", "301")
    with pytest.raises(UsageError, match="no dataset id"):
        parse("-f", "0")


def test_missing_dataset_is_one_line(nnunet_env, cli):
    assert_one_line_error(cli(MODULE, "301", env=nnunet_env), "no Dataset301_* folder")
