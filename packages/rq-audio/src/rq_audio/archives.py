"""Dataset archives: checksum verification, downloads, and extraction that cannot escape.

Used by ``data_scripts/audio``. Extraction refuses absolute paths, ``..`` components, links
pointing outside the target and device files (a tar/zip "path traversal" would otherwise
write anywhere on disk).

>>> import io, tarfile, tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> with tarfile.open(d / "evil.tar", "w") as tar:
...     info = tarfile.TarInfo("../escape.txt"); info.size = 1
...     tar.addfile(info, io.BytesIO(b"x"))
>>> safe_extract(d / "evil.tar", d / "out")
Traceback (most recent call last):
...
rq_audio.archives.UnsafeArchiveError: evil.tar: member '../escape.txt' would land outside the target folder
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

__all__ = ["ChecksumError", "UnsafeArchiveError", "download", "file_digest", "safe_extract", "verify_checksum"]


class UnsafeArchiveError(RuntimeError):
    """An archive member would be written outside the target folder (or is a device/link)."""


class ChecksumError(RuntimeError):
    """A file's digest differs from the published one."""


def file_digest(path: str | Path, algorithm: str = "md5", chunk: int = 1 << 20) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def verify_checksum(path: str | Path, expected: str | None, algorithm: str = "md5") -> bool:
    """Raise :class:`ChecksumError` if ``path``'s digest is not ``expected``; False when
    there is nothing to verify against (``expected`` None)."""
    if not expected:
        return False
    got = file_digest(path, algorithm)
    if got.lower() != expected.lower():
        raise ChecksumError(f"{Path(path).name}: {algorithm} {got} differs from the published {expected}")
    return True


def download(url: str, target: str | Path, *, expected: str | None = None, algorithm: str = "md5") -> Path:
    """Download ``url`` to ``target`` (resuming nothing; skipped if it exists and verifies)."""
    target = Path(target)
    if target.is_file():
        verify_checksum(target, expected, algorithm)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".partial")
    with urllib.request.urlopen(url) as response, open(partial, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=target.name) as bar:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
                bar.update(len(block))
    verify_checksum(partial, expected, algorithm)
    partial.replace(target)
    return target


def _check_member(archive: Path, name: str, target: Path) -> Path:
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or (pure.parts and ":" in pure.parts[0]):
        raise UnsafeArchiveError(f"{archive.name}: member {name!r} would land outside the target folder")
    dest = (target / pure).resolve()
    if dest != target and target not in dest.parents:
        raise UnsafeArchiveError(f"{archive.name}: member {name!r} would land outside the target folder")
    return dest


def safe_extract(archive: str | Path, target: str | Path) -> list[Path]:
    """Extract a .tar(.gz/.bz2/.xz) or .zip into ``target``; returns the files written.

    Raises :class:`UnsafeArchiveError` before writing anything if any member is unsafe.
    """
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    target = target.resolve()
    written: list[Path] = []
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            dests = [_check_member(archive, m.filename, target) for m in members]
            for member, dest in zip(members, dests):
                if member.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)
                written.append(dest)
        return written
    if not tarfile.is_tarfile(archive):
        raise ValueError(f"{archive} is neither a tar nor a zip archive")
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for m in members:
            _check_member(archive, m.name, target)
            if m.isdev() or m.isfifo():
                raise UnsafeArchiveError(f"{archive.name}: member {m.name!r} is a device or fifo")
            if m.issym() or m.islnk():
                base = (target / m.name).parent if m.issym() else target
                link = (base / m.linkname).resolve()
                if link != target and target not in link.parents:
                    raise UnsafeArchiveError(f"{archive.name}: link {m.name!r} points outside the target folder")
        for m in tqdm(members, desc=f"extract {archive.name}", disable=len(members) < 1000):
            tar.extract(m, target, filter="data")  # the stdlib's own guard on top of ours
            if m.isfile():
                written.append(target / m.name)
    return written
