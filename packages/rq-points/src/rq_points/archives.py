"""Verifying and safely extracting downloaded dataset archives (zip, tar.*).

``safe_extract`` refuses members that would land outside the destination (absolute paths,
``..`` components), links, and device files, naming the offending member -- the
"zip slip" / tar path-traversal class of bugs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import zipfile
from pathlib import Path

__all__ = ["UnsafeArchiveError", "safe_extract", "sha256_file", "verify_sha256"]


class UnsafeArchiveError(ValueError):
    """An archive member that would escape the destination or is not a plain file/folder."""


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_sha256(path: str | os.PathLike, expected: str | None) -> None:
    """Raise if ``path`` is missing or (when ``expected`` is given) its SHA-256 differs."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    if expected:
        got = sha256_file(path)
        if got.lower() != expected.lower():
            raise ValueError(f"{path}: SHA-256 {got} does not match the expected {expected}")


def _check_name(name: str, dest: Path) -> Path:
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"archive member {name!r} has an absolute path")
    target = (dest / name).resolve()
    if target != dest and dest not in target.parents:
        raise UnsafeArchiveError(f"archive member {name!r} would be written outside {dest}")
    return target


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike) -> list[Path]:
    """Extract a .zip or tar archive into ``dest`` after checking every member; returns the
    extracted files. Nothing is written if any member is unsafe.

    >>> import tempfile, zipfile
    >>> d = Path(tempfile.mkdtemp())
    >>> with zipfile.ZipFile(d / "a.zip", "w") as z:
    ...     z.writestr("x/y.txt", "hi")
    >>> [p.name for p in safe_extract(d / "a.zip", d / "out")]
    ['y.txt']
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    dest = dest.resolve()
    written: list[Path] = []
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            infos = z.infolist()
            for info in infos:
                _check_name(info.filename, dest)
                mode = (info.external_attr >> 16) & 0o170000
                if mode == 0o120000:
                    raise UnsafeArchiveError(f"archive member {info.filename!r} is a symbolic link")
            for info in infos:
                target = _check_name(info.filename, dest)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with z.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
                written.append(target)
        return written
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            members = t.getmembers()
            for m in members:
                _check_name(m.name, dest)
                if not (m.isfile() or m.isdir()):
                    raise UnsafeArchiveError(f"archive member {m.name!r} is a link or special file")
            for m in members:
                target = _check_name(m.name, dest)
                if m.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                src = t.extractfile(m)
                assert src is not None
                with src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
                written.append(target)
        return written
    raise ValueError(f"{archive}: not a zip or tar archive")
