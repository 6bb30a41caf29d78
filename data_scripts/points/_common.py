"""Shared steps of the points data scripts: argument parsing, verify, extract, cache."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rq_core.archives import safe_extract, verify_checksum

SPLIT_FRACTION_VALID = 0.1


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--archive",
        type=Path,
        required=True,
        help="the downloaded archive (or an extracted folder)",
    )
    p.add_argument("--out", type=Path, required=True, help="the HDF5 cache to write")
    p.add_argument(
        "--sha256", default=None, help="expected SHA-256 of the archive (verified when given)"
    )
    p.add_argument(
        "--work-dir", type=Path, default=None, help="where to extract (default: next to --out)"
    )
    p.add_argument("--num-points", type=int, default=10000, help="points sampled per mesh")
    p.add_argument(
        "--num-clusters", type=int, default=100, help="k-means clusters per shape (MID-Net: 100)"
    )
    p.add_argument("--limit", type=int, default=0, help="only the first N shapes (a quick check)")
    return p


def extracted_root(archive: Path, sha256: str | None, work_dir: Path | None, out: Path) -> Path:
    """A folder with the archive's content: the folder itself, or a safe extraction of it."""
    if archive.is_dir():
        return archive
    verify_checksum(archive, sha256, "sha256")
    dest = work_dir or out.with_name(out.stem + "_extracted")
    stamp = dest / ".extracted"
    if not stamp.is_file():
        print(f"extracting {archive} -> {dest}")
        safe_extract(archive, dest)
        stamp.write_text(os.fspath(archive))
    return dest


def valid_split(index: int) -> str:
    """Every tenth training shape (by position within its class) goes to validation."""
    return "valid" if index % int(round(1 / SPLIT_FRACTION_VALID)) == 0 else "train"
