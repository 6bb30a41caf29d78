import pickle

import numpy as np
import pytest
import soundfile
from rq_audio.data.audio_io import AudioReadError, crop_or_pad, load_audio, resample
from rq_audio.testing import tone


def _dominant_freq(wav, sr):
    spectrum = np.abs(np.fft.rfft(wav))
    return np.fft.rfftfreq(len(wav), 1 / sr)[spectrum.argmax()]


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_16"), ("FLAC", "PCM_24"), ("OGG", "VORBIS")])
def test_reads_stereo_44k_as_mono_16k_keeping_pitch(tmp_path, fmt, subtype):
    sr = 44100
    left = tone(1000.0, 0.5, sr)
    stereo = np.stack([left, left], axis=1)
    path = tmp_path / f"a.{fmt.lower()}"
    soundfile.write(path, stereo, sr, format=fmt, subtype=subtype)
    wav = load_audio(path, 16000)
    assert wav.dtype == np.float32 and wav.ndim == 1
    assert abs(len(wav) - 8000) <= 2
    assert abs(_dominant_freq(wav, 16000) - 1000.0) < 5.0


@pytest.mark.parametrize(
    "orig_sr,target_sr", [(22050, 16000), (44100, 16000), (8000, 16000), (48000, 22050)]
)
@pytest.mark.parametrize("length", [1, 999, 22050])
def test_resample_equals_librosa_soxr_hq(orig_sr, target_sr, length):
    import librosa  # the reference (the workspace's dev group)

    wav = np.random.default_rng(length).standard_normal(length).astype(np.float32) * 0.3
    ours = resample(wav, orig_sr, target_sr)
    reference = librosa.resample(wav, orig_sr=orig_sr, target_sr=target_sr, res_type="soxr_hq")
    assert ours.dtype == reference.dtype and ours.shape == reference.shape
    assert np.array_equal(ours, reference)


def test_resample_at_the_same_rate_returns_the_input():
    wav = np.arange(5, dtype=np.float32)
    assert resample(wav, 16000, 16000) is wav


def test_channels_are_averaged(tmp_path):
    data = np.stack([np.full(1600, 0.5, np.float32), np.full(1600, -0.1, np.float32)], axis=1)
    soundfile.write(tmp_path / "s.wav", data, 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "s.wav"), 0.2, atol=1e-6)


def test_bad_files_raise_naming_the_problem(tmp_path):
    (tmp_path / "garbage.wav").write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(AudioReadError, match="cannot read") as err:
        load_audio(tmp_path / "garbage.wav")
    assert err.value.reason == "unreadable"
    soundfile.write(tmp_path / "empty.wav", np.zeros((0,), np.float32), 16000)
    with pytest.raises(AudioReadError, match="empty") as err:
        load_audio(tmp_path / "empty.wav")
    assert err.value.reason == "empty"
    soundfile.write(tmp_path / "short.wav", np.zeros(100, np.float32), 16000)
    with pytest.raises(AudioReadError, match="too short") as err:
        load_audio(tmp_path / "short.wav", min_samples=1600)
    assert err.value.reason == "too_short"
    soundfile.write(tmp_path / "nan.wav", np.full(1600, np.nan, np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioReadError, match="non-finite") as err:
        load_audio(tmp_path / "nan.wav")
    assert err.value.reason == "non_finite"
    with pytest.raises(AudioReadError, match="no such file") as err:
        load_audio(tmp_path / "missing.wav")
    assert err.value.reason == "missing"
    assert pickle.loads(pickle.dumps(err.value)).reason == "missing"


def test_fallback_reader_decodes_what_libsndfile_cannot(tmp_path, monkeypatch):
    """When libsndfile fails, audioread decodes (here its stdlib wave backend: a PCM16 stereo
    wav), giving the same samples as libsndfile would."""
    stereo = np.stack([tone(440.0, 0.2, 16000), -0.5 * tone(440.0, 0.2, 16000)], axis=1)
    soundfile.write(tmp_path / "s.wav", stereo, 16000, subtype="PCM_16")
    expected = load_audio(tmp_path / "s.wav")

    def refuse(*args, **kwargs):
        raise RuntimeError("libsndfile: format not recognised")

    monkeypatch.setattr(soundfile, "read", refuse)
    np.testing.assert_allclose(load_audio(tmp_path / "s.wav"), expected, atol=1e-6)


def test_pad_is_centred_and_crops_stay_inside():
    wav = np.arange(1, 11, dtype=np.float32)
    padded = crop_or_pad(wav, 14, random_crop=True)
    np.testing.assert_array_equal(padded, np.r_[0, 0, wav, 0, 0])
    assert np.array_equal(crop_or_pad(wav, 4, random_crop=False), wav[:4])
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(50):
        crop = crop_or_pad(wav, 4, random_crop=True, rng=rng)
        assert np.array_equal(np.diff(crop), np.ones(3))  # contiguous window of the clip
        starts.add(int(crop[0]))
    assert starts == set(range(1, 8))  # every start 0..6 occurs
    with pytest.raises(ValueError, match="num_samples"):
        crop_or_pad(wav, 0, random_crop=False)
