"""Reading audio files into mono float32 at one sample rate, and cutting them to a fixed length.

BYOL-A works on 16 kHz mono clips of ``unit_sec`` seconds (0.95 s in pretraining; each
downstream task has its own duration, see :mod:`rq_audio.tasks`).

>>> import numpy as np
>>> crop_or_pad(np.ones(10, np.float32), 4, random_crop=False).shape
(4,)
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

__all__ = ["AUDIO_EXTENSIONS", "AudioReadError", "crop_or_pad", "load_audio", "resample"]

# What `prepare` picks up from a folder when no metadata.csv lists the files.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au", ".m4a", ".opus")


class AudioReadError(RuntimeError):
    """A file could not be turned into audio (unreadable, empty, non-finite, too short)."""


def resample(wav: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """``wav`` (N,) from ``orig_sr`` to ``target_sr`` Hz with soxr's high-quality filter,
    zero-padded or cut to ``ceil(N * target_sr / orig_sr)`` samples, in ``wav``'s dtype.

    Exactly ``librosa.resample(wav, orig_sr=..., target_sr=..., res_type="soxr_hq")`` (the test
    compares them), without importing librosa: its numba start-up costs seconds, and librosa is
    only needed here as the fallback reader of formats libsndfile cannot open.
    """
    if orig_sr == target_sr:
        return wav
    import soxr

    out = soxr.resample(wav, orig_sr, target_sr, quality="soxr_hq")
    size = int(np.ceil(wav.shape[-1] * (float(target_sr) / orig_sr)))
    out = out[:size] if len(out) >= size else np.pad(out, (0, size - len(out)))
    return np.asarray(out, dtype=wav.dtype)


def _read_any(path: Path) -> tuple[np.ndarray, int]:
    """(samples, channels) float32 and the file's rate; soundfile first, librosa where it cannot."""
    import soundfile

    try:
        data, sr = soundfile.read(str(path), dtype="float32", always_2d=True)
        return data, int(sr)
    except Exception as sf_error:  # noqa: BLE001 - any libsndfile failure: try the next reader
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # librosa's audioread deprecation chatter
                import librosa

                data, sr = librosa.load(str(path), sr=None, mono=False)
        except Exception as lr_error:  # noqa: BLE001
            raise AudioReadError(
                f"cannot read {path}: soundfile said {sf_error!s}; librosa said {lr_error!s}"
            ) from lr_error
        data = np.asarray(data, dtype=np.float32)
        data = data[:, None] if data.ndim == 1 else data.T
        return data, int(sr)


def load_audio(path: str | Path, sample_rate: int = 16000, *, min_samples: int = 1) -> np.ndarray:
    """Read any common audio file as mono float32 at ``sample_rate`` Hz.

    Channels are averaged; other rates are resampled with soxr (librosa's high-quality
    default). Raises :class:`AudioReadError` for a file that cannot be read, is empty,
    holds NaN/Inf, or has fewer than ``min_samples`` samples after resampling.

    Returns: ``(num_samples,)`` float32 in [-1, 1] for PCM input.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioReadError(f"no such file: {path}")
    data, sr = _read_any(path)
    if data.size == 0:
        raise AudioReadError(f"empty audio file: {path}")
    wav = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(wav).all():
        raise AudioReadError(f"non-finite samples in {path}")
    wav = resample(wav, sr, sample_rate)
    if len(wav) < min_samples:
        raise AudioReadError(
            f"too short: {path} has {len(wav)} samples at {sample_rate} Hz, need >= {min_samples}"
        )
    return np.ascontiguousarray(wav, dtype=np.float32)


def crop_or_pad(
    wav: np.ndarray,
    num_samples: int,
    *,
    random_crop: bool,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Cut ``wav`` (N,) to exactly ``num_samples``.

    Shorter clips are zero-padded on both ends (centred, as BYOL-A's dataset does); longer
    clips are cropped at a uniformly random start when ``random_crop`` (training) or from
    the start otherwise (evaluation: deterministic, as EVAR reads its clips).
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    n = len(wav)
    if n < num_samples:
        left = (num_samples - n) // 2
        return np.pad(wav, (left, num_samples - n - left))
    if n == num_samples:
        return wav
    start = 0
    if random_crop:
        rng = rng if rng is not None else np.random.default_rng()
        start = int(rng.integers(0, n - num_samples + 1))
    return wav[start : start + num_samples]
