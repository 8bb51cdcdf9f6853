"""Any folder of images and masks, named by regular expressions.

``--pattern`` matches image paths (relative to ``--in``) with named groups
``sub`` (required), ``ses``/``acq``/``run`` (optional) and ``slice`` (2D
``.png/.jpg/.tif`` slices stacked per case, sorted by slice number);
``--label-pattern`` does the same for masks (label ``--label-name``).
``.npy`` volumes and 2D stacks take their grid from ``--spacing`` and
``--orientation`` (or an ``"affine"`` in a ``<name>.json`` beside a ``.npy``).
"""

from __future__ import annotations

import re
from pathlib import Path

from ...core.errors import InputError, UsageError
from ..plan import Item, Plan, image_target, label_target

STACK_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def _groups(root: Path, regex: str, what: str) -> dict[tuple, list[tuple[int, Path]]]:
    """``{(sub, entities): [(slice, path), ...]}`` of the files matching ``regex``."""
    try:
        rx = re.compile(regex)
    except re.error as exc:
        raise UsageError(f"bad {what} regex ({exc})", None, "fix the regular expression") from None
    if "sub" not in rx.groupindex:
        raise UsageError(f"{what} regex has no (?P<sub>...) group", None, "name the subject group 'sub'")
    out: dict[tuple, list[tuple[int, Path]]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        m = rx.fullmatch(path.relative_to(root).as_posix())
        if not m:
            continue
        g = m.groupdict()
        if not re.fullmatch(r"[A-Za-z0-9]+", g["sub"]):
            raise InputError(f"subject {g['sub']!r} is not alphanumeric", path, "change the (?P<sub>...) group")
        ents = tuple((k, g[k]) for k in ("ses", "acq", "run") if g.get(k))
        out.setdefault((g["sub"], ents), []).append((int(g["slice"]) if g.get("slice") else 0, path))
    return out


def plan(root: Path, opts) -> Plan:
    """One item per case (a file, or a sorted stack of 2D slices)."""
    if not opts.pattern or not opts.suffix:
        raise UsageError("--source pattern needs --pattern and --suffix", None,
                         "e.g. --pattern '(?P<sub>\\d+)/img_(?P<slice>\\d+).png' --suffix CT")
    images = _groups(root, opts.pattern, "--pattern")
    if not images:
        raise InputError("no file matches --pattern", root, "check the regex against the relative paths")
    labels = _groups(root, opts.label_pattern, "--label-pattern") if opts.label_pattern else {}
    params = {"pattern": opts.pattern, "label_pattern": opts.label_pattern, "suffix": opts.suffix,
              "spacing": opts.spacing, "orientation": opts.orientation}
    for files in [*images.values(), *labels.values()]:
        first = files[0][1]
        gridless = first.suffix.lower() in (*STACK_EXTS, ".npy")
        if gridless and opts.spacing is None and not first.with_suffix(".json").is_file():
            raise UsageError("arrays and 2D slices carry no voxel size", first,
                             "pass --spacing X Y Z and --orientation (or an affine in <name>.json)")
    items, people = [], {}
    for key, files in sorted(images.items()):
        sub, ents = key
        t = image_target(sub, opts.suffix, dict(ents))
        stack = tuple(str(p) for _, p in sorted(files))
        items.append(Item(stack[0], t, sidecar={"grid": params}, extra_sources=stack[1:]))
        people[sub] = {"participant_id": f"sub-{sub}", "source_id": sub}
    for key, files in sorted(labels.items()):
        if key not in images:
            raise InputError("mask on no image", files[0][1], "make --pattern match its image")
        img = next(i for i in items if i.source == str(sorted(images[key])[0][1]))
        stack = tuple(str(p) for _, p in sorted(files))
        items.append(Item(stack[0], label_target(img.target, opts.label_name, "seg", opts.naming), kind="label",
                          reference=img.target, reference_source=img.source, extra_sources=stack[1:],
                          sidecar={"grid": {**params, "reference_stack": [img.source, *img.extra_sources]}}))
    return Plan(items, list(people.values()), "pattern (BIDS)", "Images converted to BIDS by pattern.", params)
