"""QC report: overlays land on the structure whatever the file orientation, entries
are flagged instead of crashing, parallel writers keep a consistent index, and the
page works in a real (headless) Chromium with real key presses (DevTools protocol
over a pipe, standard library only)."""

from __future__ import annotations

import base64
import contextlib
import json
import multiprocessing
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from totalseg_bids import qc
from totalseg_bids.core.errors import OutputError
from totalseg_bids.core.geometry import apply_affine
from totalseg_bids.core.nifti import load_image, load_label, save_mask
from totalseg_bids.core.qc.display import COMPARE_RGB
from totalseg_bids.core.qc.evaluate import orientation

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _gt(ds: Path, ent: str, suffix: str, what: str = "phantom_dseg") -> Path:
    """Ground-truth label ``sub-XX[_ses-YY]_<suffix>_label-<what>`` of the phantom."""
    structure, kind = what.rsplit("_", 1)
    folder = ds / "derivatives" / "ground_truth" / Path(*ent.split("_")) / "anat"
    return folder / f"{ent}_{suffix}_label-{structure}_{kind}.nii.gz"


def _img(ds: Path, ent: str, suffix: str) -> Path:
    return ds / Path(*ent.split("_")) / "anat" / f"{ent}_{suffix}.nii.gz"


# phantom grids: sub-01 CT RAS, oblique T1w near RAS; sub-02 CT LPS, oblique T1w near LPS;
# every T2w is sagittal ASL (2 x 2 x 4 mm)
ORIENTATIONS = [("sub-01", "CT", "RAS"), ("sub-02", "CT", "LPS"), ("sub-01", "acq-sag_T2w", "ASL"),
                ("sub-01", "T1w", "RAS"), ("sub-02", "T1w", "LPS")]


@pytest.fixture(scope="module")
def qc_ds(tmp_path_factory) -> Path:
    """Two phantom subjects (RAS and LPS), 1.5 mm CT: all these tests need, at a
    quarter of the cost of the shared three-subject template. Tests only read it."""
    from totalseg_bids.testing.phantoms import generate

    return generate(tmp_path_factory.mktemp("qc_phantom") / "ds", subjects=2, seed=5, ct_spacing=1.5)


def _centroid(mask: np.ndarray) -> np.ndarray:
    return np.argwhere(mask).mean(axis=0)


@pytest.mark.parametrize("sub,stem,codes", ORIENTATIONS)
def test_orientation_and_position_in_mosaics(qc_ds, sub, stem, codes):
    """Superior up, anterior left (sagittal); radiological axial; the drawn sacrum maps
    back to its ground-truth world position; whatever the storage order."""
    image, label = load_image(_img(qc_ds, sub, stem)), load_label(_gt(qc_ds, sub, stem))
    assert orientation(image.affine) == codes
    views = qc.render_views(image, label)
    sag, ax = views.sagittal, views.axial
    mid = len(sag.boxes) // 2
    top, left, h, w = sag.boxes[mid]
    tile = sag.label[top:top + h, left:left + w]
    sacrum, l5 = _centroid(tile == 1), _centroid(tile == 2)
    assert l5[0] < sacrum[0], "L5 (superior) must be drawn above the sacrum"
    assert l5[1] < sacrum[1], "L5 (anterior of the sacrum centre) must be left of it"
    # where the sacrum (value 1) is drawn maps back to where the ground truth puts it in the world
    truth = apply_affine(label.affine, np.argwhere(label.data == 1)).mean(axis=0)
    for view, keep in ((views.sagittal, [1, 2]), (views.axial, [0, 1])):
        total, weight = np.zeros(3), 0
        for t, (top, left, h, w) in enumerate(view.boxes):
            rows, cols = np.nonzero(view.label[top:top + h, left:left + w] == 1)
            if rows.size:  # world() is affine per tile: the mean pixel maps to the mean point
                total += rows.size * view.world(t, top + rows.mean(), left + cols.mean())
                weight += rows.size
        drawn = total / weight
        assert np.allclose(drawn[keep], truth[keep], atol=5.0), (view.name, drawn, truth)
    lo, hi = image.grid.world_bounds()
    if lo[0] > -60 or hi[0] < 60:
        return  # the sagittal T2w (96 mm wide) does not reach the hips
    # axial: a tile with both hips; value 4 (hip_right) sits at +x, the patient's right -> the
    # viewer's left in the radiological convention; value 3 (hip_left) on the viewer's right
    for top, left, h, w in ax.boxes:
        tile = ax.label[top:top + h, left:left + w]
        if (tile == 3).sum() > 20 and (tile == 4).sum() > 20 and (tile == 1).sum() > 20:
            left_hip, right_hip, sacrum = _centroid(tile == 3), _centroid(tile == 4), _centroid(tile == 1)
            assert right_hip[1] < sacrum[1] < left_hip[1]
            assert max(right_hip[0], left_hip[0]) < sacrum[0], "hips are anterior of the sacrum: drawn above"
            break
    else:
        pytest.fail("no axial tile shows both hips and the sacrum")


