"""Manual corrections: recorded in the sidecar's GeneratedBy, protected from --overwrite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from totalseg_bids import provenance, register
from totalseg_bids.core.errors import BatchError, InputError
from totalseg_bids.core.provenance import is_manual, mark_manual, refuse_manual_overwrite


def _sidecar(label: Path) -> dict:
    return json.loads(label.with_name(label.name.replace(".nii.gz", ".json")).read_text(encoding="utf-8"))


def test_mark_manual_appends_generated_by(tmp_path, capsys):
    label = tmp_path / "sub-01_T2w_label-sacrum_seg.nii.gz"
    label.write_bytes(b"x")
    label.with_name("sub-01_T2w_label-sacrum_seg.json").write_text('{"GeneratedBy": [{"Name": "totalseg_bids"}]}')
    assert provenance.main(["mark-manual", str(label), "--author", "Jane Doe", "--date", "2026-01-02"]) == 0
    gen = _sidecar(label)["GeneratedBy"]
    assert gen == [{"Name": "totalseg_bids"}, {"Name": "Manual", "Author": "Jane Doe", "Date": "2026-01-02"}]
    assert is_manual(label)
    with pytest.raises(InputError, match="corrected by hand"):
        refuse_manual_overwrite(label, True)
    refuse_manual_overwrite(label, "manual")  # --overwrite-manual
    assert provenance.main(["mark-manual", str(tmp_path / "gone.nii.gz"), "--author", "J"]) == 1
    assert "label file is missing" in capsys.readouterr().err


def test_mark_manual_batch_lists_every_failure(tmp_path, capsys):
    """One missing label fails the batch after the others are marked; the CLI prints the marked ones."""
    good = [tmp_path / f"sub-0{i}_T2w_label-sacrum_seg.nii.gz" for i in (1, 2)]
    for label in good:
        label.write_bytes(b"x")
    gone = tmp_path / "sub-03_T2w_label-sacrum_seg.nii.gz"
    with pytest.raises(BatchError) as info:
        provenance.mark_manual_labels([good[0], gone, good[1]], author="Jane Doe", date="2026-01-02")
    assert [item for item, _msg in info.value.failures] == [str(gone)]
    assert [r["label"] for r in info.value.done] == [str(p) for p in good]
    assert all(is_manual(p) for p in good)
    capsys.readouterr()
    assert provenance.main(["mark-manual", *map(str, good), str(gone), "--author", "J"]) == 1
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines()]
    assert [(r["stage"], r["status"], r["label"]) for r in records] == [("provenance", "written", str(p)) for p in good]
    assert records[0]["path"] == str(good[0].with_name("sub-01_T2w_label-sacrum_seg.json"))
    assert "label file is missing" in err
    assert provenance.main(["show", str(good[0]), str(gone)]) == 0
    shown = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["status"], r["manual"]) for r in shown] == [("manual", True), ("generated", False)]


def test_register_overwrite_keeps_manual_label(phantom_ds, capsys):
    """register --overwrite refuses a hand-corrected output; --overwrite-manual replaces it."""
    out = phantom_ds / "derivatives/reg-labels/sub-03/anat/sub-03_T1w_label-sacrum_seg.nii.gz"
    argv = ["--path-img", str(phantom_ds), "--contrasts", "T1w", "-j", "1"]
    assert register.main(argv) == 0
    mark_manual(out, "Jane Doe")
    edited = out.read_bytes()
    code = register.main(argv + ["--overwrite"])
    err = capsys.readouterr().err
    assert code == 1 and "corrected by hand" in err and out.name in err and "--overwrite-manual" in err, err
    assert out.read_bytes() == edited and is_manual(out)
    assert register.main(argv + ["--overwrite-manual"]) == 0
    assert not is_manual(out)
