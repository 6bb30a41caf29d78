"""The third-party requirements of an app's image, read from the workspace members'
pyproject.toml files without building or installing anything.

docker/Dockerfile installs these (with constraints.txt) in a layer of their own that only the
pyproject.toml files and the pins decide, then the workspace's wheels on top with
``--no-deps``; so an edit of an app's source rebuilds the small wheel layer and reuses the
multi-gigabyte dependency layer from the build cache.

    python3 docker/requirements.py --extras demo apps/mid-net packages/rq-core packages/rq-points

The first folder is the app, the others the workspace members its image installs from wheels.
Prints one requirement per line, sorted: every dependency of the app (with the requested
extras) and of the members it reaches (with the extras it asks of them, e.g. rq-core[train])
that is not a member itself, as written (environment markers kept; pip evaluates them).
Standard library only (tomllib, Python >= 3.11): it runs in the bare base image.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

# PEP 508: the distribution name, then optional [extra, ...]; the rest (versions, markers) is
# kept verbatim.
_NAME_AND_EXTRAS = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")


def normalize(name: str) -> str:
    """PEP 503 normalized distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def name_and_extras(requirement: str) -> tuple[str, set[str]]:
    match = _NAME_AND_EXTRAS.match(requirement)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    extras = {normalize(e) for e in (match.group(2) or "").split(",") if e.strip()}
    return normalize(match.group(1)), extras


def read_project(folder: Path) -> dict:
    """The ``[project]`` table of ``folder/pyproject.toml``; dependencies must be static."""
    path = folder / "pyproject.toml"
    try:
        project = tomllib.loads(path.read_text())["project"]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"{path}: no readable [project] table ({error})") from None
    if "dependencies" in project.get("dynamic", []):
        raise ValueError(f"{path}: dynamic dependencies cannot be read without a build")
    return project


def third_party_requirements(app: Path, members: list[Path], extras: set[str]) -> list[str]:
    """Requirements of ``app[extras]`` outside the workspace ``members`` (and the app)."""
    projects = {}
    for folder in [app, *members]:
        project = read_project(folder)
        projects[normalize(project["name"])] = project
    wanted: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    stack = [(normalize(read_project(app)["name"]), {normalize(e) for e in extras})]
    while stack:
        name, asked = stack.pop()
        if (name, frozenset(asked)) in seen:
            continue
        seen.add((name, frozenset(asked)))
        project = projects[name]
        optional = {normalize(k): v for k, v in project.get("optional-dependencies", {}).items()}
        unknown = asked - set(optional)
        if unknown:
            raise ValueError(f"{project['name']} has no extra {sorted(unknown)}")
        for requirement in project.get("dependencies", []) + [
            r for extra in sorted(asked) for r in optional[extra]
        ]:
            child, child_extras = name_and_extras(requirement)
            if child in projects:
                stack.append((child, child_extras))
            else:
                wanted.add(requirement.strip())
    return sorted(wanted, key=lambda r: (name_and_extras(r)[0], r))


def parse_arguments(argv: list[str] | None = None) -> tuple[Path, list[Path], set[str]]:
    """(app folder, member folders, extras) from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("app", type=Path, help="the app's folder (with pyproject.toml)")
    parser.add_argument("members", type=Path, nargs="*", help="the other members' folders")
    parser.add_argument("--extras", default="", help="the app's extras, comma-separated")
    args = parser.parse_args(argv)
    return args.app, args.members, {e.strip() for e in args.extras.split(",") if e.strip()}


def main(argv: list[str] | None = None) -> int:
    app, members, extras = parse_arguments(argv)
    try:
        lines = third_party_requirements(app, members, extras)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
