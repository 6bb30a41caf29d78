"""Helpers of ``data_scripts/dabs``: download with a checksum, verify, extract safely.

Everything a data script fetches is verified (MD5 or SHA-256 known in advance, or the
SHA-256 recorded at its first download) before it is opened. Digests, streaming and safe
extraction are rq-core's (:mod:`rq_core.archives`, shared with the other modalities); this
module adds the DABS sources, mirrors and trust-on-first-use records.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from rq_core.archives import (
    ChecksumError,
    UnsafeArchiveError,
    file_digest,
    safe_extract,
    stream_to_file,
)

__all__ = [
    "ChecksumError",
    "Source",
    "UnsafeArchiveError",
    "fetch",
    "file_digest",
    "safe_extract",
    "verify",
]


@dataclass(frozen=True)
class Source:
    """One file to download: where from, its name on disk, and its digest."""

    url: str
    filename: str
    md5: str | None = None
    sha256: str | None = None

    @property
    def pinned(self) -> bool:
        """False when no digest is published: the first download's SHA-256 is recorded in
        ``<file>.sha256`` and later runs verify against it (trust on first use)."""
        return bool(self.md5 or self.sha256)


def _recorded(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".part") + ".sha256")


def verify(path: Path, source: Source) -> None:
    """Raise :class:`ChecksumError` unless ``path`` has ``source``'s digest (or, for an
    unpinned source, the digest recorded at its first download)."""
    if source.pinned:
        algorithm, expected = ("sha256", source.sha256) if source.sha256 else ("md5", source.md5)
    else:
        record = _recorded(path)
        if not record.is_file():
            return
        algorithm, expected = "sha256", record.read_text().split()[0]
    got = file_digest(path, algorithm)
    if got != expected:
        raise ChecksumError(
            f"{path}: {algorithm} is {got}, expected {expected} (corrupt or wrong file)"
        )


def fetch(
    source: Source, folder: Path, *, mirror: str | None = None, progress: bool = True
) -> Path:
    """Download ``source`` into ``folder`` (skipped when a verified copy is there); returns
    the path. ``mirror``: a base URL or folder used instead of the source's own host (for a
    local copy: ``mirror=/data/archives``)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.filename
    if target.is_file():
        try:
            verify(target, source)
            return target
        except ChecksumError:
            target.unlink()
    url = source.url
    if mirror:
        base = mirror if "://" in mirror else Path(mirror).resolve().as_uri()
        url = base.rstrip("/") + "/" + source.filename
    partial = stream_to_file(url, target.with_name(target.name + ".part"), progress=progress)
    try:
        verify(partial, source)
    except ChecksumError:
        partial.unlink()
        raise
    os.replace(partial, target)
    if not source.pinned and not _recorded(target).is_file():
        digest = file_digest(target, "sha256")
        _recorded(target).write_text(f"{digest}  {source.filename}\n")
        warnings.warn(
            f"{source.filename}: no published checksum; recorded SHA-256 {digest} in "
            f"{_recorded(target).name} (later runs verify against it)",
            stacklevel=2,
        )
    return target
