"""One flag vocabulary: a flag means the same thing in every stage, legacy spellings are aliases.

Every stage's parser (and each sub-command's) is read through argparse, so a
new stage or option that spells a shared concept its own way fails here.
"""

from __future__ import annotations

import argparse
import importlib

import pytest
from support import STAGES, stage_parser

from totalseg_bids.core import flags


def _parsers(module: str) -> list[tuple[str, argparse.ArgumentParser]]:
    """The stage's parser and every sub-command parser below it."""
    root = stage_parser(module)
    found, todo = [], [(module, root)]
    while todo:
        name, parser = todo.pop()
        found.append((name, parser))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo += [(f"{name} {sub}", p) for sub, p in action.choices.items()]
    return found


PARSERS = [pytest.param(p, id=n) for m in STAGES for n, p in _parsers(m)]


def _option_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings]


@pytest.mark.parametrize("parser", PARSERS)
def test_shared_concepts_take_every_spelling(parser):
    """Whoever accepts one spelling of a shared concept accepts all of them."""
    for group in (flags.BIDS_DIR_FLAGS, flags.OUT_FLAGS, flags.DATASET_ID_FLAGS, flags.LABEL_INTERP_FLAGS):
        for action in _option_actions(parser):
            if set(action.option_strings) & set(group):
                assert set(group) <= set(action.option_strings), (action.option_strings, group)


@pytest.mark.parametrize("parser", PARSERS)
def test_d_is_always_the_dataset_id(parser):
    for action in _option_actions(parser):
        if "-d" in action.option_strings:
            assert "--dataset-id" in action.option_strings, action.option_strings


@pytest.mark.parametrize("parser", PARSERS)
def test_device_takes_both_spellings(parser):
    device = [a for a in _option_actions(parser) if "--device" in a.option_strings]
    for action in device:
        assert action.choices is None, "--device must accept cuda:N and gpu:N, not a fixed list"
        assert action.type("gpu:1") in ("cuda:1", "gpu:1") and action.type("cuda") in ("cuda", "gpu")
        assert action.type("cuda:0") == action.type("gpu:0")
        with pytest.raises(argparse.ArgumentTypeError):
            action.type("tpu")


@pytest.mark.parametrize("parser", PARSERS)
def test_jobs_default_is_every_core(parser):
    for action in _option_actions(parser):
        if "--jobs" in action.option_strings:
            assert action.default is None, f"-j defaults to {action.default}; every stage uses all cores by default"


def test_legacy_spellings_parse_to_the_same_value(tmp_path):
    """The workflow's own commands (--path-img, --path-out, -dnum) still work, and mean the canonical flags."""
    register = importlib.import_module("totalseg_bids.register.cli").get_parser()
    old = register.parse_args(["--path-img", str(tmp_path), "--path-out", str(tmp_path / "o")])
    new = register.parse_args(["--bids-dir", str(tmp_path), "-o", str(tmp_path / "o")])
    assert (old.bids_dir, old.out) == (new.bids_dir, new.out)
    convert = importlib.import_module("totalseg_bids.convert_config_to_nnunet").get_parser()
    a = convert.parse_args(["--config", "c.json", "-dnum", "300"])
    b = convert.parse_args(["--config", "c.json", "-d", "300"])
    c = convert.parse_args(["--config", "c.json", "--dataset-id", "300"])
    assert a.dataset_id == b.dataset_id == c.dataset_id == 300


def test_segment_ct_device_reaches_totalsegmentator_in_its_spelling():
    parser = importlib.import_module("totalseg_bids.segment_ct").get_parser()
    assert parser.parse_args(["--path-img", "ds", "--device", "cuda:1"]).device == "gpu:1"
    predict = importlib.import_module("totalseg_bids.predict").get_parser()
    assert predict.parse_args(["--bids-dir", "ds", "-d", "1", "--device", "gpu"]).device == "cuda"
