"""Any folder of images and masks, named by regular expressions.

``--pattern`` matches image paths (relative to ``--in``) with named groups
``sub`` (required), ``ses``/``acq``/``run`` (optional) and ``slice`` (2D
``.png/.jpg/.tif`` slices stacked per case, sorted by slice number);
``--label-pattern`` does the same for masks (label ``--label-name``). A mask
stack may hold only some of its image's slices (masks drawn only where the
structure is): each mask file goes to its image slice, the others are empty.
Masks are made 0/1 by ``--mask-threshold`` (lossy JPEG, 0/255 files).
``.npy`` volumes and 2D stacks take their grid from ``--spacing`` and
``--orientation`` (or an ``"affine"`` in a ``<name>.json`` beside a ``.npy``).
"""

from __future__ import annotations

import re
from pathlib import Path

from ...core.errors import InputError, UsageError
from ..arrays import SLICE_EXTS, check_stack
from ..plan import Item, Plan, image_target, label_target

#: A case's files: ``{slice number: path}`` (one entry, number 0, for a volume).
Files = dict[int, Path]


def _compile(regex: str, what: str) -> re.Pattern:
    try:
        rx = re.compile(regex)
    except re.error as exc:
        raise UsageError(f"bad {what} regex ({exc})", None, "fix the regular expression") from None
    if "sub" not in rx.groupindex:
        raise UsageError(f"{what} regex has no (?P<sub>...) group", None, "name the subject group 'sub'")
    return rx


def slice_number(text: str | None, path: Path) -> int:
    """The slice number a file's ``slice`` group names (0 without one); a non-number names the file.

    >>> slice_number("012", Path("a/012.png")), slice_number(None, Path("a.npy"))
    (12, 0)
    """
    if text is None:
        return 0
    if not text.isdigit():
        raise InputError(f"slice index {text!r} is not a number", path,
                         "make the (?P<slice>...) group match the slice number only, e.g. (?P<slice>\\d+)")
    return int(text)


def groups(root: Path, regex: str, what: str) -> dict[tuple, Files]:
    """``{(sub, entities): {slice: path}}`` of the files matching ``regex``; two files of one
    case with one slice number are refused."""
    rx = _compile(regex, what)
    out: dict[tuple, Files] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        m = rx.fullmatch(path.relative_to(root).as_posix())
        if not m:
            continue
        g = m.groupdict()
        if not re.fullmatch(r"[A-Za-z0-9]+", g["sub"]):
            raise InputError(f"subject {g['sub']!r} is not alphanumeric", path, "change the (?P<sub>...) group")
        ents = tuple((k, g[k]) for k in ("ses", "acq", "run") if g.get(k))
        files = out.setdefault((g["sub"], ents), {})
        number = slice_number(g.get("slice"), path)
        if number in files:
            raise InputError(f"slice {number} of this case is also {files[number].name}", path,
                             "keep one file per slice number")
        files[number] = path
    return out


def mask_slots(image: Files, mask: Files) -> list[str]:
    """The mask file of every image slice, in slice order (``""`` where none was drawn); a mask slice
    without its image slice names itself.

    >>> mask_slots({1: Path("i/1.jpg"), 2: Path("i/2.jpg"), 3: Path("i/3.jpg")}, {2: Path("m/2.jpg")})
    ['', 'm/2.jpg', '']
    """
    for number, path in sorted(mask.items()):
        if number not in image:
            raise InputError(f"mask on no image: slice {number} has no image slice", path,
                             "add the image slice or remove the mask")
    return [str(mask[n]) if n in mask else "" for n in sorted(image)]


def check_grid(files: Files, spacing) -> None:
    """Arrays and 2D slices carry no voxel size: ``--spacing`` (or an ``.npy``'s JSON affine) is needed."""
    first = files[min(files)]
    gridless = first.suffix.lower() in (*SLICE_EXTS, ".npy")
    if gridless and spacing is None and not first.with_suffix(".json").is_file():
        raise UsageError("arrays and 2D slices carry no voxel size", first,
                         "pass --spacing X Y Z and --orientation (or an affine in <name>.json)")


def plan(root: Path, opts) -> Plan:
    """One item per case (a file, or a sorted stack of 2D slices), one per mask stack."""
    if not opts.pattern or not opts.suffix:
        raise UsageError("--source pattern needs --pattern and --suffix", None,
                         "e.g. --pattern '(?P<sub>\\d+)/img_(?P<slice>\\d+).png' --suffix CT")
    images = groups(root, opts.pattern, "--pattern")
    if not images:
        raise InputError("no file matches --pattern", root, "check the regex against the relative paths")
    labels = groups(root, opts.label_pattern, "--label-pattern") if opts.label_pattern else {}
    params = {"pattern": opts.pattern, "label_pattern": opts.label_pattern, "suffix": opts.suffix,
              "spacing": opts.spacing, "orientation": opts.orientation or "RAS",
              "mask_threshold": opts.mask_threshold}
    for files in [*images.values(), *labels.values()]:
        check_grid(files, opts.spacing)
    items, people = [], {}
    for key, files in sorted(images.items()):
        sub, ents = key
        stack = tuple(str(files[n]) for n in sorted(files))
        if stack[0].lower().endswith(SLICE_EXTS):
            check_stack(stack)
        items.append(Item(stack[0], image_target(sub, opts.suffix, dict(ents)), sidecar={"grid": params},
                          extra_sources=stack[1:]))
        people[sub] = {"participant_id": f"sub-{sub}", "source_id": sub}
    for key, files in sorted(labels.items()):
        if key not in images:
            raise InputError("mask on no image", files[min(files)], "make --pattern match its image")
        items.append(mask_item(items, images[key], files, opts, params))
    return Plan(items, list(people.values()), "pattern (BIDS)", "Images converted to BIDS by pattern.", params)


def mask_item(items: list[Item], image: Files, mask: Files, opts, params: dict) -> Item:
    """The label item of one mask stack (or volume) on its image's item."""
    img = next(i for i in items if i.source == str(image[min(image)]))
    grid = {**params, "reference_stack": [img.source, *img.extra_sources]}
    present = [str(mask[n]) for n in sorted(mask)]
    if len(image) > 1 or min(image) != 0:
        grid["slots"] = mask_slots(image, mask)
        check_stack(grid["slots"], grid["reference_stack"])
    return Item(present[0], label_target(img.target, opts.label_name, "seg", opts.naming), kind="label",
                reference=img.target, reference_source=img.source, extra_sources=tuple(present[1:]),
                sidecar={"grid": grid}, binarise=True, threshold=opts.mask_threshold)