def _png(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path))


def _contrast(qc_dir: Path, record_path: Path, view: str = "sagittal") -> float:
    """Mean grey inside the drawn label minus a 3-pixel ring around it, from the PNGs."""
    from scipy import ndimage

    rec = json.loads(record_path.read_text(encoding="utf-8"))
    plain = _png(qc_dir / rec["views"][view]["image"]).astype(float)
    over = _png(qc_dir / rec["views"][view]["overlay"]).astype(float)
    assert plain.ndim == 2 and over.shape == plain.shape + (3,)
    drawn = np.any(over != plain[..., None], axis=2)
    ring = ndimage.binary_dilation(drawn, iterations=3) & ~drawn & (plain > 0)
    assert drawn.sum() > 200 and ring.sum() > 100
    return plain[drawn].mean() - plain[ring].mean()


@pytest.mark.parametrize("sub,stem,codes", ORIENTATIONS)
def test_png_overlay_lands_on_bright_bone(qc_ds, tmp_path, sub, stem, codes):
    """In the PNGs the coloured pixels sit on the bright sacrum, and a label moved by
    12 mm (negative control) visibly does not."""
    label_path = _gt(qc_ds, sub, stem, "sacrum_seg")
    rec = qc.add_entry(tmp_path / "qc", _img(qc_ds, sub, stem), label_path)
    good = _contrast(tmp_path / "qc", rec)
    assert good > 30, good
    lab = load_label(label_path)
    moved = lab.affine.copy()
    moved[:3, 3] += [0.0, 12.0, 0.0]
    shifted = tmp_path / label_path.name.replace("label-sacrum", "label-shifted")
    save_mask(lab.data, moved, shifted)
    bad = _contrast(tmp_path / "qc", qc.add_entry(tmp_path / "qc", _img(qc_ds, sub, stem), shifted))
    assert bad < good - 20, (good, bad)


