"""Print pip constraints that pin each runtime dependency to the oldest version that
pyproject.toml allows: ``python scripts/floors.py openai together`` (the extras to add to the
core dependencies; ``--without NAME`` leaves a package free, ``--extras-only`` the core
dependencies). scripts/lowest.sh installs them and runs the tests that reach those
packages, so that a floor we declare is one we run.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*([^;]*?)\s*(;.*)?$")
FLOOR = re.compile(r">=\s*([0-9][^,\s]*)")


def floor_constraints(extras: list[str], without: set[str], *, core: bool = True) -> list[str]:
    """``name==floor`` (with its environment marker) for the extras and, with ``core``, the
    core dependencies."""
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    optional = project["optional-dependencies"]
    unknown = sorted(set(extras) - set(optional))
    if unknown:
        raise SystemExit(f"no such extra in pyproject.toml: {', '.join(unknown)}")
    requirements = list(project["dependencies"]) if core else []
    for extra in extras:
        requirements += optional[extra]
    lines = []
    for requirement in requirements:
        parts = REQUIREMENT.match(requirement)
        if parts is None:
            raise SystemExit(f"pyproject.toml: cannot read the requirement {requirement!r}")
        name, _, specifier, marker = parts.groups()
        floor = FLOOR.search(specifier)
        if name == project["name"] or name.lower() in without:
            continue
        if floor is None:
            raise SystemExit(f"pyproject.toml: {requirement!r} has no floor (>=) to run")
        lines.append(f"{name}=={floor.group(1)}{marker or ''}")
    return list(dict.fromkeys(lines))  # a package two extras name (openai) pinned once


def main() -> None:
    """Print the constraints, one a line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("extras", nargs="*", help="extras of pyproject.toml to pin too")
    parser.add_argument("--without", action="append", default=[], help="a package left free")
    parser.add_argument("--extras-only", action="store_true", help="the core left free")
    arguments = parser.parse_args()
    without = {name.lower() for name in arguments.without}
    lines = floor_constraints(arguments.extras, without, core=not arguments.extras_only)
    sys.stdout.write("".join(f"{line}\n" for line in lines))


if __name__ == "__main__":
    main()
