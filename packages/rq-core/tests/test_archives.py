"""rq_core.archives: safe extraction and checksums shared by every modality's data scripts."""

import io
import tarfile
import zipfile

import pytest
from rq_core.archives import ChecksumError, UnsafeArchiveError, safe_extract, verify_checksum


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
