"""Record manual corrections of labels in their sidecars (``GeneratedBy``).

``python -m totalseg_bids.provenance mark-manual LABEL [LABEL ...] --author NAME``
appends ``{"Name": "Manual", "Author": NAME, "Date": ...}`` to each label's
sidecar; stages that write labels then refuse to overwrite it unless given
``--overwrite-manual``. ``show LABEL`` prints the recorded provenance.
Both print one JSON line per label (docs/conventions.md section 8).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..core import cli
from ..core.options import options_from_args, resolve_options

STAGE = "provenance"


@dataclass(frozen=True)
class ManualOptions:
    """Who corrected the labels, when (ISO 8601; None: now) and what was corrected."""

    author: str
    date: str | None = None
    description: str | None = None


def _mark_one(item: tuple[Path, ManualOptions]) -> dict:
    """Mark one label (a module-level task, so :func:`run_tasks` can run it)."""
    from ..core.provenance import mark_manual

    label, opts = item
    side = mark_manual(label, opts.author, opts.date, opts.description)
    return {"status": "written", "path": side, "label": str(label)}


def mark_manual_labels(labels: Sequence[str | Path], options: ManualOptions | None = None, **kwargs) -> list[dict]:
    """Mark every label as corrected by hand; the records of the sidecars written.

    One unusable label does not stop the others: the batch ends in one
    ``BatchError`` listing the failures, with the written sidecars in ``.done``.
    """
    from ..core.parallel import finish, run_tasks

    opts = resolve_options(ManualOptions, options, kwargs)
    labels = [Path(p) for p in labels]
    outcomes = run_tasks(_mark_one, [(p, opts) for p in labels], keys=[str(p) for p in labels], jobs=1)
    return finish(outcomes, "label(s)")


def show(labels: Sequence[str | Path]) -> list[dict]:
    """The ``GeneratedBy`` of each label's sidecar; status ``manual`` for a hand-corrected one.

    >>> show(["/nonexistent/sub-01_T2w_label-sacrum_seg.nii.gz"])[0]["status"]
    'generated'
    """
    from ..core.derivatives import read_sidecar
    from ..core.provenance import manual_entries

    records = []
    for label in labels:
        side = read_sidecar(label)
        manual = bool(manual_entries(side))
        records.append({"status": "manual" if manual else "generated", "path": str(label), "manual": manual,
                        "GeneratedBy": side.get("GeneratedBy", [])})
    return records


def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser(STAGE, __doc__.splitlines()[0], epilog=(
        "examples:\n"
        "  python -m totalseg_bids.provenance mark-manual derivatives/labels/sub-01/anat/sub-01_T2w_label-sacrum_seg.nii.gz"
        " --author 'Jane Doe'\n"
        "  python -m totalseg_bids.provenance show derivatives/labels/sub-01/anat/sub-01_T2w_label-sacrum_seg.nii.gz"))
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    mark = sub.add_parser("mark-manual", help="record that labels were corrected by hand (one JSON line per sidecar)")
    mark.add_argument("labels", nargs="+", type=Path, metavar="LABEL")
    mark.add_argument("--author", required=True, help="who corrected the labels")
    mark.add_argument("--date", default=None, help="when (ISO 8601; default now)")
    mark.add_argument("--description", default=None, help="what was corrected")
    show_ = sub.add_parser("show", help="print the GeneratedBy of labels (JSON lines)")
    show_.add_argument("labels", nargs="+", type=Path, metavar="LABEL")
    return p


def _run(args: argparse.Namespace) -> int:
    if args.command == "mark-manual":
        opts = options_from_args(ManualOptions, args)
        cli.report(STAGE, lambda: mark_manual_labels(args.labels, opts))
    else:
        cli.emit(STAGE, show(args.labels))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)
