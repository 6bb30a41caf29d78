import librosa
import numpy as np
import pytest
import torch
from rq_audio.log_mel import LogMelSpectrogram
from rq_audio.testing import tone


@pytest.fixture(scope="module")
def waves():
    rng = np.random.default_rng(0)
    clips = [
        tone(440.0, 0.5, rng=rng),
        tone(3000.0, 0.5, rng=rng),
        0.3 * rng.standard_normal(8000).astype(np.float32),
    ]
    return torch.from_numpy(np.stack(clips))


def _librosa_reference(wav):
    """BYOL-A's MelSpectrogramLibrosa recipe (librosa STFT power @ librosa filterbank); reflect
    padding was librosa's default when BYOL-A was released (0.8)."""
    fb = librosa.filters.mel(sr=16000, n_fft=1024, n_mels=64, fmin=60, fmax=7800)
    power = (
        np.abs(librosa.stft(wav.astype(np.float64), n_fft=1024, hop_length=160, pad_mode="reflect"))
        ** 2
    )
    return np.log(fb @ power + np.finfo(np.float32).eps)


def test_shape_is_64_mels_by_frames(waves):
    out = LogMelSpectrogram()(waves)
    assert out.shape == (3, 64, 1 + 8000 // 160)
    assert torch.isfinite(LogMelSpectrogram()(torch.zeros(1, 1600))).all()  # silence stays finite


def test_nnaudio_agrees_with_torchaudio_librosa_filterbank(waves):
    a = LogMelSpectrogram(backend="nnaudio")(waves)
    b = LogMelSpectrogram(backend="torchaudio", filterbank="librosa")(waves)
    loud = b > b.max() - 12  # compare where there is energy (log units: ~50 dB below peak)
    assert loud.float().mean() > 0.3
    assert (a - b)[loud].abs().max() < 1e-2


def test_torchaudio_librosa_filterbank_matches_librosa(waves):
    ours = LogMelSpectrogram(backend="torchaudio", filterbank="librosa")(waves).numpy()
    for i in range(len(waves)):
        ref = _librosa_reference(waves[i].numpy())
        loud = ref > ref.max() - 12
        assert np.abs(ours[i] - ref)[loud].max() < 1e-2


def test_htk_filterbank_differs_from_librosa(waves):
    htk = LogMelSpectrogram(backend="torchaudio", filterbank="htk")(waves)
    slaney = LogMelSpectrogram(backend="torchaudio", filterbank="librosa")(waves)
    assert (htk - slaney).abs().mean() > 0.1  # different mel scale and normalisation


def test_bad_arguments():
    with pytest.raises(ValueError, match="backend"):
        LogMelSpectrogram(backend="scipy")
    with pytest.raises(ValueError, match="f_min"):
        LogMelSpectrogram(f_min=100, f_max=9000)
    with pytest.raises(ValueError, match=r"\(B, N\)"):
        LogMelSpectrogram()(torch.zeros(16000))
