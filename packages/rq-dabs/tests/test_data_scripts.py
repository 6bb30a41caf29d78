"""Each data script of data_scripts/dabs on tiny archives built here (served from a local
mirror folder, so no network)."""

import hashlib
import importlib
import io
import pickle
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from rq_dabs.data.base import check_dabs_item
from rq_dabs.data.download import Source

SCRIPTS = Path(__file__).resolve().parents[3] / "data_scripts" / "dabs"


def _script(name):
    sys.path.insert(0, str(SCRIPTS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(SCRIPTS))


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _tar_gz(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_cifar10_is_verified_extracted_and_prepared_for_the_reader(tmp_path):
    natural = _script("natural_images")
    rng = np.random.default_rng(0)

    def batch(n):
        return pickle.dumps(
            {
                b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                b"labels": [i % 10 for i in range(n)],
            }
        )

    files = {f"cifar-10-batches-py/data_batch_{i}": batch(20) for i in range(1, 6)}
    files["cifar-10-batches-py/test_batch"] = batch(10)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive = _tar_gz(mirror / "cifar-10-python.tar.gz", files)
    public = {
        "cifar10": natural.PublicSet(
            [
                Source(
                    "https://example.invalid/cifar-10-python.tar.gz",
                    archive.name,
                    md5=_md5(archive),
                )
            ],
            prepare=natural.prepare_cifar10,
        )
    }
    root = tmp_path / "root"
    assert natural.main(
        ["--root", str(root), "--mirror", str(mirror), "--only", "cifar10"], public=public
    ) == ["cifar10"]

    from rq_dabs.data.image_folder import CIFAR10Small

    sizes = {s: len(CIFAR10Small(root, s)) for s in ("train", "valid", "test")}
    assert sizes == {"train": 90, "valid": 10, "test": 10}
    item = CIFAR10Small(root, "test")[3]
    check_dabs_item(item, CIFAR10Small.spec())
    assert 0.0 <= float(item[1].min()) and float(item[1].max()) <= 1.0


def test_a_wrong_archive_stops_before_extraction(tmp_path):
    natural = _script("natural_images")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    _tar_gz(mirror / "cifar-10-python.tar.gz", {"x": b"not cifar"})
    with pytest.raises(ValueError, match="md5"):
        natural.main(
            ["--root", str(tmp_path / "root"), "--mirror", str(mirror), "--only", "cifar10"]
        )
    assert not (tmp_path / "root" / "natural_images" / "cifar10" / "x").exists()


def test_registration_sets_print_instructions_and_are_not_downloaded(tmp_path, capsys):
    natural = _script("natural_images")
    assert natural.main(["--root", str(tmp_path), "--only", "imagenet", "cu_birds"]) == []
    out = capsys.readouterr().out
    assert "image-net.org" in out and "CUB_200_2011" in out
    assert not any(tmp_path.iterdir())


def _pamap2_subject(rng, activities=(1, 4), rows=400) -> bytes:
    lines = []
    for t in range(rows * len(activities)):
        activity = activities[t // rows]
        values = rng.normal(size=52)
        values[rng.random(52) < 0.05] = np.nan  # dropped readings are interpolated
        lines.append(
            " ".join(
                [
                    f"{t / 100:.2f}",
                    str(activity),
                    *("NaN" if np.isnan(v) else f"{v:.4f}" for v in values),
                ]
            )
        )
    return ("\n".join(lines) + "\n").encode()


def test_pamap2_archive_feeds_the_reader_and_missing_subjects_are_counted(tmp_path):
    sensor = _script("sensor")
    rng = np.random.default_rng(0)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with zipfile.ZipFile(mirror / "PAMAP2_Dataset.zip", "w") as z:
        for subject in (1, 5, 6):
            z.writestr(f"PAMAP2_Dataset/Protocol/subject10{subject}.dat", _pamap2_subject(rng))
    root = tmp_path / "root"
    with pytest.warns(UserWarning, match="no published checksum"):
        sensor.main(["--root", str(root), "--mirror", str(mirror)])

    from rq_dabs.data.pamap2 import PAMAP2

    valid = PAMAP2(root, "valid")
    assert len(valid) == 2  # one window of 320 per activity of 400 rows
    item = valid[1]
    check_dabs_item(item, PAMAP2.spec())
    assert not np.isnan(item[1].numpy()).any()
    with pytest.warns(UserWarning, match="skipping PAMAP2 subject"):
        train = PAMAP2(root, "train")
    assert train.skipped == 6  # subjects 102-104 and 107-109 are missing
    check_dabs_item(train[7], PAMAP2.spec())


@pytest.mark.parametrize(
    "script, name, filename",
    [
        ("text", "wikitext103", "wikitext-103-v1.zip"),
        ("speech", "audio_mnist", "AudioMNIST-master.zip"),
        ("captioned_images", "mscoco", "train2017.zip"),
        ("medical_images", "xray8", "images_001.tar.gz"),
    ],
)
def test_other_domains_fetch_verify_and_extract(tmp_path, script, name, filename):
    module = _script(script)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    if filename.endswith(".zip"):
        with zipfile.ZipFile(mirror / filename, "w") as z:
            z.writestr("inner/file.txt", "payload")
    else:
        _tar_gz(mirror / filename, {"inner/file.txt": b"payload"})
    original = module.PUBLIC[name].sources[0]
    assert original.filename == filename
    public = {name: module.PublicSet([original])}
    root = tmp_path / "root"
    with pytest.warns(UserWarning, match="no published checksum"):
        module.main(["--root", str(root), "--mirror", str(mirror)], public=public)
    extracted = list(root.rglob("inner/file.txt"))
    assert len(extracted) == 1 and extracted[0].read_text() == "payload"


def test_text_installs_a_local_vocabulary_and_rejects_a_wrong_one(tmp_path):
    text = _script("text")
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\n##s\n")
    text.main(["--root", str(tmp_path / "root"), "--only", "--vocab", str(vocab)], public={})
    assert (tmp_path / "root" / "text" / "vocab.txt").read_text() == vocab.read_text()
    bad = tmp_path / "bad.txt"
    bad.write_text("hello\nworld\n")
    with pytest.raises(ValueError, match="BERT vocab"):
        text.install_vocab(bad, tmp_path / "root")


def test_pinned_checksums_are_well_formed():
    for script in (
        "natural_images",
        "sensor",
        "text",
        "speech",
        "captioned_images",
        "medical_images",
    ):
        module = _script(script)
        for item in module.PUBLIC.values():
            for source in item.sources:
                assert source.url.startswith(("http://", "https://"))
                if source.md5:
                    assert len(source.md5) == 32 and int(source.md5, 16) >= 0
                if source.sha256:
                    assert len(source.sha256) == 64 and int(source.sha256, 16) >= 0
