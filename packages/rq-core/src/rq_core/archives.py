"""Dataset archives for every modality's data scripts: digests, downloads, safe extraction.

One implementation for rq-audio, rq-points and rq-dabs (ARCHITECTURE.md: code two modality
packages need lives in rq-core). Extraction checks every member before it writes anything and
refuses absolute paths, drive letters, ``..`` components, any member that would resolve
outside the target folder, links (tar or zip) and device/FIFO members: a "zip slip" would
otherwise write anywhere on disk. Only regular files and folders are written.

>>> import io, tarfile, tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> with tarfile.open(d / "evil.tar", "w") as tar:
...     info = tarfile.TarInfo("../escape.txt"); info.size = 1
...     tar.addfile(info, io.BytesIO(b"x"))
>>> safe_extract(d / "evil.tar", d / "out")
Traceback (most recent call last):
...
rq_core.archives.UnsafeArchiveError: evil.tar: member '../escape.txt' escapes the extraction folder (it would land outside the target folder)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

__all__ = [
    "ChecksumError",
    "UnsafeArchiveError",
    "download",
    "file_digest",
    "safe_extract",
    "stream_to_file",
    "verify_checksum",
]


class ChecksumError(ValueError):
    """A file's digest differs from the expected (published or recorded) one."""


class UnsafeArchiveError(ValueError):
    """An archive member would land outside the target folder, or is a link or device."""


def _progress(total: int | None, desc: str, *, disable: bool = False, unit: str = "B"):
    """A tqdm bar when tqdm is installed (the train extra and every modality package have it)."""
    try:
        from tqdm.auto import tqdm
    except ImportError:  # rq-core alone depends on torch + numpy only
        return None
    return tqdm(total=total, unit=unit, unit_scale=unit == "B", desc=desc, disable=disable)


def file_digest(path: str | os.PathLike, algorithm: str = "sha256", chunk: int = 1 << 20) -> str:
    """Hex digest of a file, read in chunks (``algorithm``: any hashlib name, e.g. md5)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def verify_checksum(path: str | os.PathLike, expected: str | None, algorithm: str = "sha256") -> bool:
    """Check ``path`` against a digest.

    Raises FileNotFoundError if the file is missing and :class:`ChecksumError` if the digest
    differs; returns False when there is nothing to verify against (``expected`` None or
    empty), True when it verified.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    if not expected:
        return False
    got = file_digest(path, algorithm)
    if got.lower() != expected.lower():
        raise ChecksumError(
            f"{path.name}: {algorithm} {got} does not match the expected {expected} "
            "(the published digest): the file is corrupt or not the right one"
        )
    return True


def stream_to_file(url: str, path: str | os.PathLike, *, progress: bool = True) -> Path:
    """Copy ``url`` (http(s) or file://) into ``path`` in 1 MiB blocks, with a progress bar."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(url) as response, open(path, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        bar = _progress(total, path.name, disable=not progress)
        for block in iter(lambda: response.read(1 << 20), b""):
            out.write(block)
            if bar is not None:
                bar.update(len(block))
        if bar is not None:
            bar.close()
    return path


def download(
    url: str, target: str | os.PathLike, *, expected: str | None = None, algorithm: str = "sha256"
) -> Path:
    """Download ``url`` to ``target`` through a ``.partial`` file, verified before it is
    renamed; skipped when ``target`` exists and verifies."""
    target = Path(target)
    if target.is_file():
        verify_checksum(target, expected, algorithm)
        return target
    partial = target.with_suffix(target.suffix + ".partial")
    stream_to_file(url, partial)
    try:
        verify_checksum(partial, expected, algorithm)
    except ChecksumError:
        partial.unlink()
        raise
    partial.replace(target)
    return target


def _destination(archive: Path, name: str, root: Path) -> Path:
    """Where member ``name`` would be written, or UnsafeArchiveError if that is not inside."""
    pure = PurePosixPath(name.replace("\\", "/"))
    escapes = (
        pure.is_absolute()
        or name.startswith(("/", "\\"))
        or ".." in pure.parts
        or (pure.parts and ":" in pure.parts[0])  # a Windows drive letter
    )
    dest = (root / pure).resolve()
    if escapes or (dest != root and root not in dest.parents):
        raise UnsafeArchiveError(
            f"{archive.name}: member {name!r} escapes the extraction folder "
            "(it would land outside the target folder)"
        )
    return dest


def _check_tar_member(archive: Path, m: tarfile.TarInfo, root: Path) -> Path:
    dest = _destination(archive, m.name, root)
    if m.issym() or m.islnk():
        base = dest.parent if m.issym() else root
        target = (base / m.linkname).resolve()
        where = "outside the target folder" if root not in target.parents else "inside the archive"
        raise UnsafeArchiveError(f"{archive.name}: link {m.name!r} points {where}; links are not extracted")
    if not (m.isfile() or m.isdir()):
        raise UnsafeArchiveError(f"{archive.name}: member {m.name!r} is a device, FIFO or special file")
    return dest


def safe_extract(archive: str | os.PathLike, target: str | os.PathLike) -> list[Path]:
    """Extract a .zip or tar (.tar, .tar.gz/.tgz, .bz2, .xz) archive into ``target``.

    Every member is checked before anything is written; returns the regular files written.

    >>> import tempfile, zipfile
    >>> d = Path(tempfile.mkdtemp())
    >>> with zipfile.ZipFile(d / "a.zip", "w") as z:
    ...     z.writestr("x/y.txt", "hi")
    >>> [p.name for p in safe_extract(d / "a.zip", d / "out")]
    ['y.txt']
    """
    archive, root = Path(archive), Path(target)
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    written: list[Path] = []
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            members = z.infolist()
            dests = []
            for m in members:
                dests.append(_destination(archive, m.filename, root))
                if (m.external_attr >> 16) & 0o170000 == 0o120000:
                    raise UnsafeArchiveError(f"{archive.name}: zip member {m.filename!r} is a symbolic link")
            for m, dest in zip(members, dests):
                if m.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                with z.open(m) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)
                written.append(dest)
        return written
    if not tarfile.is_tarfile(archive):
        raise ValueError(f"{archive} is neither a zip nor a tar archive")
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        dests = [_check_tar_member(archive, m, root) for m in members]
        bar = _progress(
            len(members), f"extract {archive.name}", disable=len(members) < 1000, unit="member"
        )
        for m, dest in zip(members, dests):
            if m.isdir():
                dest.mkdir(parents=True, exist_ok=True)
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(m)
                assert src is not None  # a regular file, checked above
                with src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)
                written.append(dest)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
    return written