def test_figures_flags_and_replacement(qc_ds, tmp_path):
    qcd = tmp_path / "qc"
    img = _img(qc_ds, "sub-01", "acq-sag_T2w")
    ok = json.loads(qc.add_entry(qcd, img, _gt(qc_ds, "sub-01", "acq-sag_T2w", "sacrum_seg"),
                                 stage="register", meta={"dice": np.float32(0.9)}).read_text(encoding="utf-8"))
    f = ok["figures"]
    assert ok["status"] == "ok" and f["components"] == 1 and f["grid_match"] and not f["empty"]
    assert 30 < f["volume_ml"] < 120 and ok["meta"] == {"dice": pytest.approx(0.9)}
    # missing label, label on another grid (the CT's), an empty label, a corrupt image
    missing = qc.add_entry(qcd, img, tmp_path / "sub-01_acq-sag_T2w_label-gone_seg.nii.gz")
    mismatch = qc.add_entry(qcd, img, _gt(qc_ds, "sub-01", "CT", "sacrum_seg"))
    empty_path = tmp_path / "sub-01_acq-sag_T2w_label-none_seg.nii.gz"
    lab = load_label(_gt(qc_ds, "sub-01", "acq-sag_T2w", "sacrum_seg"))
    save_mask(np.zeros_like(lab.data), lab.affine, empty_path)
    empty = qc.add_entry(qcd, img, empty_path)
    corrupt = tmp_path / "sub-09_T2w.nii.gz"
    corrupt.write_bytes(b"\x1f\x8bnot really gzip")
    broken = qc.add_entry(qcd, corrupt, None)
    codes = {p.stem: {fl["code"] for fl in json.loads(p.read_text(encoding="utf-8"))["flags"]}
             for p in (missing, mismatch, empty, broken)}
    assert "missing_label" in codes[missing.stem]
    assert "grid_mismatch" in codes[mismatch.stem]
    assert "empty_label" in codes[empty.stem]
    assert {"image_unreadable", "missing_label"} <= codes[broken.stem]
    mm = json.loads(mismatch.read_text(encoding="utf-8"))
    assert mm["status"] == "error" and mm["figures"]["grid_match"] is False and mm["views"]["sagittal"]["has_label"]
    # re-adding replaces: same id, same number of entries
    again = qc.add_entry(qcd, img, _gt(qc_ds, "sub-01", "acq-sag_T2w", "sacrum_seg"))
    assert again.name == f"{ok['id']}.json"
    data = _page_data(qcd / "index.html")
    assert len(data["entries"]) == 5
    assert sum(e["status"] == "error" for e in data["entries"]) == 4


def test_compare_label_for_register(qc_ds, tmp_path):
    """The CT label, header-resampled onto the MRI, is drawn as a cyan contour and its
    offset from the MRI label is measured (here a CT label moved 5 mm anteriorly)."""
    ct_label = load_label(qc_ds / "derivatives" / "labels" / "sub-01" / "anat" / "sub-01_CT_label-sacrum_seg.nii.gz")
    moved = ct_label.affine.copy()
    moved[:3, 3] += [0.0, 5.0, 0.0]
    compare = save_mask(ct_label.data, moved, tmp_path / "sub-01_CT_label-sacrum_seg.nii.gz")
    img = _img(qc_ds, "sub-01", "acq-sag_T2w")
    rec = json.loads(qc.add_entry(tmp_path / "qc", img, _gt(qc_ds, "sub-01", "acq-sag_T2w", "sacrum_seg"),
                                  stage="register", compare_label=compare).read_text(encoding="utf-8"))
    assert rec["views"]["sagittal"]["has_compare"] and rec["compare_label"] == str(compare)
    assert rec["figures"]["dice_vs_compare"] < 0.95
    assert rec["figures"]["centroid_shift_mm"] == pytest.approx(5.0, abs=1.0)
    over = _png(tmp_path / "qc" / rec["views"]["sagittal"]["overlay"])
    assert np.all(over == COMPARE_RGB, axis=2).sum() > 50


def _page_data(index: Path) -> dict:
    text = index.read_text(encoding="utf-8")
    m = re.search(r'<script id="qc-data" type="application/json">(.*?)</script>', text, re.S)
    return json.loads(m.group(1))


def _twenty_pairs(ds: Path) -> list[tuple[Path, Path]]:
    pairs = []
    for lab in sorted((ds / "derivatives").rglob("*seg.nii.gz")):
        pairs.append((qc_image_for(lab), lab))
    return pairs[:20]


def qc_image_for(label: Path) -> Path:
    from totalseg_bids.core.bids import image_for_label

    return image_for_label(label)


def test_twenty_entries_in_seconds(qc_ds, tmp_path):
    pairs = _twenty_pairs(qc_ds)
    assert len(pairs) == 20
    t0 = time.perf_counter()
    results = qc.add_entries(tmp_path / "qc", pairs, jobs=2)
    index = Path(results[-1]["path"])
    assert results[-1]["kind"] == "report" and results[-1]["entries"] == 20
    assert [r["label"] for r in results[:-1]] == [str(lab) for _, lab in pairs]
    assert all(Path(r["path"]).parent == tmp_path / "qc" / "entries" for r in results[:-1])
    seconds = time.perf_counter() - t0
    print(f"20 QC entries in {seconds:.1f} s")
    data = _page_data(index)
    assert len(data["entries"]) == 20
    # the sagittal T2w and oblique T1w cut the hips: "touches edge" warnings, never errors
    assert all(e["status"] != "error" for e in data["entries"])
    assert {f["code"] for e in data["entries"] for f in e["flags"]} <= {"touches_edge"}
    assert '<span id="entry-count">20</span>' in index.read_text(encoding="utf-8")
    for e in data["entries"]:
        for v in e["views"].values():
            assert (index.parent / v["image"]).stat().st_size > 1000


