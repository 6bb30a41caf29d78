"""The command line shared by the DABS data scripts (one script per domain in this folder).

    python data_scripts/dabs/<domain>.py [--root DIR] [--only NAME ...] [--mirror URL_OR_DIR] \
[--list]

Each script knows its public sets (URL + checksum), downloads them into ROOT/<domain>/<set>/
(ROOT defaults to $RQ_CACHE/dabs, i.e. ~/.cache/rq/dabs -- the ``data_root`` of ``rq-dabs``),
verifies them, extracts them safely and, where rq-dabs has a reader, prepares its layout.
Sets that need registration are not downloaded: the script prints what to do instead.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rq_core.runs import cache_root
from rq_dabs.data.download import Source, fetch, safe_extract

__all__ = ["PublicSet", "run"]


@dataclass
class PublicSet:
    """A public set: its files, and an optional step that turns the extracted files into the
    layout an rq-dabs reader expects (``prepare(set_dir)``)."""

    sources: list[Source]
    extract: bool = True
    prepare: Callable[[Path], None] | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)


def default_root() -> Path:
    return cache_root("dabs")


def run(
    domain: str,
    public: Mapping[str, PublicSet],
    registration: Mapping[str, str],
    argv: Sequence[str] | None = None,
) -> list[str]:
    """Parse ``argv`` and fetch/verify/extract/prepare; returns the names of the sets done."""
    parser = argparse.ArgumentParser(description=f"Download and prepare the DABS {domain} sets.")
    parser.add_argument(
        "--root", type=Path, default=default_root(), help="data root (default: %(default)s)"
    )
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        help=f"sets to get (default: all public): {sorted(public)}",
    )
    parser.add_argument(
        "--mirror", default=None, help="base URL or folder holding the same file names"
    )
    parser.add_argument("--list", action="store_true", help="list the sets and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, item in public.items():
            print(f"{name}: public, {len(item.sources)} file(s). {item.note}")
        for name, text in registration.items():
            print(f"{name}: registration needed -- {text}")
        return []
    names = list(public) if args.only is None else args.only
    done = []
    for name in names:
        if name in registration:
            print(f"[{domain}] {name} needs registration; not downloaded.\n{registration[name]}\n")
            continue
        if name not in public:
            parser.error(
                f"unknown set {name!r}; choose from {sorted(public) + sorted(registration)}"
            )
        item = public[name]
        set_dir = args.root / domain / name
        for source in item.sources:
            path = fetch(source, set_dir / "archives", mirror=args.mirror)
            print(f"[{domain}] {name}: verified {path.name}")
            if item.extract and path.suffix in (".gz", ".tgz", ".zip", ".tar", ".bz2", ".xz"):
                files = safe_extract(path, set_dir)
                print(f"[{domain}] {name}: extracted {len(files)} files")
        if item.prepare is not None:
            item.prepare(set_dir)
            print(f"[{domain}] {name}: prepared in {set_dir}")
        done.append(name)
    for name, text in registration.items():
        if args.only is None:
            print(f"[{domain}] {name} needs registration:\n{text}\n")
    return done
