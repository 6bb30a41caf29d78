"""Reading audio files into mono float32 at one sample rate, and cutting them to a fixed length.

BYOL-A works on 16 kHz mono clips of ``unit_sec`` seconds (0.95 s in pretraining; each
downstream task has its own duration, see :mod:`rq_audio.data.tasks`).

>>> import numpy as np
>>> crop_or_pad(np.ones(10, np.float32), 4, random_crop=False).shape
(4,)
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import numpy as np

__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioReadError",
    "AudioSkipReason",
    "crop_or_pad",
    "load_audio",
    "resample",
]

# What `prepare` picks up from a folder when no metadata.csv lists the files.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au", ".m4a", ".opus")


class AudioSkipReason(StrEnum):
    """Why an audio file was skipped (the ``reason`` column of ``<cache>.skipped.csv``)."""

    MISSING = "missing"  # listed (metadata.csv) but not on disk
    UNREADABLE = "unreadable"  # neither libsndfile nor audioread can decode it
    EMPTY = "empty"  # decodes to 0 samples
    NON_FINITE = "non_finite"  # NaN or Inf samples
    TOO_SHORT = "too_short"  # fewer samples than the caller's minimum


class AudioReadError(RuntimeError):
    """A file could not be turned into audio; ``reason`` says which way it failed."""

    def __init__(self, message: str, reason: AudioSkipReason) -> None:
        super().__init__(message)
        self.reason = AudioSkipReason(reason)

    def __reduce__(self):  # picklable across processes despite the extra argument
        return type(self), (str(self), self.reason)


def resample(wav: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """``wav`` (N,) from ``orig_sr`` to ``target_sr`` Hz with soxr's high-quality filter,
    zero-padded or cut to ``ceil(N * target_sr / orig_sr)`` samples, in ``wav``'s dtype.

    Exactly ``librosa.resample(wav, orig_sr=..., target_sr=..., res_type="soxr_hq")`` (the test
    compares them), without librosa: its numba start-up costs seconds, and nothing else here
    needs it.
    """
    if orig_sr == target_sr:
        return wav
    import soxr

    out = soxr.resample(wav, orig_sr, target_sr, quality="soxr_hq")
    size = int(np.ceil(wav.shape[-1] * (float(target_sr) / orig_sr)))
    out = out[:size] if len(out) >= size else np.pad(out, (0, size - len(out)))
    return np.asarray(out, dtype=wav.dtype)


def _read_any(path: Path) -> tuple[np.ndarray, int]:
    """(samples, channels) float32 and the file's rate: libsndfile first, then audioread (the
    system's ffmpeg / GStreamer: m4a and whatever libsndfile cannot decode).

    audioread is called directly rather than through ``librosa.load``, which warns twice per
    file on that path; silencing those warnings with ``warnings.catch_warnings()`` is not
    thread-safe (it swaps the process-wide filter list), and in ``prepare``'s reader threads it
    left an "ignore everything" filter behind that hid other files' warnings.
    """
    import soundfile

    try:
        data, sr = soundfile.read(str(path), dtype="float32", always_2d=True)
        return data, int(sr)
    except Exception as sf_error:  # noqa: BLE001 - any libsndfile failure: try the next reader
        try:
            import audioread

            with audioread.audio_open(str(path)) as f:
                sr, channels = int(f.samplerate), int(f.channels)
                pcm = b"".join(f)  # interleaved 16-bit little-endian PCM blocks
        except Exception as ar_error:  # noqa: BLE001
            raise AudioReadError(
                f"cannot read {path}: soundfile said {sf_error!s}; audioread said {ar_error!r}",
                AudioSkipReason.UNREADABLE,
            ) from ar_error
        data = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0
        return data.reshape(-1, max(channels, 1)), sr


def load_audio(path: str | Path, sample_rate: int = 16000, *, min_samples: int = 1) -> np.ndarray:
    """Read any common audio file as mono float32 at ``sample_rate`` Hz.

    Channels are averaged; other rates are resampled with soxr (librosa's high-quality
    default). Raises :class:`AudioReadError` for a file that cannot be read, is empty,
    holds NaN/Inf, or has fewer than ``min_samples`` samples after resampling.

    Returns: ``(num_samples,)`` float32 in [-1, 1] for PCM input.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioReadError(f"no such file: {path}", AudioSkipReason.MISSING)
    data, sr = _read_any(path)
    if data.size == 0:
        raise AudioReadError(f"empty audio file: {path}", AudioSkipReason.EMPTY)
    wav = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(wav).all():
        raise AudioReadError(f"non-finite samples in {path}", AudioSkipReason.NON_FINITE)
    wav = resample(wav, sr, sample_rate)
    if len(wav) < min_samples:
        raise AudioReadError(
            f"too short: {path} has {len(wav)} samples at {sample_rate} Hz, need >= {min_samples}",
            AudioSkipReason.TOO_SHORT,
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