def _writer(args: tuple) -> None:
    qc_dir, pairs = args
    for img, lab in pairs:
        qc.add_entry(qc_dir, img, lab)


def test_parallel_writers_keep_every_entry(qc_ds, tmp_path):
    pairs = _twenty_pairs(qc_ds)[:6]
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=((tmp_path / "qc", pairs[i::2]),)) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    data = _page_data(tmp_path / "qc" / "index.html")
    assert sorted(e["id"] for e in data["entries"]) == sorted(qc.entry_stem(lab) for _, lab in pairs)
    assert not list((tmp_path / "qc").rglob(".tmp-*"))


def test_cli(cli, qc_ds, tmp_path, capsys):
    labels = [str(lab) for _, lab in _twenty_pairs(qc_ds)[:3]]
    proc = cli("qc", "--labels", *labels, "--qc", tmp_path / "qc")
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["kind"] for r in records] == ["entry"] * 3 + ["report"]
    assert {r["stage"] for r in records} == {"qc"} and {r["status"] for r in records} == {"written"}
    assert records[-1]["path"] == str(tmp_path / "qc" / "index.html") and records[-1]["entries"] == 3
    assert [r["label"] for r in records[:3]] == labels
    assert len(_page_data(tmp_path / "qc" / "index.html")["entries"]) == 3
    proc = cli("qc", "--images", str(_img(qc_ds, "sub-01", "CT")), "--labels", *labels[:2], "--qc", tmp_path / "q2")
    assert proc.returncode == 2 and "--images" in proc.stderr
    cfg = tmp_path / "config.json"
    rel = [str(Path(lab).relative_to(qc_ds.parent)) for lab in labels]
    cfg.write_text(json.dumps({"TYPE": "LABEL", "DATASETS_PATH": "/nowhere", "TRAINING": rel[:2], "TESTING": rel[2:]}))
    capsys.readouterr()
    assert qc.main(["--config", str(cfg), "--datasets-path", str(qc_ds.parent), "--qc", str(tmp_path / "q3")]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["path"] == str(tmp_path / "q3" / "index.html")
    assert len(_page_data(tmp_path / "q3" / "index.html")["entries"]) == 3


# ------------------------------------------------------------------ browser
class Chromium:
    """Headless Chromium driven through the DevTools protocol on a pipe (fds 3/4),
    so no websocket package and no open port are needed."""

    def __init__(self, profile: Path):
        to_child_r, self._w = os.pipe()
        self._r, from_child_w = os.pipe()

        def wire():  # in the child: our pipe ends become fds 3 (read) and 4 (write)
            a, b = os.dup(to_child_r), os.dup(from_child_w)
            os.dup2(a, 3)
            os.dup2(b, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-extensions", f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            preexec_fn=wire, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(from_child_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []
        page = next(t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
        self.session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]

    def call(self, method: str, session: str | None = None, timeout: float = 30, **params) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply["result"]
                self.events.append(reply)
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError(method)
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise EOFError("chromium closed the pipe")
            self._buf += chunk

    def page(self, method: str, **params) -> dict:
        return self.call(method, session=self.session, **params)

    def js(self, expression: str):
        res = self.page("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in res:
            raise RuntimeError(res["exceptionDetails"])
        return res["result"].get("value")

    def open(self, url: str) -> None:
        self.page("Page.navigate", url=url)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.js("document.readyState === 'complete' && document.body.dataset.ready === '1'"):
                return
            time.sleep(0.05)
        raise TimeoutError(url)

    def key(self, key: str, shift: bool = False) -> None:
        """A real key press (keyDown/keyUp), as a user's keyboard sends it."""
        named = {"ArrowRight": 39, "ArrowLeft": 37, " ": 32}
        code = named[key] if key in named else ord(key.upper())
        params = {"key": key, "windowsVirtualKeyCode": code, "modifiers": 8 if shift else 0,
                  "code": {" ": "Space"}.get(key, key if key in named else f"Key{key.upper()}")}
        if len(key) == 1:
            self.page("Input.dispatchKeyEvent", type="keyDown", text=key, **params)
        else:
            self.page("Input.dispatchKeyEvent", type="rawKeyDown", **params)
        self.page("Input.dispatchKeyEvent", type="keyUp", **params)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # it is going away anyway
            self.call("Browser.close", timeout=5)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._w)
        os.close(self._r)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is not installed")
def test_report_in_headless_chromium(qc_ds, tmp_path):
    from PIL import Image

    qcd = tmp_path / "qc"
    pairs = _twenty_pairs(qc_ds)[:5]
    qc.add_entries(qcd, pairs, jobs=1)
    qc.add_entry(qcd, pairs[0][0], tmp_path / "sub-01_CT_label-missing_seg.nii.gz")  # a flagged entry
    n = len(_page_data(qcd / "index.html")["entries"])
    assert n == 6
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser = Chromium(Path(tempfile.mkdtemp(dir=tmp_path)))
    try:
        browser.page("Emulation.setDeviceMetricsOverride", width=1400, height=1000, deviceScaleFactor=1,
                     mobile=False)
        browser.call("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(downloads))
        browser.open((qcd / "index.html").as_uri())
        assert browser.js("document.getElementById('entry-count').textContent") == str(n)
        assert browser.js("document.querySelectorAll('#entry-list tr.entry-row').length") == n
        assert browser.js("document.querySelectorAll('tr.status-error').length") == 1
        deadline = time.monotonic() + 10
        while not browser.js("[...document.images].filter(i => i.classList.contains('mosaic'))"
                             ".every(i => i.complete && i.naturalWidth > 0) && document.images.length >= 2"):
            assert time.monotonic() < deadline, "mosaic images did not load"
            time.sleep(0.05)
        shot = base64.b64decode(browser.page("Page.captureScreenshot", format="png")["data"])
        (tmp_path / "screenshot.png").write_bytes(shot)
        pixels = np.asarray(Image.open(tmp_path / "screenshot.png").convert("L"), float)
        assert pixels.std() > 20, "screenshot is blank"
        # keyboard review: p (pass), j, f (fail), ArrowRight, a (artifact), space (overlay off), ArrowLeft
        for key in ("p", "j", "f", "ArrowRight", "a", " ", "ArrowLeft"):
            browser.key(key)
        assert browser.js("document.getElementById('position').textContent") == f"2 / {n}"
        assert browser.js("document.getElementById('overlay-state').textContent") == "overlay off"
        assert "_overlay" not in browser.js("document.querySelector('img.mosaic').getAttribute('src')")
        tsv = browser.js("document.getElementById('marks-tsv').textContent")
        rows = [line.split("\t") for line in tsv.strip().splitlines()]
        header, body = rows[0], rows[1:]
        marks = [r[header.index("mark")] for r in body]
        assert len(body) == n and marks[:3] == ["pass", "fail", "artifact"] and not any(marks[3:])
        assert browser.js("document.getElementById('marked-count').textContent") == "3"
        # marks survive a reload (localStorage), then export with the e key
        browser.open((qcd / "index.html").as_uri())
        assert browser.js("document.querySelectorAll('#marks-table tbody tr').length") == 3
        browser.key("e")
        deadline = time.monotonic() + 10
        while not (downloads / "qc_marks.tsv").exists():
            assert time.monotonic() < deadline, "no TSV download"
            time.sleep(0.05)
        time.sleep(0.2)
        assert (downloads / "qc_marks.tsv").read_text(encoding="utf-8") == tsv
        browser.key("E", shift=True)
        deadline = time.monotonic() + 10
        while not (downloads / "qc_marks.json").exists():
            assert time.monotonic() < deadline, "no JSON download"
            time.sleep(0.05)
        time.sleep(0.2)
        exported = json.loads((downloads / "qc_marks.json").read_text(encoding="utf-8"))
        assert [m["mark"] for m in exported["marks"]][:3] == ["pass", "fail", "artifact"]
        _check_marks_decide_training(downloads / "qc_marks.tsv", [Path(r[header.index("label")]) for r in body])
        # a rerun re-adds an unchanged entry: its mark stays; a changed label loses it
        entries = _page_data(qcd / "index.html")["entries"]
        first = next(e for e in entries if e["label"] == body[0][header.index("label")])
        qc.add_entry(qcd, first["image"], first["label"])
        browser.open((qcd / "index.html").as_uri())
        assert browser.js("document.getElementById('marked-count').textContent") == "3"
    finally:
        browser.close()


def _check_marks_decide_training(tsv: Path, labels: list[Path]) -> None:
    """The exported marks drop failed/artifact labels; a label changed after review is not trusted."""
    from totalseg_bids.core.qc.marks import filter_labels, read_marks

    marks = read_marks(tsv)
    kept, dropped = filter_labels(labels, marks, exclude=("fail", "artifact"))
    assert kept == [labels[0]] + labels[3:] and [why for _, why in dropped] == ["marked fail", "marked artifact"]
    kept, dropped = filter_labels(labels, marks, require_pass=True)
    assert kept == [labels[0]] and len(dropped) == len(labels) - 1
    marks[str(labels[0].absolute())]["checksum"] = "sha256:" + "0" * 64  # as if reviewed before a rewrite
    kept, dropped = filter_labels(labels, marks, require_pass=True)
    assert not kept and dropped[0] == (labels[0], "reviewed an older version")


def test_missing_label_with_any_name_is_reported_missing(tmp_path, capsys):
    """A label that does not exist is 'missing', not a naming problem, whatever its name."""
    code = qc.main(["--labels", str(tmp_path / "x.nii.gz"), "--qc", str(tmp_path / "qc")])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert code == 1 and len(lines) == 1 and "label file is missing" in lines[0], err
    assert "BIDS" not in err, err


def test_batch_with_a_missing_label_raises_once_and_keeps_the_others(qc_ds, tmp_path):
    """A library batch fails with one BatchError naming the bad input; the good entries and the
    page (with the bad input flagged) are written and come back in ``done``."""
    from totalseg_bids.core.errors import BatchError

    pairs = _twenty_pairs(qc_ds)[:2]
    missing = tmp_path / "sub-01_CT_label-missing_seg.nii.gz"
    with pytest.raises(BatchError) as caught:
        qc.add_entries(tmp_path / "qc", [*pairs, (pairs[0][0], missing)], qc.QcOptions(stage="register"))
    exc = caught.value
    assert [item for item, _ in exc.failures] == [qc.entry_stem(missing)]
    assert "label file is missing" in exc.failures[0][1] and str(missing) in exc.failures[0][1]
    entries = [r for r in exc.done if r["kind"] == "entry"]
    assert [r["label"] for r in entries] == [str(lab) for _, lab in pairs]
    assert all(Path(r["path"]).is_file() for r in entries)
    report = exc.done[-1]
    assert report["kind"] == "report" and report["entries"] == 3
    data = _page_data(Path(report["path"]))
    assert {e["stage"] for e in data["entries"]} == {"register"}
    assert [e["status"] for e in data["entries"] if e["label"] == str(missing)] == ["error"]


def test_add_entry_hook_never_raises(qc_ds, tmp_path):
    """The hook other stages call logs and returns None when the report cannot be written."""
    blocker = tmp_path / "qc"
    blocker.write_text("a file where the QC folder should be")
    img = _img(qc_ds, "sub-01", "acq-sag_T2w")
    assert qc.add_entry(blocker, img, _gt(qc_ds, "sub-01", "acq-sag_T2w", "sacrum_seg")) is None
    with pytest.raises(OutputError, match="cannot create folder"):
        qc.write_entry(blocker, img, _gt(qc_ds, "sub-01", "acq-sag_T2w", "sacrum_seg"))
