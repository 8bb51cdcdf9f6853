"""Record manual corrections of labels in their sidecars (``GeneratedBy``).

``python -m totalseg_bids.provenance mark-manual LABEL [LABEL ...] --author NAME``
appends ``{"Name": "Manual", "Author": NAME, "Date": ...}`` to each label's
sidecar; stages that write labels then refuse to overwrite it unless given
``--overwrite-manual``. ``show LABEL`` prints the recorded provenance.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

from .core import cli


def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser("provenance", __doc__.splitlines()[0], epilog=(
        "examples:\n"
        "  python -m totalseg_bids.provenance mark-manual derivatives/labels/sub-01/anat/sub-01_T2w_label-sacrum_seg.nii.gz"
        " --author 'Jane Doe'\n"
        "  python -m totalseg_bids.provenance show derivatives/labels/sub-01/anat/sub-01_T2w_label-sacrum_seg.nii.gz"))
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    mark = sub.add_parser("mark-manual", help="record that labels were corrected by hand")
    mark.add_argument("labels", nargs="+", type=Path, metavar="LABEL")
    mark.add_argument("--author", required=True, help="who corrected the labels")
    mark.add_argument("--date", default=None, help="when (ISO 8601; default now)")
    mark.add_argument("--description", default=None, help="what was corrected")
    show = sub.add_parser("show", help="print the GeneratedBy of labels (JSON lines)")
    show.add_argument("labels", nargs="+", type=Path, metavar="LABEL")
    return p


def _run(args: argparse.Namespace) -> int:
    from .core.derivatives import read_sidecar
    from .core.provenance import manual_entries, mark_manual

    for label in args.labels:
        if args.command == "mark-manual":
            print(mark_manual(label, args.author, args.date, args.description))
        else:
            side = read_sidecar(label)
            print(json.dumps({"label": str(label), "manual": bool(manual_entries(side)),
                              "GeneratedBy": side.get("GeneratedBy", [])}))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)


if __name__ == "__main__":
    raise SystemExit(main())
