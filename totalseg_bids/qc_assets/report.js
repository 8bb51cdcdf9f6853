/* totalseg_bids QC report: keyboard review of label overlays.
 *
 * Runs from file:// with no server and no network: the entry records are
 * inlined in index.html (#qc-data); marks live in localStorage under a key
 * that includes the report id (every file:// page shares one origin), and
 * are mirrored into the page (#marks-table, #marks-tsv) so they can be read
 * back, copied, or checked by tests.
 */
(function () {
  "use strict";

  var data = JSON.parse(document.getElementById("qc-data").textContent);
  var entries = data.entries || [];
  var STORE = "totalseg_bids.qc.marks:" + data.report_id;
  var MARKS = data.marks || ["pass", "fail", "artifact"];
  var KEY_MARKS = { p: "pass", f: "fail", a: "artifact" };
  var TSV_COLUMNS = ["id", "subject", "session", "stage", "status", "mark", "marked_at", "flags", "image", "label",
    "checksum"];

  var state = { index: 0, overlay: true, filter: "all", marks: loadMarks() };
  var rows = Array.prototype.slice.call(document.querySelectorAll("#entry-list tr.entry-row"));
  var viewer = document.getElementById("viewer");

  function loadMarks() {
    try {
      var parsed = JSON.parse(window.localStorage.getItem(STORE) || "{}");
      return parsed && typeof parsed === "object" ? parsed : {};
    } catch (err) {
      return {};
    }
  }

  function saveMarks() {
    try {
      window.localStorage.setItem(STORE, JSON.stringify(state.marks));
    } catch (err) {
      /* storage disabled (private mode): marks still live in the page and can be exported */
    }
  }

  function esc(value) {
    return String(value === null || value === undefined ? "" : value)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }

  function markOf(entry) {
    var m = state.marks[entry.id];
    if (!m || MARKS.indexOf(m.mark) < 0) return null;
    /* a mark belongs to the version of the label that was reviewed: a changed file is unmarked again */
    if (m.checksum && entry.checksum && m.checksum !== entry.checksum) return null;
    return m;
  }

  function visible(i) {
    var e = entries[i];
    var m = markOf(e);
    switch (state.filter) {
      case "flagged": return e.status !== "ok";
      case "unmarked": return !m;
      case "fail": return !!m && m.mark === "fail";
      default: return true;
    }
  }

  function visibleIndices() {
    var out = [];
    for (var i = 0; i < entries.length; i++) if (visible(i)) out.push(i);
    return out;
  }

  function fmt(value) {
    if (value === true) return "yes";
    if (value === false) return "no";
    if (value === null || value === undefined) return "&ndash;";
    if (typeof value === "number") return esc(Math.abs(value) >= 1000 || Number.isInteger(value) ? value : value.toPrecision(4));
    if (typeof value === "object") return esc(JSON.stringify(value));
    return esc(value);
  }

  var ORIENT = {
    sagittal: { top: "S", bottom: "I", left: "A", right: "P",
      text: "superior up, anterior left; slices from the patient's right to left" },
    axial: { top: "A", bottom: "P", left: "R", right: "L",
      text: "radiological: patient's right on the left, anterior up; slices from superior to inferior" }
  };

  function viewHtml(entry, name) {
    var v = entry.views && entry.views[name];
    if (!v) return "";
    var o = ORIENT[name];
    var src = (state.overlay ? v.overlay : v.image) + "?t=" + encodeURIComponent(entry.created || "");
    var pos = (v.positions_mm || []).map(function (p) { return p.toFixed(1); }).join(", ");
    return '<figure class="view ' + name + '"><figcaption><b>' + name + "</b> &middot; " + esc(o.text) +
      " &middot; " + esc(v.axis) + " = " + esc(pos) + " mm</figcaption>" +
      '<div class="imgwrap"><img class="mosaic" data-view="' + name + '" alt="' + name + ' mosaic" src="' +
      esc(src) + '" width="' + v.width + '" height="' + v.height + '">' +
      '<span class="ori top">' + o.top + '</span><span class="ori bottom">' + o.bottom +
      '</span><span class="ori left">' + o.left + '</span><span class="ori right">' + o.right + "</span></div></figure>";
  }

  function figuresHtml(entry) {
    var f = entry.figures || {};
    var rowsOut = [];
    function add(label, value, cls) {
      rowsOut.push('<tr class="' + (cls || "") + '"><th>' + esc(label) + "</th><td>" + fmt(value) + "</td></tr>");
    }
    add("label volume (ml)", f.volume_ml);
    add("connected components (26)", f.components);
    add("empty label", f.empty, f.empty ? "bad" : "");
    add("touches FOV edge", f.touches_edge, f.touches_edge ? "warn" : "");
    add("image/label grid match", f.grid_match, f.grid_match === false ? "bad" : "");
    if (f.grid_mismatch) add("grid difference", f.grid_mismatch, "bad");
    if (f.classes && Object.keys(f.classes).length > 1) add("volume per class (ml)", f.classes);
    if (f.compare_volume_ml !== undefined) add("comparison label volume (ml)", f.compare_volume_ml);
    if (f.dice_vs_compare !== undefined) add("Dice vs comparison label", f.dice_vs_compare);
    if (f.centroid_shift_mm !== undefined) add("centroid shift vs comparison (mm)", f.centroid_shift_mm);
    var meta = entry.meta || {};
    Object.keys(meta).forEach(function (k) { add(k, meta[k], "meta"); });
    if (entry.window) add("window", entry.window.kind + " [" + entry.window.low + ", " + entry.window.high + "]");
    var g = entry.geometry || {};
    if (g.image) add("image orientation / spacing", g.image.orientation + " " + g.image.spacing_mm.join(" x ") + " mm");
    if (g.label) add("label orientation / spacing", g.label.orientation + " " + g.label.spacing_mm.join(" x ") + " mm");
    add("image", entry.image);
    add("label", entry.label);
    if (entry.compare_label) add("comparison label", entry.compare_label);
    return '<table class="figures">' + rowsOut.join("") + "</table>";
  }

  function render() {
    if (!entries.length) return;
    var e = entries[state.index];
    var m = markOf(e);
    var flags = (e.flags || []).map(function (fl) {
      return '<li class="' + esc(fl.level) + '">' + esc(fl.message) + "</li>";
    }).join("");
    var hasCompare = e.views && e.views.sagittal && e.views.sagittal.has_compare;
    viewer.innerHTML =
      '<div class="entry-head status-' + esc(e.status) + '">' +
      '<span id="position">' + (state.index + 1) + " / " + entries.length + "</span>" +
      '<h2 id="entry-title">' + esc(e.title) + "</h2>" +
      '<span class="badge ' + (e.status === "error" ? "flagged" : e.status === "warning" ? "warning" : "ok") + '">' +
      (e.status === "error" ? "flagged" : e.status) + "</span>" +
      '<span class="stage">' + esc(e.stage) + "</span>" +
      '<span id="current-mark" class="mark-badge ' + (m ? m.mark : "none") + '">' + (m ? m.mark : "unmarked") + "</span>" +
      '<span id="overlay-state">overlay ' + (state.overlay ? "on" : "off") + "</span></div>" +
      (flags ? '<ul class="flags">' + flags + "</ul>" : "") +
      (e.views && (e.views.sagittal || e.views.axial) ? "" : '<p class="noimage">No picture: see the flags above.</p>') +
      viewHtml(e, "sagittal") + viewHtml(e, "axial") +
      '<p class="colours">fill and outline: label' +
      (hasCompare ? ' &middot; <span class="cyan">cyan outline</span>: comparison (CT) label resampled through the headers' : "") +
      "</p>" + figuresHtml(e);
    rows.forEach(function (row, i) {
      row.classList.toggle("current", i === state.index);
    });
    var cur = rows[state.index];
    if (cur && cur.scrollIntoView) cur.scrollIntoView({ block: "nearest" });
    preload(state.index + 1);
  }

  function preload(i) {
    var e = entries[i];
    if (!e || !e.views) return;
    Object.keys(e.views).forEach(function (k) {
      var v = e.views[k];
      [v.image, v.overlay].forEach(function (src) { (new Image()).src = src + "?t=" + encodeURIComponent(e.created || ""); });
    });
  }

  function applyFilter() {
    rows.forEach(function (row, i) { row.hidden = !visible(i); });
  }

  function go(step) {
    var idx = visibleIndices();
    if (!idx.length) return;
    var pos = idx.indexOf(state.index);
    var next;
    if (pos < 0) {
      next = step > 0 ? idx.find(function (i) { return i > state.index; }) : idx.slice().reverse().find(function (i) { return i < state.index; });
      if (next === undefined) next = step > 0 ? idx[0] : idx[idx.length - 1];
    } else {
      next = idx[Math.max(0, Math.min(idx.length - 1, pos + step))];
    }
    select(next);
  }

  function select(i) {
    if (i < 0 || i >= entries.length) return;
    state.index = i;
    if (window.history && window.history.replaceState) {
      try { window.history.replaceState(null, "", "#" + encodeURIComponent(entries[i].id)); } catch (err) { /* file:// quirks */ }
    }
    render();
  }

  function nextUnmarked() {
    for (var k = 1; k <= entries.length; k++) {
      var i = (state.index + k) % entries.length;
      if (!markOf(entries[i])) { select(i); return; }
    }
  }

  function setMark(mark) {
    var e = entries[state.index];
    if (!e) return;
    if (mark) state.marks[e.id] = { mark: mark, time: new Date().toISOString(), checksum: e.checksum || null };
    else delete state.marks[e.id];
    saveMarks();
    refreshMarks();
    render();
  }

  function markRows() {
    return entries.map(function (e) {
      var m = markOf(e);
      return {
        id: e.id, subject: e.subject, session: e.session, stage: e.stage, status: e.status,
        mark: m ? m.mark : "", marked_at: m ? m.time : "",
        flags: (e.flags || []).map(function (f) { return f.code; }).join(","),
        image: e.image, label: e.label, checksum: m ? (m.checksum || e.checksum || "") : (e.checksum || "")
      };
    });
  }

  function tsvText() {
    var clean = function (v) { return String(v === null || v === undefined ? "" : v).replace(/[\t\r\n]+/g, " "); };
    return [TSV_COLUMNS.join("\t")].concat(markRows().map(function (r) {
      return TSV_COLUMNS.map(function (c) { return clean(r[c]); }).join("\t");
    })).join("\n") + "\n";
  }

  function jsonText() {
    return JSON.stringify({ report_id: data.report_id, exported: new Date().toISOString(),
      columns: TSV_COLUMNS, marks: markRows() }, null, 2) + "\n";
  }

  function refreshMarks() {
    var marked = 0;
    rows.forEach(function (row, i) {
      var m = markOf(entries[i]);
      var cell = row.querySelector("td.mark");
      if (m) marked++;
      if (cell) { cell.textContent = m ? m.mark : ""; cell.className = "mark " + (m ? m.mark : ""); }
    });
    document.getElementById("marked-count").textContent = String(marked);
    var table = document.getElementById("marks-table");
    var list = markRows().filter(function (r) { return r.mark; });
    table.innerHTML = "<thead><tr><th>id</th><th>mark</th><th>marked at</th><th>status</th></tr></thead><tbody>" +
      list.map(function (r) {
        return '<tr data-id="' + esc(r.id) + '" data-mark="' + esc(r.mark) + '"><td>' + esc(r.id) + '</td><td class="mark ' +
          esc(r.mark) + '">' + esc(r.mark) + "</td><td>" + esc(r.marked_at) + "</td><td>" + esc(r.status) + "</td></tr>";
      }).join("") + "</tbody>";
    document.getElementById("marks-tsv").textContent = tsvText();
    applyFilter();
  }

  function download(text, name, type) {
    var blob = new Blob([text], { type: type });
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }

  function exportTsv() { download(tsvText(), "qc_marks.tsv", "text/tab-separated-values"); }
  function exportJson() { download(jsonText(), "qc_marks.json", "application/json"); }

  function importJson(file) {
    var reader = new FileReader();
    reader.onload = function () {
      try {
        var parsed = JSON.parse(reader.result);
        (parsed.marks || []).forEach(function (r) {
          if (r.id && MARKS.indexOf(r.mark) >= 0) state.marks[r.id] = { mark: r.mark, time: r.marked_at || new Date().toISOString(), checksum: r.checksum || null };
        });
        saveMarks();
        refreshMarks();
        render();
      } catch (err) {
        window.alert("Not a QC marks JSON file: " + err);
      }
    };
    reader.readAsText(file);
  }

  function onKey(ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var tag = ev.target && ev.target.tagName;
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") return;
    var k = ev.key;
    var handled = true;
    if (k === "ArrowRight" || k === "ArrowDown" || k === "j") go(1);
    else if (k === "ArrowLeft" || k === "ArrowUp" || k === "k") go(-1);
    else if (k === "Home") select(visibleIndices()[0]);
    else if (k === "End") select(visibleIndices().slice(-1)[0]);
    else if (k === " " || k === "t") { state.overlay = !state.overlay; render(); }
    else if (KEY_MARKS[k]) setMark(KEY_MARKS[k]);
    else if (k === "c" || k === "Backspace" || k === "Delete") setMark(null);
    else if (k === "n") nextUnmarked();
    else if (k === "e") exportTsv();
    else if (k === "E") exportJson();
    else handled = false;
    if (handled) ev.preventDefault();
  }

  document.addEventListener("keydown", onKey);
  rows.forEach(function (row, i) { row.addEventListener("click", function () { select(i); }); });
  document.getElementById("export-tsv").addEventListener("click", exportTsv);
  document.getElementById("export-json").addEventListener("click", exportJson);
  document.getElementById("filter").addEventListener("change", function (ev) {
    state.filter = ev.target.value;
    ev.target.blur();
    applyFilter();
  });
  document.getElementById("import-json").addEventListener("change", function (ev) {
    if (ev.target.files && ev.target.files[0]) importJson(ev.target.files[0]);
    ev.target.blur();
  });
  window.addEventListener("storage", function (ev) {
    if (ev.key === STORE) { state.marks = loadMarks(); refreshMarks(); render(); }
  });

  var start = 0;
  var wanted = decodeURIComponent((window.location.hash || "").slice(1));
  entries.forEach(function (e, i) { if (e.id === wanted) start = i; });
  document.getElementById("entry-count").textContent = String(entries.length);
  refreshMarks();
  if (entries.length) select(start);
  document.body.setAttribute("data-ready", "1");
})();
