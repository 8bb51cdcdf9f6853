"""``python -m totalseg_bids.phantoms``: phantom BIDS datasets, public dataset layouts, tiny TotalSegmentator weights.

One command line over :mod:`.phantoms` (``--out DIR --subjects N`` and the
hard options), :mod:`.layouts` (``--layout NAME``) and :mod:`.tiny_totalseg`
(``--totalseg-weights DIR``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ..core import cli, flags
from ..core.errors import UsageError
from .layouts import LAYOUTS, write_layout
from .phantoms import PhantomOptions, generate
from .tiny_totalseg import build, is_built

DESCRIPTION = "Synthetic CT/MRI phantoms with exactly known ground truth."


def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser("phantoms", DESCRIPTION,
                         epilog="example: python -m totalseg_bids.phantoms --out /tmp/phantom --subjects 5 "
                                "--misalign-mm 4 --misalign-deg 3")
    flags.add_out(p, dest="out", help="BIDS dataset folder to write")
    p.add_argument("--totalseg-weights", type=Path, metavar="DIR", default=None,
                   help="instead: install tiny TotalSegmentator weights (a network trained on phantoms, shipped "
                        "with the package) into DIR, for total and total_mr (use DIR as TOTALSEG_HOME_DIR)")
    p.add_argument("--tasks", nargs="+", default=["total", "total_mr"], metavar="TASK",
                   help="with --totalseg-weights: TotalSegmentator tasks that must be there (total, total_mr)")
    p.add_argument("--retrain", action="store_true",
                   help="with --totalseg-weights: train the network here (minutes) instead of the shipped one")
    p.add_argument("--save-network", type=Path, metavar="FILE", default=None,
                   help="with --totalseg-weights: train the network and also save it to FILE (how the shipped "
                        "totalseg_bids/testing/data/tiny_totalseg_network.npz is made)")
    p.add_argument("--subjects", type=int, default=3)
    p.add_argument("--sessions", type=int, default=0, help="sessions per subject (0: no ses- folders)")
    p.add_argument("--mixed-sessions", action="store_true", help="only odd-numbered subjects get sessions")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--misalign-mm", type=float, default=0.0, help="CT-to-MRI translation of the anatomy")
    p.add_argument("--misalign-deg", type=float, default=0.0, help="CT-to-MRI rotation of the anatomy")
    p.add_argument("--misalign-fraction", type=float, default=1.0,
                   help="share of subjects that are misaligned (default all)")
    p.add_argument("--ct-spacing", type=float, default=1.0, help="CT voxel size in mm")
    p.add_argument("--no-ct-labels", dest="ct_labels", action="store_false",
                   help="do not write the TotalSegmentator-like CT labels")
    p.add_argument("--world-offset-mm", type=float, default=0.0,
                   help="move the MRI world frame by this many mm on every axis (no common origin with the CT)")
    p.add_argument("--mri-bias", type=float, default=0.0, help="extra MRI bias field strength (e.g. 0.6)")
    p.add_argument("--layers", action="store_true",
                   help="add a muscle wall, paraspinal and psoas muscles inside the fat layer")
    p.add_argument("--mri-fov-mm", type=float, default=0.0, metavar="MM",
                   help="cut the MRI grids to their top MM head-foot (lumbar MRI vs whole-pelvis CT)")
    p.add_argument("--articulate-deg", type=float, default=0.0, metavar="DEG",
                   help="add femurs; in the MRI they and the soft tissue are flexed by DEG degrees about the "
                        "hip joints, moving independently of the sacrum and the pelvis")
    p.add_argument("--contrast-ct", action="store_true",
                   help="also write a contrast-enhanced CT (ce-contrast, CTA-like) on the CT grid")
    cli.add_naming_arg(p)
    p.add_argument("--layout", default=None, metavar="NAME",
                   help="write the phantoms as a public dataset ships them instead of BIDS: "
                        f"{', '.join(LAYOUTS)}")
    return p


def _run(args: argparse.Namespace) -> int:
    if args.totalseg_weights is not None:
        done = is_built(args.totalseg_weights, args.tasks, trained=args.retrain) and args.save_network is None
        record = build(args.totalseg_weights, args.tasks, retrain=args.retrain, save_network=args.save_network)
        cli.emit("phantoms", [{"status": "skipped" if done else "written", "path": args.totalseg_weights,
                               "kind": "totalseg_weights", "network": record["network"],
                               "description": record["description"], "tasks": record["tasks"]}])
        return 0
    if args.out is None:
        raise UsageError("--out is required (or --totalseg-weights DIR)", None, "e.g. --out /tmp/phantom")
    if args.layout:
        root = write_layout(args.layout, args.out, args.subjects, args.seed)
        cli.emit("phantoms", [{"status": "written", "path": root, "kind": "layout", "layout": args.layout,
                               "subjects": args.subjects}])
        return 0
    opts = PhantomOptions(subjects=args.subjects, sessions=args.sessions, mixed_sessions=args.mixed_sessions,
                          seed=args.seed, misalign_mm=args.misalign_mm, misalign_deg=args.misalign_deg,
                          misalign_fraction=args.misalign_fraction, ct_spacing=args.ct_spacing,
                          ct_labels=args.ct_labels, contrast_ct=args.contrast_ct, naming=args.naming,
                          world_offset_mm=args.world_offset_mm, mri_bias=args.mri_bias, layers=args.layers,
                          mri_fov_mm=args.mri_fov_mm, articulate_deg=args.articulate_deg)
    root = generate(args.out, opts)
    cli.emit("phantoms", [{"status": "written", "path": root, "kind": "dataset", "subjects": opts.subjects,
                           "sessions": opts.sessions}])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)


if __name__ == "__main__":
    raise SystemExit(main())
