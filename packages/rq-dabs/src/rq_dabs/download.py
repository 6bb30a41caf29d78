"""Helpers of ``data_scripts/dabs``: download with a checksum, verify, extract safely.

Everything a data script fetches is verified (MD5 or SHA-256 known in advance) before it is
opened, and archives are extracted member by member after checking that no member escapes
the target folder (absolute paths, ``..``, links pointing out, device files).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ChecksumError", "Source", "UnsafeArchiveError", "fetch", "file_digest", "safe_extract", "verify"]


class ChecksumError(ValueError):
    """A file's digest differs from the one expected."""


class UnsafeArchiveError(ValueError):
    """An archive member would land outside the extraction folder."""


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


def file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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
        raise ChecksumError(f"{path}: {algorithm} is {got}, expected {expected} (corrupt or wrong file)")


def fetch(source: Source, folder: Path, *, mirror: str | None = None, progress: bool = True) -> Path:
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
    partial = target.with_name(target.name + ".part")
    with urllib.request.urlopen(url) as response, open(partial, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=total or None, unit="B", unit_scale=True, desc=source.filename)
        for chunk in iter(lambda: response.read(1 << 20), b""):
            out.write(chunk)
            if bar is not None:
                bar.update(len(chunk))
        if bar is not None:
            bar.close()
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


def _inside(root: Path, name: str) -> Path:
    if os.path.isabs(name) or name.startswith(("/", "\\")) or ".." in Path(name).parts:
        raise UnsafeArchiveError(f"archive member {name!r} escapes the extraction folder")
    target = (root / name).resolve()
    if root != target and root not in target.parents:
        raise UnsafeArchiveError(f"archive member {name!r} escapes the extraction folder")
    return target


def safe_extract(archive: Path, dest: Path) -> list[Path]:
    """Extract a .tar(.gz/.bz2/.xz)/.tgz or .zip into ``dest``; returns the regular files.

    Raises :class:`UnsafeArchiveError` (before writing anything) if a member's path is
    absolute or climbs out with ``..``, if a link points outside ``dest``, or if a member is
    a device or FIFO.
    """
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    written: list[Path] = []
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            members = z.infolist()
            for m in members:
                _inside(root, m.filename)
                if (m.external_attr >> 16) & 0o170000 == 0o120000:
                    raise UnsafeArchiveError(f"zip member {m.filename!r} is a symbolic link")
            for m in members:
                target = _inside(root, m.filename)
                if m.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with z.open(m) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
                written.append(target)
        return written
    if not tarfile.is_tarfile(archive):
        raise ValueError(f"{archive} is neither a zip nor a tar archive")
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for m in members:
            target = _inside(root, m.name)
            if m.isdev() or m.isfifo():
                raise UnsafeArchiveError(f"tar member {m.name!r} is a device or FIFO")
            if m.issym() or m.islnk():
                link_base = target.parent if m.issym() else root
                _inside(root, os.path.relpath((link_base / m.linkname).resolve(), root))
        for m in members:
            target = _inside(root, m.name)
            if m.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif m.isfile():
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(m)
                assert src is not None
                with src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
                written.append(target)
            # Links are checked above but not recreated: datasets need only regular files.
    return written
