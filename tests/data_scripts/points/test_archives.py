import io
import tarfile
import zipfile

import pytest
from rq_points.archives import UnsafeArchiveError, safe_extract, verify_sha256


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
    verify_sha256(tmp_path / "a.zip", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    with pytest.raises(ValueError, match="does not match the expected 00"):
        verify_sha256(tmp_path / "a.zip", "00" * 32)
