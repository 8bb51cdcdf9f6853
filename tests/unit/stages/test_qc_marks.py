"""init_data_config --qc-marks: the marks exported from the QC report decide what trains."""

from __future__ import annotations

import json
from pathlib import Path

from totalseg_bids import init_data_config
from totalseg_bids.qc import file_checksum


def test_config_from_marks(phantom_ds, tmp_path, capsys):
    labels = sorted((phantom_ds / "derivatives" / "ground_truth").rglob("*_T2w_label-sacrum_seg.nii.gz"))
    assert len(labels) >= 3
    txt = tmp_path / "labels.txt"
    txt.write_text("".join(f"{p}\n" for p in labels), encoding="utf-8")
    marks = tmp_path / "qc_marks.tsv"
    rows = [("pass", labels[0]), ("fail", labels[1]), ("artifact", labels[2])]
    marks.write_text("id\tmark\tlabel\tchecksum\n" + "".join(
        f"e{i}\t{m}\t{p}\t{file_checksum(p)}\n" for i, (m, p) in enumerate(rows)), encoding="utf-8")

    def config(*extra) -> list[str]:
        out = tmp_path / "config.json"
        code = init_data_config.main(["--txt", str(txt), "--type", "LABEL", "--split-validation", "0",
                                      "--split-test", "0", "-o", str(out), "--qc-marks", str(marks), *extra])
        assert code == 0, capsys.readouterr().err
        cfg = json.loads(out.read_text(encoding="utf-8"))
        return sorted(Path(e).name for s in ("TRAINING", "VALIDATION", "TESTING") for e in cfg[s])

    names = [p.name for p in labels]
    assert config("--exclude", "fail,artifact") == sorted([names[0]] + names[3:])
    assert "marked fail" in capsys.readouterr().err
    assert config("--require-pass") == [names[0]]
    labels[0].write_bytes(labels[0].read_bytes())  # unchanged bytes: still trusted
    assert config("--require-pass") == [names[0]]
    import nibabel as nib
    import numpy as np

    img = nib.load(str(labels[0]))
    data = np.asanyarray(img.dataobj).copy()
    data[tuple(np.argwhere(data > 0)[0])] = 0  # edited after the review
    nib.save(nib.Nifti1Image(data, img.affine, img.header), str(labels[0]))
    capsys.readouterr()
    out = tmp_path / "config.json"
    code = init_data_config.main(["--txt", str(txt), "--type", "LABEL", "-o", str(out), "--qc-marks", str(marks),
                                  "--require-pass", "--split-validation", "0", "--split-test", "0"])
    assert "reviewed an older version" in capsys.readouterr().err
    assert code == 1 or not json.loads(out.read_text(encoding="utf-8"))["TRAINING"]
