"""rq_core.archives: safe extraction and checksums shared by every modality's data scripts."""

import io
import tarfile
import zipfile

import numpy as np
import pytest
from rq_core.archives import (
    ArchiveLimitError,
    ChecksumError,
    UnsafeArchiveError,
    safe_extract,
    verify_checksum,
)


def test_zip_slip_is_refused_and_nothing_written(tmp_path):
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as z:
        z.writestr("ok.txt", "fine")
        z.writestr("../../evil.txt", "pwned")
    with pytest.raises(UnsafeArchiveError, match="outside"):
        safe_extract(tmp_path / "bad.zip", tmp_path / "out")
    assert not (tmp_path / "out" / "ok.txt").exists() and not (tmp_path / "evil.txt").exists()


def test_tar_links_and_absolute_paths_are_refused(tmp_path):
    for name, kind in (("abs.tar", "abs"), ("link.tar", "link")):
        with tarfile.open(tmp_path / name, "w") as t:
            info = tarfile.TarInfo("/etc/x" if kind == "abs" else "link")
            if kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                t.addfile(info)
            else:
                info.size = 1
                t.addfile(info, io.BytesIO(b"x"))
        with pytest.raises(UnsafeArchiveError):
            safe_extract(tmp_path / name, tmp_path / "out")


def test_checksum_mismatch_names_both_digests(tmp_path):
    (tmp_path / "a.zip").write_bytes(b"abc")
    sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert verify_checksum(tmp_path / "a.zip", sha, "sha256") is True
    assert verify_checksum(tmp_path / "a.zip", None) is False  # nothing to verify against
    with pytest.raises(ChecksumError, match="does not match the expected 00"):
        verify_checksum(tmp_path / "a.zip", "00" * 32, "sha256")
    with pytest.raises(FileNotFoundError, match="missing.zip"):
        verify_checksum(tmp_path / "missing.zip", None)


def test_links_inside_the_target_are_refused_too_and_nothing_is_written(tmp_path):
    with tarfile.open(tmp_path / "inner.tar", "w") as t:
        data = tarfile.TarInfo("a.txt")
        data.size = 1
        t.addfile(data, io.BytesIO(b"x"))
        link = tarfile.TarInfo("b.txt")
        link.type, link.linkname = tarfile.SYMTYPE, "a.txt"
        t.addfile(link)
    with pytest.raises(UnsafeArchiveError, match="link 'b.txt' points inside"):
        safe_extract(tmp_path / "inner.tar", tmp_path / "out")
    assert not (tmp_path / "out" / "a.txt").exists()


def test_tar_regular_files_and_folders_are_extracted(tmp_path):
    with tarfile.open(tmp_path / "ok.tar.gz", "w:gz") as t:
        folder = tarfile.TarInfo("d")
        folder.type = tarfile.DIRTYPE
        t.addfile(folder)
        f = tarfile.TarInfo("d/f.txt")
        f.size = 2
        t.addfile(f, io.BytesIO(b"hi"))
    written = safe_extract(tmp_path / "ok.tar.gz", tmp_path / "out")
    assert written == [(tmp_path / "out" / "d" / "f.txt").resolve()]
    assert written[0].read_bytes() == b"hi"


# ----------------------------------------------------------------------------- archive bombs
MIB = 1 << 20


