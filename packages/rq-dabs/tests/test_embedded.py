import hashlib
import zipfile

import numpy as np
import pytest
import torch
from rq_core.archives import ChecksumError
from rq_dabs.data import assets
from rq_dabs.data.assets import Asset, MissingAssetError, PinnedWheel, asset_path, fetch_assets
from rq_dabs.data.base import SPLITS, check_dabs_item
from rq_dabs.data.embedded import (
    BasicMotionsSensor,
    DigitsImages,
    SyntheticMarkovText,
    build_embedded_domain,
)
from rq_dabs.data.ts_format import parse_ts


def _ts(n_per_class: int, length: int = 100, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    lines = [
        "# tiny",
        "@problemName Tiny",
        "@classLabel true Standing Running Walking Badminton",
        "@data",
    ]
    for c, name in enumerate(["Standing", "Running", "Walking", "Badminton"]):
        for _ in range(n_per_class):
            dims = [",".join(f"{v:.3f}" for v in rng.normal(c, 1, length)) for _ in range(6)]
            lines.append(":".join(dims) + f":{name}")
    return "\n".join(lines) + "\n"


def test_basic_motions_windows_split_by_recording(tmp_path):
    path = BasicMotionsSensor.build(tmp_path, ts_texts=(_ts(10), _ts(3, seed=1)))
    sizes = {s: len(BasicMotionsSensor(path, s)) for s in SPLITS}
    per_recording = (100 - 50) // 10 + 1
    assert sizes == {
        "train": 32 * per_recording,
        "valid": 8 * per_recording,
        "test": 12 * per_recording,
    }
    train = BasicMotionsSensor(path, "train")
    check_dabs_item(train[0], BasicMotionsSensor.spec())
    x = train.inputs[0]
    assert torch.allclose(
        x.mean((0, 1)), torch.zeros(6), atol=0.05
    )  # standardized with train stats


def test_digits_and_synthetic_text_follow_the_contract(tmp_path):
    for cls in (DigitsImages, SyntheticMarkovText):
        path = cls.build(tmp_path)
        total = 0
        for split in SPLITS:
            ds = cls(path, split)
            total += len(ds)
            item = ds[len(ds) - 1]
            check_dabs_item(item, cls.spec())
            assert 0 <= item[-1] < cls.num_classes()
        assert total == (1797 if cls is DigitsImages else 1200)


def test_same_seed_same_files(tmp_path):
    a = SyntheticMarkovText.build(tmp_path / "a")
    b = SyntheticMarkovText.build(tmp_path / "b")
    with np.load(a) as x, np.load(b) as y:
        assert all(np.array_equal(x[k], y[k]) for k in x.files)


def test_missing_asset_fails_the_build_naming_the_file_and_the_command(tmp_path, monkeypatch):
    """Issue 13: the domain used to be skipped with a warning when `pip download aeon` failed.
    Now the build reads the assets folder only, and a missing file is an error that says what
    to run."""
    monkeypatch.setenv("RQ_ASSETS", str(tmp_path / "assets"))
    expected = r"missing asset .*BasicMotions_TRAIN.ts: run `rq-dabs fetch-assets`"
    with pytest.raises(MissingAssetError, match=expected):
        build_embedded_domain("basic_motions_sensor", tmp_path / "data")
    assert not (tmp_path / "data" / BasicMotionsSensor.FILE_NAME).exists()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fake_wheel(tmp_path, members: dict[str, bytes]):
    """A wheel file and the pinned records (wheel + one asset per member) that match it."""
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    pinned = PinnedWheel(wheel.name, wheel.as_uri(), _sha(wheel.read_bytes()))
    records = [
        Asset(f"set/{name.rsplit('/', 1)[-1]}", pinned, name, _sha(data))
        for name, data in members.items()
    ]
    return wheel, pinned, records


def test_fetch_extracts_verified_files_and_is_idempotent(tmp_path, monkeypatch):
    members = {"pkg/data/a.ts": b"A" * 100, "pkg/data/b.ts": b"B"}
    wheel, pinned, records = _fake_wheel(tmp_path, members)
    monkeypatch.setattr(assets, "ASSETS", tuple(records))
    root = tmp_path / "assets"
    paths = fetch_assets(root, assets=records)  # from the pinned (file://) URL
    assert [p.read_bytes() for p in paths] == [b"A" * 100, b"B"]
    assert asset_path("set/a.ts", root) == paths[0]
    # already there and verified: nothing is downloaded (the URL no longer exists)
    copy = wheel.rename(tmp_path / "copy.whl")
    assert fetch_assets(root, assets=records) == paths
    # an altered file is named by the reader and replaced by the next fetch (from a local copy)
    paths[1].write_bytes(b"tampered")
    with pytest.raises(MissingAssetError, match="is not the pinned file.*rq-dabs fetch-assets"):
        asset_path("set/b.ts", root)
    assert fetch_assets(root, wheel=copy, assets=records)[1].read_bytes() == b"B"


def test_a_wheel_with_the_wrong_sha256_is_refused_and_nothing_written(tmp_path):
    _, pinned, records = _fake_wheel(tmp_path, {"pkg/data/a.ts": b"A"})
    other = tmp_path / "other" / "pkg-1.0-py3-none-any.whl"
    other.parent.mkdir()
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("pkg/data/a.ts", b"not A")
    root = tmp_path / "assets"
    with pytest.raises(ChecksumError, match=f"does not match the expected {pinned.sha256}"):
        fetch_assets(root, wheel=other, assets=records)  # a local copy
    with pytest.raises(ChecksumError, match=f"does not match the expected {pinned.sha256}"):
        fetch_assets(root, wheel=other.as_uri(), assets=records)  # a mirror's URL
    assert not (root / "set" / "a.ts").exists()
    assert not list(tmp_path.rglob("*.partial"))


def test_an_unreachable_wheel_says_how_to_fetch_without_network(tmp_path):
    _, _, records = _fake_wheel(tmp_path, {"pkg/data/a.ts": b"A"})
    gone = (tmp_path / "nowhere" / "pkg-1.0-py3-none-any.whl").as_uri()
    with pytest.raises(ConnectionError, match=r"cannot download .*nowhere.*pass wheel=PATH"):
        fetch_assets(tmp_path / "assets", wheel=gone, assets=records)


def test_a_verified_wheel_without_the_member_is_named(tmp_path):
    _, pinned, _ = _fake_wheel(tmp_path, {"pkg/other.txt": b""})
    wanted = [Asset("set/a.ts", pinned, "pkg/data/a.ts", _sha(b"A"))]
    with pytest.raises(ChecksumError, match="has no pkg/data/a.ts"):
        fetch_assets(tmp_path / "assets", assets=wanted)


def test_the_pinned_assets_are_the_demos_files():
    """The records match what the domain reads; the wheel is aeon 1.6.0 from PyPI."""
    from rq_dabs.data.embedded import BASIC_MOTIONS_ASSETS

    assert {a.name for a in assets.ASSETS} == set(BASIC_MOTIONS_ASSETS)
    assert assets.AEON_WHEEL.url.startswith("https://files.pythonhosted.org/")
    assert assets.AEON_WHEEL.url.endswith("/aeon-1.6.0-py3-none-any.whl")
    assert all(len(a.sha256) == 64 for a in assets.ASSETS) and len(assets.AEON_WHEEL.sha256) == 64


def test_assets_folder_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("RQ_ASSETS", raising=False)
    monkeypatch.setenv("RQ_CACHE", str(tmp_path / "cache"))
    assert assets.assets_root() == tmp_path / "cache" / "assets"
    monkeypatch.setenv("RQ_ASSETS", str(tmp_path / "opt"))
    assert assets.assets_root() == tmp_path / "opt"


def test_ts_parser_names_bad_lines():
    with pytest.raises(ValueError, match="line 3"):
        parse_ts("@classLabel true a\n@data\n1,x:a\n")
    with pytest.raises(ValueError, match="not in @classLabel"):
        parse_ts("@classLabel true a\n@data\n1,2:b\n")


def test_missing_file_and_bad_split_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match="build it first"):
        DigitsImages(tmp_path, "train")
    path = SyntheticMarkovText.build(tmp_path)
    with pytest.raises(ValueError, match="split"):
        SyntheticMarkovText(path, "val")


def test_spoken_digits_are_split_by_voice(tmp_path):
    pytest.importorskip("espeakng_loader")
    from rq_dabs.data.embedded import SpokenDigitsSpeech

    class FewVoices(SpokenDigitsSpeech):  # 4 voices instead of 40: quick
        VOICES, SPLIT_VOICES = 4, {"train": 2, "valid": 1, "test": 1}

    voices = FewVoices.voices()
    assert len({v for v, _, _ in voices}) == 4 and voices == FewVoices.voices()  # seeded
    path = FewVoices.build(tmp_path)
    sizes = {s: len(SpokenDigitsSpeech(path, s)) for s in ("train", "valid", "test")}
    assert sizes == {"train": 20, "valid": 10, "test": 10}
    train = SpokenDigitsSpeech(path, "train")
    check_dabs_item(train[3], SpokenDigitsSpeech.spec())
    assert sorted({train[i][2] for i in range(len(train))}) == list(range(10))
    x = train.inputs[0]
    assert (
        abs(float(x.mean())) < 1e-3 and abs(float(x.std()) - 1) < 1e-2
    )  # standardized with train stats
