"""Pair every MRI with the CT label of its subject and session."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.bids import BINARY_LABEL_SUFFIXES, BidsName, dataset_path, derivative_path, dseg_tsv_path, label_value
from ..core.derivatives import read_dseg_tsv
from ..core.errors import InputError, MissingFileError
from ..core.index import BidsFile, BidsIndex
from ..core.options import resolve_options
from .labels import class_value
from .options import LabelSpec, RegisterOptions
from .origin import label_origin, origin_accepted

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pair:
    """One planned transfer (picklable); ``error`` is a pairing problem to report.

    ``options`` are the batch's, without its scheduler (a Dask client does not
    travel to the workers); ``raw_root`` is the raw dataset the sidecar cites.
    """

    mri: str
    out: str
    ct_label: str | None = None
    ct_image: str | None = None
    value: int | None = None
    kind: str = "seg"
    classes: tuple[tuple[int, str], ...] | None = None
    own_label: bool = False
    raw_root: str | None = None
    options: RegisterOptions = RegisterOptions()
    error: tuple[str, str | None, str] | None = None

    @property
    def key(self) -> str:
        return Path(self.mri).name


def pick_ct_label(mri: BidsName, candidates: Sequence[Path]) -> Path:
    """Choose the CT label of ``mri`` among the same session's candidates.

    Several CTs in one session: the one whose ``acq``/``run`` match the MRI's
    wins; otherwise the choice is ambiguous and we refuse to guess.

    >>> mri = BidsName.parse("sub-01_acq-a_T2w.nii.gz")
    >>> pick_ct_label(mri, [Path("sub-01_acq-a_CT_label-s_seg.nii.gz"),
    ...                     Path("sub-01_acq-b_CT_label-s_seg.nii.gz")]).name
    'sub-01_acq-a_CT_label-s_seg.nii.gz'
    """
    if len(candidates) == 1:
        return Path(candidates[0])
    names = {Path(c): BidsName.parse(Path(c).name) for c in candidates}
    matching = [c for c, n in names.items() if all(n.get(k) == mri.get(k) for k in ("acq", "run"))]
    if len(matching) == 1:
        return matching[0]
    listed = ", ".join(sorted(Path(c).name for c in candidates))
    raise InputError(f"{len(candidates)} CT labels for this session ({listed}) and "
                     f"{'none' if not matching else 'several'} match the MRI's acq/run",
                     mri.filename, "keep one CT per session or give the CT the MRI's acq-/run- entities")



def needed_inputs(pair: Pair) -> list[str]:
    """The files a transfer reads: the MRI, the CT label, and the CT image for rigid/affine."""
    ct_image = pair.ct_image if pair.options.method not in ("header", "sct") else None
    return [p for p in (pair.mri, pair.ct_label, ct_image) if p]



def _is_label_of(f: BidsFile, name: str, kinds: Iterable[str]) -> bool:
    """``f`` is label ``name`` (neuropoly ``label-``, or bids ``label-``/``desc-`` for dseg)."""
    n = f.name
    if n.deriv_suffix not in kinds:
        return False
    wanted = label_value(name)
    return n.get("label") == wanted or (n.deriv_suffix == "dseg" and n.get("desc") == wanted)


def _dseg_table(path: Path) -> dict[int, str] | None:
    tsv = dseg_tsv_path(path)
    if not tsv.is_file():
        return None
    try:
        return read_dseg_tsv(tsv)
    except (OSError, ValueError, IndexError):
        raise InputError("unreadable _dseg.tsv (expected columns index, name)", tsv, "fix the table") from None


def _resolve_source(spec: LabelSpec, labels: list[BidsFile]) -> tuple[list[Path], int | None, dict | None, str | None]:
    """CT label files for one session, and the class value to extract.

    Returns (candidates, value, classes, problem). A binary label of the
    structure wins; else a multi-class map whose table (or --label-value)
    provides the class.
    """
    if not spec.keep_dseg and spec.value is None:
        binary = [f.path for f in labels if _is_label_of(f, spec.name, BINARY_LABEL_SUFFIXES)]
        if binary and spec.dseg is None:
            return binary, None, None, None
    dsegs = [f for f in labels if f.name.deriv_suffix == "dseg"
             and (spec.dseg is None or _is_label_of(f, spec.dseg, ("dseg",)))]
    if not dsegs:
        return [], None, None, None
    if spec.keep_dseg or spec.value is not None:
        chosen = [f.path for f in dsegs]
        table = _dseg_table(chosen[0]) if len(chosen) == 1 else None
        return chosen, spec.value, table, None
    # by name: the dsegs whose lookup table has the class
    found: list[tuple[Path, int, dict]] = []
    for f in dsegs:
        table = _dseg_table(f.path)
        if table is None:
            continue
        try:
            found.append((f.path, class_value(table, spec.name, f.path), table))
        except InputError:
            continue
    if not found:
        where = ", ".join(f.path.name for f in dsegs)
        return [], None, None, f"no CT label {spec.name!r}, and no _dseg.tsv of {where} has that class"
    values = {v for _, v, _ in found}
    return [p for p, _, _ in found], (values.pop() if len(values) == 1 else None), found[0][2], None


@dataclass(frozen=True)
class _Found:
    """What one dataset scan found: raw CTs, CT labels, labels already on MRIs."""

    label_root: Path
    cts: list[BidsFile]
    ct_labels: list[BidsFile]
    own_labels: dict[str, Path]


def plan_pairs(bids_dir: str | Path, ct_labels: str | Path, out: str | Path,
               options: RegisterOptions | None = None, **kwargs) -> list[Pair]:
    """Pair every MRI with its CT label (same subject and session, acq/run aware).

    ``options`` (or the same fields as keywords): :class:`RegisterOptions`,
    of which ``spec``, ``contrasts``, ``ct_suffixes``, ``naming`` and
    ``mri_label_origins`` decide the pairing; every pair carries them.
    Pairing problems become :class:`Pair` items carrying an error, so they are
    reported with the other failures while the good pairs still run.
    """
    opts = resolve_options(RegisterOptions, options, kwargs)
    bids_dir, ct_labels, out = Path(bids_dir), Path(ct_labels), Path(out)
    raw = BidsIndex.scan(bids_dir)
    label_index = BidsIndex.scan(ct_labels)
    mris = raw.query(suffix=list(opts.contrasts), derivative=False)
    if not mris:
        raise InputError(f"no MRI image with suffix {' or '.join(opts.contrasts)}", bids_dir,
                         "check --bids-dir and --contrasts")
    found = _Found(ct_labels, raw.query(suffix=list(opts.ct_suffixes), derivative=False),
                   label_index.query(suffix=list(opts.ct_suffixes), derivative=True),
                   {f.path.name: f.path for f in label_index.query(suffix=list(opts.contrasts), derivative=True)})
    common = {"raw_root": str(bids_dir), "options": opts}
    pairs: list[Pair] = []
    for m in mris:
        target = derivative_path(m.path, out, opts.spec.name, kind=opts.spec.kind, naming=opts.naming)
        try:
            pairs.append(_plan_one(m, target, found, opts, common))
        except InputError as exc:  # an unreadable table, a class missing: this MRI only
            pairs.append(Pair(str(m.path), str(target), error=(exc.problem, exc.path, exc.fix or ""), **common))
    return pairs


def _plan_one(m: BidsFile, out: Path, found: _Found, opts: RegisterOptions, common: dict) -> Pair:
    """The pair of one MRI: its own label when asked for, else the CT label of its session."""
    spec = opts.spec
    own = _mri_label(m, spec, found.own_labels, out, opts.mri_label_origins)
    if own is not None:
        table = _dseg_table(own) if spec.keep_dseg else None
        return Pair(str(m.path), str(out), str(own), kind=spec.kind, own_label=True,
                    classes=tuple(sorted(table.items())) if table else None, **common)
    session_labels = [f for f in found.ct_labels if f.subject == m.subject and f.session == m.session]
    candidates, value, table, problem = _resolve_source(spec, session_labels)
    if not candidates:
        expected = [derivative_path(c.path, found.label_root, spec.dseg or spec.name,
                                    kind="dseg" if (spec.dseg or spec.value) else "seg")
                    for c in found.cts if c.subject == m.subject and c.session == m.session]
        err = (f"{problem or 'no CT label'} (for {m.path.name} in {found.label_root})",
               str(expected[0]) if expected else str(m.path),
               "run the CT segmentation first, or check --path-label / --label")
        return Pair(str(m.path), str(out), error=err, **common)
    try:
        chosen = pick_ct_label(m.name, candidates)
    except InputError as exc:
        return Pair(str(m.path), str(out), error=(exc.problem, str(m.path), exc.fix or ""), **common)
    from_dseg = BidsName.parse(chosen.name).deriv_suffix == "dseg"
    if value is None and spec.value is None and not spec.keep_dseg and from_dseg:
        value = class_value(_dseg_table(chosen) or {}, spec.name, chosen)
    if spec.keep_dseg or spec.value is not None:
        table = _dseg_table(chosen)
    ct_image = _ct_image_of(chosen, found.cts)
    return Pair(str(m.path), str(out), str(chosen), str(ct_image) if ct_image else None,
                value=value, kind=spec.kind,
                classes=tuple(sorted(table.items())) if (spec.keep_dseg and table) else None, **common)


def _ct_image_of(label: Path, cts: list[BidsFile]) -> Path | None:
    """The raw CT a CT label was made on (same entities), or None."""
    raw_name = BidsName.parse(label.name).raw().filename
    for c in cts:
        if c.path.name == raw_name:
            return c.path
    return None


def explicit_pair(mri: str | Path, ct_label: str | Path, bids_dir: str | Path, out: str | Path,
                  options: RegisterOptions | None = None) -> Pair:
    """A user-given (MRI, CT label) pair: same checks, no discovery (``options``: the defaults when None)."""
    options = options if options is not None else RegisterOptions()
    mri, ct_label, bids_dir, out = Path(mri), Path(ct_label), Path(bids_dir), Path(out)
    spec = options.spec
    for p in (mri, ct_label):
        if not (p.exists() or p.is_symlink()):
            raise MissingFileError("file not found", p, "check the path")
    ln = BidsName.parse(ct_label.name)
    if not ln.is_derivative:
        raise InputError("not a label file name (no _seg/_dseg/_mask suffix)", ct_label,
                         "name it <CT stem>_label-<name>_seg.nii.gz")
    value, table = spec.value, None
    if ln.deriv_suffix == "dseg":
        table = _dseg_table(ct_label)
        if value is None and not spec.keep_dseg:
            if table is None:
                raise InputError("multi-class map without a _dseg.tsv", ct_label, "pass --label-value")
            value = class_value(table, spec.name, ct_label)
    try:
        cts = BidsIndex.scan(bids_dir).query(derivative=False)
    except InputError:
        cts = []
    ct_image = _ct_image_of(ct_label, cts)
    target = derivative_path(mri, out, spec.name, kind=spec.kind, naming=options.naming)
    return Pair(str(mri), str(target), str(ct_label), str(ct_image) if ct_image else None, value=value,
                kind=spec.kind, classes=tuple(sorted(table.items())) if (spec.keep_dseg and table) else None,
                raw_root=str(bids_dir), options=options)


def _mri_label(m: BidsFile, spec: LabelSpec, own_labels: dict[str, Path], out: Path,
               origins: tuple[str, ...]) -> Path | None:
    """A label already on this MRI that the user asked to use (by origin), else None.

    Found or not, the decision is logged per MRI, so a run never silently
    mixes labels drawn on the MRI with labels transferred from the CT.
    """
    if spec.value is not None:
        return None
    for nm in ("neuropoly", "bids"):
        cand = m.name.derivative(spec.name, kind=spec.kind, naming=nm).filename
        path = own_labels.get(cand)
        if path is None or path == out:
            continue
        origin = label_origin(path)
        if origin_accepted(origin, origins):
            log.info("%s: using the label already on this MRI, %s (GeneratedBy: %s)", dataset_path(m.path), path,
                     origin)
            return path
        log.info("%s: ignoring %s (GeneratedBy: %s; not in --mri-label-origin), transferring the CT label",
                 dataset_path(m.path), path.name, origin)
    return None
