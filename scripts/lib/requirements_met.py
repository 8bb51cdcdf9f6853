"""Exit 0 when this checkout is installed (editable) with every requirement of the named extras met.

``scripts/install.sh`` asks this before ``pip install -e .[all,test]``, so a test run on a machine that
is already set up does not pay pip's resolution (about 30 s). Usage: python requirements_met.py EXTRA...
"""

from __future__ import annotations

import json
import sys
from importlib import metadata
from pathlib import Path

import tomllib
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]


def requirements(project: dict, extras: list[str], seen: set[str] | None = None) -> list[Requirement]:
    """The project's dependencies plus those of ``extras``, self-referencing extras expanded."""
    seen = set() if seen is None else seen
    out = [Requirement(r) for r in project.get("dependencies", [])] if not seen else []
    for extra in extras:
        if extra in seen:
            continue
        seen.add(extra)
        for text in project["optional-dependencies"][extra]:
            req = Requirement(text)
            if req.name == project["name"]:
                out += requirements(project, sorted(req.extras), seen)
            else:
                out.append(req)
    return out


def met(req: Requirement) -> bool:
    try:
        version = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        return False
    return req.specifier.contains(version, prereleases=True)


def installed_from_here(name: str) -> bool:
    """Whether ``name`` is installed in editable mode from this checkout."""
    try:
        text = metadata.distribution(name).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return False
    info = json.loads(text or "{}")
    return info.get("dir_info", {}).get("editable", False) and info.get("url") == REPO.as_uri()


def main(extras: list[str]) -> int:
    with open(REPO / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    missing = [str(r) for r in requirements(project, extras)
               if (r.marker is None or r.marker.evaluate()) and not met(r)]
    if not installed_from_here(project["name"]):
        missing.append(f"{project['name']} (editable, from {REPO})")
    for line in missing:
        print(f"requirements_met: missing {line}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
