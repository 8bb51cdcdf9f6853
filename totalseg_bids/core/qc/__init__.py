"""The QC report every stage writes to: entries (a label over its image) and the page that shows them.

The ``qc`` stage (``python -m totalseg_bids.qc``) adds entries for labels or a
config; ``register``, ``segment_ct`` and ``predict`` hand each output to
:func:`totalseg_bids.core.qc_hook.qc_entry` (it never fails their work). Both
write through :mod:`.entry`, so the machinery lives here, shared, not in a stage.

Why it is built this way:

* People check transferred and predicted masks by eye, the way the
  spinalcordtoolbox QC report taught them: one entry per image, paged with the
  keyboard, marked pass / fail / artifact, marks exported as TSV/JSON.
* Every entry is a JSON record plus PNGs in ``<qc>/entries/``; ``index.html``
  is rebuilt from *all* records under a file lock, so parallel jobs (a process
  pool, several SLURM jobs, register and predict at once) can add entries
  without losing each other's. Re-adding an entry replaces it (stable ids).
* The report opens from the file system (``file://``): no server, no network;
  the records are inlined in the page, the script and style sheet are local.
* Each record carries the label's checksum, so a mark given in the browser
  stays with the version of the file that was reviewed.
* QC must never stop a pipeline: unreadable files, a missing label or a label
  on another grid become *flagged* entries that say why.

Display convention (documented in the report next to every view): images are
brought onto an axis-aligned RAS grid through their affines whatever their
storage orientation (sagittal ASL, oblique, LPS...), with square pixels.
Sagittal tiles show superior up and anterior on the left (the ITK-SNAP /
FSLeyes view SCT users know), ordered from the patient's right to left. Axial
tiles use the radiological convention (patient's right on the viewer's left,
anterior up), ordered from superior to inferior. CT is shown with a bone
window (W 1500 / L 300 HU), MRI with a 1-99 percentile window of the shown
voxels.

Modules: :mod:`.display` (pixels), :mod:`.focus` (where to look),
:mod:`.figures`, :mod:`.render` (mosaics), :mod:`.evaluate` (checks and flags),
:mod:`.records` (entry files), :mod:`.entry` (one entry), :mod:`.report` (the
page), :mod:`.marks` (the review marks exported from the page, read back to decide what trains).
Importing this package imports none of them.
"""
