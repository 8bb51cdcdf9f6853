"""The report page ``<qc>/index.html``: rebuilt from every record, opens from the file system.

The records are inlined in the page and the script and style sheet are local
copies, so the report works from ``file://`` with no server and no network.
"""

from __future__ import annotations

import hashlib
import html
import json
import shutil
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

from ..atomic import atomic_path, atomic_write_text, file_lock
from ..errors import OutputError
from .records import load_records

#: The marks a reviewer gives an entry in the page (exported as TSV/JSON, read back by :mod:`.marks`).
Mark = Literal["pass", "fail", "artifact"]
MARKS: tuple[str, ...] = get_args(Mark)
ASSETS = ("report.js", "report.css")


def script_json(data: Any) -> str:
    """JSON safe to inline inside ``<script type="application/json">``.

    >>> script_json({"a": "</script>"})
    '{"a": "\\\\u003c/script>"}'
    """
    return json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")


def _report_id(qc_dir: Path) -> str:
    """A random id kept in the QC folder: it keys the marks in the browser's
    localStorage (shared by every file:// page), and survives moving the folder."""
    path = qc_dir / ".report-id"
    if path.exists():
        text = path.read_text(encoding="utf-8").strip()
        if text:
            return text
    rid = uuid.uuid4().hex[:16]
    atomic_write_text(path, rid + "\n")
    return rid


def _asset_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "qc_assets"


def _copy_assets(qc_dir: Path) -> str:
    """Copy report.js/.css next to the page; return a version string for cache busting."""
    digest = hashlib.sha1()
    for name in ASSETS:
        src = _asset_dir() / name
        if not src.exists():
            raise OutputError("QC report asset missing from the installation", src,
                              "reinstall totalseg_bids (package data qc_assets/*)")
        data = src.read_bytes()
        digest.update(data)
        dst = qc_dir / "assets" / name
        if not dst.exists() or dst.read_bytes() != data:
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)
    return digest.hexdigest()[:10]


def _status_badge(rec: Mapping[str, Any]) -> str:
    return {"error": "flagged", "warning": "warning"}.get(rec.get("status", ""), "ok")


def _entry_rows(records: Sequence[Mapping[str, Any]]) -> str:
    """The server-rendered entry list (readable without script)."""
    rows = []
    for i, rec in enumerate(records):
        flags = "; ".join(f["message"] for f in rec.get("flags", []))
        rows.append(
            f'<tr class="entry-row status-{html.escape(rec.get("status", "ok"))}" data-index="{i}" '
            f'data-id="{html.escape(str(rec.get("id")))}"><td class="n">{i + 1}</td>'
            f'<td class="name" title="{html.escape(str(rec.get("label") or rec.get("image")))}">'
            f'{html.escape(str(rec.get("title")))}</td><td>{html.escape(str(rec.get("stage")))}</td>'
            f'<td class="badge {_status_badge(rec)}" title="{html.escape(flags)}">{_status_badge(rec)}</td>'
            f'<td class="mark"></td></tr>')
    return "\n".join(rows)


KEYS_HELP = ("<kbd>&rarr;</kbd>/<kbd>j</kbd> next &middot; <kbd>&larr;</kbd>/<kbd>k</kbd> previous &middot; "
             "<kbd>space</kbd>/<kbd>t</kbd> overlay &middot; <kbd>p</kbd> pass &middot; <kbd>f</kbd> fail "
             "&middot; <kbd>a</kbd> artifact &middot; <kbd>c</kbd> clear &middot; <kbd>n</kbd> next unmarked "
             "&middot; <kbd>e</kbd> export TSV &middot; <kbd>E</kbd> export JSON")


def report_html(records: Sequence[Mapping[str, Any]], report_id: str, version: str = "",
                title: str = "totalseg_bids QC") -> str:
    """The report page: the entry list, the records inlined as JSON, the local script/style sheet.

    >>> page = report_html([], "abc")
    >>> '<span id="entry-count">0</span>' in page and 'src="assets/report.js' in page
    True
    """
    flagged = sum(1 for r in records if r.get("status") == "error")
    data = {"report_id": report_id, "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
            "marks": list(MARKS), "entries": list(records)}
    v = f"?v={version}" if version else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="assets/report.css{v}">
</head>
<body>
<header id="top">
  <h1>{html.escape(title)}</h1>
  <div class="summary"><span id="entry-count">{len(records)}</span> entries &middot;
    <span id="flagged-count">{flagged}</span> flagged &middot; <span id="marked-count">0</span> marked</div>
  <div class="legend" id="legend">{KEYS_HELP}</div>
  <div class="tools">
    <label>show <select id="filter"><option value="all">all</option><option value="flagged">flagged</option>
      <option value="unmarked">unmarked</option><option value="fail">failed</option></select></label>
    <button id="export-tsv" type="button">Export TSV</button>
    <button id="export-json" type="button">Export JSON</button>
    <label class="import">Import marks <input id="import-json" type="file" accept=".json,application/json"></label>
  </div>
</header>
<div id="layout">
  <nav id="entry-list"><table><thead><tr><th>#</th><th>entry</th><th>stage</th><th>status</th><th>mark</th></tr>
  </thead><tbody>
{_entry_rows(records)}
  </tbody></table></nav>
  <main id="viewer"><p class="empty">{"No entries yet." if not records else "Loading&hellip;"}</p></main>
</div>
<section id="marks">
  <h2>Marks</h2>
  <table id="marks-table"></table>
  <pre id="marks-tsv"></pre>
</section>
<script id="qc-data" type="application/json">{script_json(data)}</script>
<script src="assets/report.js{v}"></script>
</body>
</html>
"""


def _build_report_locked(qc_dir: Path) -> Path:
    version = _copy_assets(qc_dir)
    page = report_html(load_records(qc_dir), _report_id(qc_dir), version)
    index = qc_dir / "index.html"
    atomic_write_text(index, page)
    return index


def build_report(qc_dir: str | Path) -> Path:
    """Rebuild ``<qc_dir>/index.html`` from every entry record (under the lock)."""
    qc_dir = Path(qc_dir)
    with file_lock(qc_dir / ".lock"):
        return _build_report_locked(qc_dir)
