"""Dataset archives for every modality's data scripts: digests, downloads, safe extraction.

One implementation for rq-audio, rq-points and rq-dabs (docs/architecture.md, "Layers": code two
modality packages need lives in rq-core). Extraction checks every member before it writes
anything and refuses absolute paths, drive letters, ``..`` components, any member that would resolve
outside the target folder, links (tar or zip) and device/FIFO members: a "zip slip" would
otherwise write anywhere on disk. Only regular files and folders are written.

It also refuses archive bombs before writing (:class:`ArchiveLimitError`, naming the archive
and the member):

- **Total size**: the sizes the archive declares must fit in ``max_total_bytes`` (a caller's
  expected size; default: no limit of its own) and always in the free space of the target's
  file system, so a bomb (or a too-small disk) fails at once instead of filling the disk.
  The declared sizes bound what is written: Python's zip and tar readers never return more
  bytes than a member's header declares (a zip member that holds more fails its CRC check).
- **Compression ratio**: a zip member, or the whole archive (zip or tar stream), that expands
  more than ``max_ratio`` : 1 (default :data:`DEFAULT_MAX_RATIO` = 200) is refused once it
  is over :data:`RATIO_FLOOR_BYTES` (1 MiB) uncompressed. Real dataset files stay far below
  (deflate, measured; docs/decisions.md): audio clips ~2:1, jpg/png 1-2:1, point and mesh
  text 3-6:1, sensor series and CSV tables 2.5-10:1; deflate's own maximum is about 1030:1,
  reached by runs of one byte. Files under the floor are not checked: they cannot amplify
  much, and a short, nearly silent clip can legitimately reach 300:1. ``max_ratio=None``
  turns the check off for a trusted archive; so does the environment variable
  ``RQ_EXTRACT_MAX_RATIO`` (a number, or ``none``) for the data scripts, which take no such
  option.

>>> import io, tarfile, tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> with tarfile.open(d / "evil.tar", "w") as tar:
...     info = tarfile.TarInfo("../escape.txt"); info.size = 1
...     tar.addfile(info, io.BytesIO(b"x"))
>>> safe_extract(d / "evil.tar", d / "out")  # doctest: +NORMALIZE_WHITESPACE
Traceback (most recent call last):
...
rq_core.archives.UnsafeArchiveError: evil.tar: member '../escape.txt' escapes the extraction
folder (it would land outside the target folder)
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
    "DEFAULT_MAX_RATIO",
    "RATIO_FLOOR_BYTES",
    "ArchiveLimitError",
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


class ArchiveLimitError(UnsafeArchiveError):
    """An archive would expand beyond the size or compression-ratio limits (a bomb?)."""


# Extraction limits (see the module docstring for how they were chosen).
DEFAULT_MAX_RATIO = 200.0
RATIO_FLOOR_BYTES = 1 << 20
_UNSET = object()


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _max_ratio(max_ratio) -> float | None:
    """The explicit argument, else ``$RQ_EXTRACT_MAX_RATIO``, else the default."""
    if max_ratio is not _UNSET:
        return None if max_ratio is None else float(max_ratio)
    env = os.environ.get("RQ_EXTRACT_MAX_RATIO", "").strip()
    if not env:
        return DEFAULT_MAX_RATIO
    if env.lower() in ("none", "off", "0"):
        return None
    try:
        return float(env)
    except ValueError:
        raise ValueError(f"RQ_EXTRACT_MAX_RATIO must be a number or 'none', got {env!r}") from None


def _check_limits(
    archive: Path,
    root: Path,
    sizes: list[tuple[str, int, int | None]],
    max_total_bytes: int | None,
    max_ratio: float | None,
) -> None:
    """Refuse before writing: ``sizes`` = (member, uncompressed, compressed or None)."""
    total = sum(size for _, size, _ in sizes)
    largest = max(sizes, key=lambda s: s[1], default=("", 0, None))
    override = "pass max_ratio=None (or set RQ_EXTRACT_MAX_RATIO=none) if the archive is trusted"
    if max_ratio is not None:
        for name, size, packed in sizes:
            over_floor = size > RATIO_FLOOR_BYTES
            if packed is not None and over_floor and size > max_ratio * max(packed, 1):
                raise ArchiveLimitError(
                    f"{archive.name}: member {name!r} would expand {size / max(packed, 1):.0f}:1 "
                    f"({_size(packed)} -> {_size(size)}), over the limit of {max_ratio:g}:1 "
                    f"(an archive bomb?); nothing was extracted; {override}"
                )
        packed_total = archive.stat().st_size
        if total > RATIO_FLOOR_BYTES and total > max_ratio * max(packed_total, 1):
            raise ArchiveLimitError(
                f"{archive.name}: would expand {total / max(packed_total, 1):.0f}:1 "
                f"({_size(packed_total)} -> {_size(total)}; largest member {largest[0]!r}, "
                f"{_size(largest[1])}), over the limit of {max_ratio:g}:1 (an archive bomb?); "
                f"nothing was extracted; {override}"
            )
    if max_total_bytes is not None and total > max_total_bytes:
        raise ArchiveLimitError(
            f"{archive.name}: would extract {_size(total)} (largest member {largest[0]!r}, "
            f"{_size(largest[1])}), over the limit of {_size(max_total_bytes)} "
            "(max_total_bytes); nothing was extracted"
        )
    free = shutil.disk_usage(root).free
    if total > free:
        raise ArchiveLimitError(
            f"{archive.name}: would extract {_size(total)} (largest member {largest[0]!r}, "
            f"{_size(largest[1])}) but {root} has only {_size(free)} free; nothing was extracted"
        )


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


def verify_checksum(
    path: str | os.PathLike, expected: str | None, algorithm: str = "sha256"
) -> bool:
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
        raise UnsafeArchiveError(
            f"{archive.name}: link {m.name!r} points {where}; links are not extracted"
        )
    if not (m.isfile() or m.isdir()):
        raise UnsafeArchiveError(
            f"{archive.name}: member {m.name!r} is a device, FIFO or special file"
        )
    return dest


def safe_extract(
    archive: str | os.PathLike,
    target: str | os.PathLike,
    *,
    max_total_bytes: int | None = None,
    max_ratio: float | None = _UNSET,  # type: ignore[assignment]
) -> list[Path]:
    """Extract a .zip or tar (.tar, .tar.gz/.tgz, .bz2, .xz) archive into ``target``.

    Every member is checked before anything is written; returns the regular files written.
    Raises :class:`UnsafeArchiveError` for a member that escapes or is a link or device, and
    its subclass :class:`ArchiveLimitError` when the archive would extract more than
    ``max_total_bytes`` (bytes; ``None``: no limit of its own) or more than the target's free
    disk space, or when a member or the whole archive expands more than ``max_ratio`` : 1
    (default :data:`DEFAULT_MAX_RATIO`, or ``$RQ_EXTRACT_MAX_RATIO``; ``None`` disables).

    >>> import tempfile, zipfile
    >>> d = Path(tempfile.mkdtemp())
    >>> with zipfile.ZipFile(d / "a.zip", "w") as z:
    ...     z.writestr("x/y.txt", "hi")
    >>> [p.name for p in safe_extract(d / "a.zip", d / "out")]
    ['y.txt']
    """
    archive, root = Path(archive), Path(target)
    ratio = _max_ratio(max_ratio)
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
                    raise UnsafeArchiveError(
                        f"{archive.name}: zip member {m.filename!r} is a symbolic link"
                    )
            sizes = [(m.filename, m.file_size, m.compress_size) for m in members if not m.is_dir()]
            _check_limits(archive, root, sizes, max_total_bytes, ratio)
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
        # A compressed tar is one stream: only the whole archive's ratio is known.
        sizes = [(m.name, m.size, None) for m in members if m.isfile()]
        _check_limits(archive, root, sizes, max_total_bytes, ratio)
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
