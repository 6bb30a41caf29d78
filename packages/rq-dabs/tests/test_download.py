import hashlib
import io
import tarfile
import zipfile

import pytest
from rq_dabs.data.download import ChecksumError, Source, UnsafeArchiveError, fetch, safe_extract


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_fetch_verifies_and_reuses(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "a.bin").write_bytes(b"hello")
    src = Source("https://example.invalid/a.bin", "a.bin", md5=_md5(b"hello"))
    path = fetch(src, tmp_path / "out", mirror=str(mirror), progress=False)
    assert path.read_bytes() == b"hello"
    (mirror / "a.bin").unlink()  # a verified copy is reused without the network
    assert fetch(src, tmp_path / "out", mirror=str(mirror), progress=False) == path


def test_fetch_rejects_a_wrong_checksum_and_leaves_nothing(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "a.bin").write_bytes(b"tampered")
    src = Source("https://example.invalid/a.bin", "a.bin", md5=_md5(b"hello"))
    with pytest.raises(ChecksumError, match="md5"):
        fetch(src, tmp_path / "out", mirror=str(mirror), progress=False)
    assert list((tmp_path / "out").iterdir()) == []


def test_unpinned_source_records_its_digest_then_verifies_it(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "b.bin").write_bytes(b"v1")
    src = Source("https://example.invalid/b.bin", "b.bin")
    with pytest.warns(UserWarning, match="no published checksum"):
        path = fetch(src, tmp_path / "out", mirror=str(mirror), progress=False)
    record = path.with_name("b.bin.sha256").read_text()
    assert record.startswith(hashlib.sha256(b"v1").hexdigest())
    path.write_bytes(b"v2")  # the local copy changes: it is fetched again and checked
    (mirror / "b.bin").write_bytes(b"v2")
    with pytest.raises(ChecksumError):
        fetch(src, tmp_path / "out", mirror=str(mirror), progress=False)


def test_safe_extract_tar_and_zip(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("d/x.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    (tmp_path / "a.tar.gz").write_bytes(buf.getvalue())
    files = safe_extract(tmp_path / "a.tar.gz", tmp_path / "t")
    assert [f.read_bytes() for f in files] == [b"abc"]
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as z:
        z.writestr("e/y.txt", "xyz")
    assert (safe_extract(tmp_path / "a.zip", tmp_path / "z")[0]).read_text() == "xyz"


@pytest.mark.parametrize("name", ["../evil.txt", "/abs/evil.txt", "ok/../../evil.txt"])
def test_zip_members_escaping_the_folder_are_refused(tmp_path, name):
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as z:
        z.writestr("fine.txt", "ok")
        z.writestr(name, "bad")
    with pytest.raises(UnsafeArchiveError, match="escapes"):
        safe_extract(tmp_path / "bad.zip", tmp_path / "out")
    assert not (tmp_path / "out" / "fine.txt").exists()  # checked before anything is written
    assert not (tmp_path / "evil.txt").exists()


def test_tar_links_pointing_outside_are_refused(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        link = tarfile.TarInfo("link")
        link.type = tarfile.SYMTYPE
        link.linkname = "../../etc/passwd"
        tar.addfile(link)
    (tmp_path / "l.tar").write_bytes(buf.getvalue())
    with pytest.raises(UnsafeArchiveError):
        safe_extract(tmp_path / "l.tar", tmp_path / "out")
