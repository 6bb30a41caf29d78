import zipfile

import numpy as np
import pytest
import torch
from rq_dabs.datasets import embedded
from rq_dabs.datasets.base import SPLITS, check_dabs_item
from rq_dabs.datasets.embedded import (
    BasicMotionsSensor,
    DigitsImages,
    SyntheticMarkovText,
    build_embedded_domain,
    read_zip_members,
)
from rq_dabs.datasets.ts_format import parse_ts


def _ts(n_per_class: int, length: int = 100, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    lines = ["# tiny", "@problemName Tiny", "@classLabel true Standing Running Walking Badminton", "@data"]
    for c, name in enumerate(["Standing", "Running", "Walking", "Badminton"]):
        for _ in range(n_per_class):
            dims = [",".join(f"{v:.3f}" for v in rng.normal(c, 1, length)) for _ in range(6)]
            lines.append(":".join(dims) + f":{name}")
    return "\n".join(lines) + "\n"


def test_basic_motions_windows_split_by_recording(tmp_path):
    path = BasicMotionsSensor.build(tmp_path, ts_texts=(_ts(10), _ts(3, seed=1)))
    sizes = {s: len(BasicMotionsSensor(path, s)) for s in SPLITS}
    per_recording = (100 - 50) // 10 + 1
    assert sizes == {"train": 32 * per_recording, "valid": 8 * per_recording, "test": 12 * per_recording}
    train = BasicMotionsSensor(path, "train")
    check_dabs_item(train[0], BasicMotionsSensor.spec())
    x = train.inputs[0]
    assert torch.allclose(x.mean((0, 1)), torch.zeros(6), atol=0.05)  # standardized with train stats


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


def test_unreachable_source_skips_the_domain_with_a_warning(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise RuntimeError("pip download aeon==1.6.0 failed: no network")

    monkeypatch.setattr(embedded, "read_wheel_members", offline)
    with pytest.warns(UserWarning, match="skipped"):
        assert build_embedded_domain("basic_motions_sensor", tmp_path) is None


def test_wheel_members_are_read_and_missing_ones_named(tmp_path):
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("pkg/data/a.ts", "x")
    assert read_zip_members(wheel, ("pkg/data/a.ts",)) == [b"x"]
    with pytest.raises(RuntimeError, match="lacks"):
        read_zip_members(wheel, ("pkg/data/b.ts",))


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
    from rq_dabs.datasets.embedded import SpokenDigitsSpeech

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
    assert abs(float(x.mean())) < 1e-3 and abs(float(x.std()) - 1) < 1e-2  # standardized with train stats