def _zip(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def test_a_1000_to_1_zip_member_is_refused_naming_archive_and_member(tmp_path):
    """Issue 13: a member of 2 MiB of zeros (~1000:1 deflated) went through."""
    bomb = _zip(tmp_path / "bomb.zip", {"ok.txt": b"fine", "data/zeros.bin": bytes(2 * MIB)})
    expected = r"bomb.zip: member 'data/zeros.bin' would expand \d+:1"
    with pytest.raises(ArchiveLimitError, match=expected):
        safe_extract(bomb, tmp_path / "out")
    assert not (tmp_path / "out" / "ok.txt").exists()  # checked before anything is written
    # a trusted archive: the check is off with max_ratio=None, or through the environment
    assert len(safe_extract(bomb, tmp_path / "trusted", max_ratio=None)) == 2
    assert (tmp_path / "trusted" / "data" / "zeros.bin").stat().st_size == 2 * MIB


def test_ratio_limit_can_be_set_by_the_environment(tmp_path, monkeypatch):
    bomb = _zip(tmp_path / "bomb.zip", {"zeros.bin": bytes(2 * MIB)})
    monkeypatch.setenv("RQ_EXTRACT_MAX_RATIO", "none")
    assert len(safe_extract(bomb, tmp_path / "a")) == 1
    monkeypatch.setenv("RQ_EXTRACT_MAX_RATIO", "5000")
    assert len(safe_extract(bomb, tmp_path / "b")) == 1
    monkeypatch.setenv("RQ_EXTRACT_MAX_RATIO", "50")
    with pytest.raises(ArchiveLimitError, match="over the limit of 50:1"):
        safe_extract(bomb, tmp_path / "c")
    monkeypatch.setenv("RQ_EXTRACT_MAX_RATIO", "lots")
    with pytest.raises(ValueError, match="RQ_EXTRACT_MAX_RATIO must be a number"):
        safe_extract(bomb, tmp_path / "d")


def test_many_small_members_are_refused_by_the_whole_archive_ratio(tmp_path):
    # each member is under the 1 MiB floor; together 4 MiB from a few KiB
    bomb = _zip(tmp_path / "many.zip", {f"z{i}.bin": bytes(MIB // 2) for i in range(8)})
    expected = r"many.zip: would expand \d+:1.*largest member 'z0.bin'"
    with pytest.raises(ArchiveLimitError, match=expected):
        safe_extract(bomb, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_compressed_tar_bomb_is_refused(tmp_path):
    with tarfile.open(tmp_path / "bomb.tar.gz", "w:gz") as t:
        info = tarfile.TarInfo("zeros.bin")
        info.size = 4 * MIB
        t.addfile(info, io.BytesIO(bytes(4 * MIB)))
    with pytest.raises(ArchiveLimitError, match=r"bomb.tar.gz: would expand \d+:1.*'zeros.bin'"):
        safe_extract(tmp_path / "bomb.tar.gz", tmp_path / "out")
    assert not (tmp_path / "out" / "zeros.bin").exists()


def test_real_looking_data_passes_the_default_limits(tmp_path):
    """Incompressible bytes (audio, images) and number text (meshes, series) are far from the
    default ratio, also well over the 1 MiB floor."""
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, 2 * MIB, dtype=np.uint8).tobytes()
    mesh = "\n".join(" ".join(f"{v:.6f}" for v in row) for row in rng.random((60000, 3))).encode()
    members = {"a.wav": noise, "m.off": mesh, "labels.csv": b"x,y\n" * 20000}
    archive = _zip(tmp_path / "data.zip", members)
    assert len(safe_extract(archive, tmp_path / "out")) == 3


def test_total_size_limit_and_free_disk_space(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    data = {f"f{i}.bin": rng.integers(0, 256, 100_000, dtype=np.uint8).tobytes() for i in range(3)}
    archive = _zip(tmp_path / "big.zip", data)
    expected = r"big.zip: would extract 293.0 KiB.*over the limit of 97.7 KiB"
    with pytest.raises(ArchiveLimitError, match=expected):
        safe_extract(archive, tmp_path / "out", max_total_bytes=100_000)
    assert len(safe_extract(archive, tmp_path / "out", max_total_bytes=300_000)) == 3

    from rq_core import archives

    class Full:
        free = 50_000

    monkeypatch.setattr(archives.shutil, "disk_usage", lambda path: Full)
    expected = r"big.zip: would extract 293.0 KiB .* has only 48.8 KiB free"
    with pytest.raises(ArchiveLimitError, match=expected):
        safe_extract(archive, tmp_path / "out2")
    assert not (tmp_path / "out2" / "f0.bin").exists()


def test_a_zip_member_holding_more_than_it_declares_is_not_written_beyond_it(tmp_path):
    """The limits trust the declared sizes because the readers never return more: a member
    whose header understates its size fails (CRC) with at most the declared bytes written."""
    path = _zip(tmp_path / "liar.zip", {"x.bin": bytes(777_777)})
    data = bytearray(path.read_bytes())
    declared = (777_777).to_bytes(4, "little")
    small = (1000).to_bytes(4, "little")
    assert data.count(declared) == 2  # the size field of the local and the central header
    path.write_bytes(bytes(data).replace(declared, small))
    with pytest.raises(zipfile.BadZipFile):
        safe_extract(path, tmp_path / "out")
    written = tmp_path / "out" / "x.bin"
    assert not written.exists() or written.stat().st_size <= 1000
