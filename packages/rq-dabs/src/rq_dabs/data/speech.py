"""Speech of DABS: LibriSpeech (pretraining; dev-clean speakers for transfer), Speech Commands
v0.02 and AudioMNIST (transfer), each clip as a 224 x 224 log-mel image in patches of 16
(DABS ``src/datasets/speech/*.py``: INPUT_SIZE (224, 224), PATCH_SIZE (16, 16), 1 channel).

DABS's recipe, kept here: the waveform (first channel, native rate: 16 kHz, AudioMNIST 48 kHz)
is zero-padded or cut to ``MAX_LENGTH = 150526`` samples (train: a random side is cut; eval:
the start is kept), then ``librosa.feature.melspectrogram(n_mels=224, hop_length=672)``
(n_fft 2048, Hann, centered, power 2, Slaney mel), then ``power_to_db(spectrum ** 2)``
(10 log10, floor 1e-10, top 80 dB) and ``Normalize(mean, std)`` with each set's constants.
The mel filters and STFT are computed here in torch (float64; a test compares them with
librosa); DABS ran librosa < 0.10, whose centered STFT pads by reflection, as we do.

Audio files are read with ``soundfile`` (``pip install "rq-dabs[speech]"``). An unreadable
file is skipped with a warning and counted in ``self.skipped``; most failing is an error.
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from rq_dabs.data.base import SPLITS, DomainDataset
from rq_dabs.specs import Input2dSpec

__all__ = [
    "AudioMNIST",
    "GoogleSpeechCommands",
    "LibriSpeech",
    "LibriSpeechTransfer",
    "SpeechDomain",
    "dabs_log_mel",
    "mel_filters",
    "read_audio",
]

MAX_LENGTH = 150526
N_MELS = 224
HOP_LENGTH = 672  # DABS hop_length_dict[224]
N_FFT = 2048


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa ``htk=False``): linear below 1 kHz, log above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
    return np.where(
        f >= min_log_hz,
        min_log_hz / f_sp + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep,
        f / f_sp,
    )


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


@functools.lru_cache(maxsize=8)
def mel_filters(sample_rate: int, n_fft: int = N_FFT, n_mels: int = N_MELS) -> torch.Tensor:
    """``(n_mels, 1 + n_fft // 2)`` triangular filters on 0..sr/2, Slaney-normalized (the
    defaults of ``librosa.filters.mel``)."""
    fft_freqs = np.linspace(0, sample_rate / 2, 1 + n_fft // 2)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return torch.from_numpy(weights)


def dabs_log_mel(
    wave: np.ndarray,
    sample_rate: int,
    mean: float,
    std: float,
    *,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    n_mels: int = N_MELS,
) -> torch.Tensor:
    """DABS's ``(1, n_mels, frames)`` normalized log-mel image of a (padded) waveform
    (``(1, 224, 224)`` with the defaults and 150526 samples)."""
    x = torch.as_tensor(np.asarray(wave, dtype=np.float64))
    window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
    spec = torch.stft(
        x, n_fft, hop_length, window=window, center=True, pad_mode="reflect", return_complex=True
    )
    power = spec.abs() ** 2
    mel = mel_filters(int(sample_rate), n_fft, n_mels) @ power
    db = 10.0 * torch.log10(torch.clamp(mel**2, min=1e-10))  # power_to_db(spectrum ** 2)
    db = torch.maximum(db, db.max() - 80.0)
    return ((db - mean) / std).float().unsqueeze(0)


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """First channel of an audio file as float32 in [-1, 1], and its rate."""
    try:
        import soundfile
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError('reading speech needs soundfile: pip install "rq-dabs[speech]"') from err
    data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    if data.shape[0] == 0:
        raise ValueError("no samples")
    return data[:, 0], int(rate)


class SpeechDomain(DomainDataset):
    """Base of the speech sets: ``self.items`` is a list of ``(path, label)``."""

    SPECS: ClassVar[list[Input2dSpec]] = [Input2dSpec(224, 16, 1)]
    NUM_CLASSES: ClassVar[int] = 0
    MEAN: ClassVar[float] = 0.0
    STD: ClassVar[float] = 1.0
    SCRIPT_SET: ClassVar[str] = ""

    def __init__(self, root: str | Path, split: str = "train", *, seed: int = 0) -> None:
        super().__init__()
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.root, self.split, self.seed, self.skipped = Path(root), split, seed, 0
        self.items: list[tuple[str, int]] = self._items(split)
        if not self.items:
            raise FileNotFoundError(
                f"{type(self).__name__}: no audio for split {split!r} "
                f"under {self.root / 'speech'}: "
                f"run data_scripts/dabs/speech.py --only {self.SCRIPT_SET}"
            )

    def _items(self, split: str) -> list[tuple[str, int]]:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.items)

    def _fix_length(self, wave: np.ndarray, index: int) -> np.ndarray:
        if len(wave) > MAX_LENGTH:
            # DABS: a random side is cut in training; evaluation keeps the start. Seeded by
            # (seed, index) here so that runs and DataLoader workers agree.
            keep_start = (
                bool(np.random.default_rng([self.seed, index]).integers(2))
                if self.split == "train"
                else True
            )
            return wave[:MAX_LENGTH] if keep_start else wave[-MAX_LENGTH:]
        padded = np.zeros(MAX_LENGTH, dtype=np.float32)
        padded[: len(wave)] = wave
        return padded

    def __getitem__(self, index: int) -> tuple:
        for offset in range(len(self.items)):
            path, label = self.items[(index + offset) % len(self.items)]
            try:
                wave, rate = read_audio(path)
            except (OSError, ValueError, RuntimeError) as err:
                self.skipped += 1
                warnings.warn(f"skipping unreadable audio {path}: {err}", stacklevel=2)
                if self.skipped > max(10, len(self.items) // 2):
                    raise RuntimeError(
                        f"{self.skipped} unreadable audio files in {type(self).__name__}"
                    ) from err
                continue
            return (
                int(index),
                dabs_log_mel(self._fix_length(wave, index), rate, self.MEAN, self.STD),
                label,
            )
        raise RuntimeError(f"no readable audio in {type(self).__name__}")


def _librispeech_files(part_dir: Path) -> list[tuple[str, int]]:
    """``(path, speaker id)`` of ``<part>/<speaker>/<chapter>/<s>-<c>-<u>.flac``, sorted by file
    id as torchaudio's LIBRISPEECH walker (which DABS reads)."""
    files = sorted(part_dir.glob("*/*/*.flac"), key=lambda p: p.stem)
    return [(str(p), int(p.stem.split("-")[0])) for p in files]


class LibriSpeech(SpeechDomain):
    """Pretraining: train-clean-100 + train-clean-360 + train-other-500 (those present; a
    missing part is warned about); valid and test: dev-clean. Label: the speaker's index
    (DABS ``ALL_TRAIN_NUM_CLASSES = 2338``)."""

    NUM_CLASSES = 2338
    MEAN, STD = -22.924, 12.587  # DABS LIBRISPEECH_MEAN / LIBRISPEECH_STDEV
    SCRIPT_SET = "librispeech"
    TRAIN_PARTS = ("train-clean-100", "train-clean-360", "train-other-500")

    def _items(self, split: str) -> list[tuple[str, int]]:
        base = self.root / "speech" / "librispeech" / "LibriSpeech"
        parts = self.TRAIN_PARTS if split == "train" else ("dev-clean",)
        files = []
        for part in parts:
            if not (base / part).is_dir():
                warnings.warn(f"LibriSpeech {part} is missing under {base}", stacklevel=3)
                continue
            files += _librispeech_files(base / part)
        speakers = {s: i for i, s in enumerate(sorted({s for _, s in files}))}
        return [(path, speakers[s]) for path, s in files]


class LibriSpeechTransfer(SpeechDomain):
    """dev-clean's 40 speakers, 80/20 of each speaker's clips (DABS ``LibriSpeechTransfer``:
    RandomState(42), sorted file ids); our valid: the last tenth of the 80."""

    NUM_CLASSES = 40
    MEAN, STD = -22.924, 12.587
    SCRIPT_SET = "librispeech"

    def _items(self, split: str) -> list[tuple[str, int]]:
        part = self.root / "speech" / "librispeech" / "LibriSpeech" / "dev-clean"
        files = _librispeech_files(part) if part.is_dir() else []
        speaker_ids = np.array([s for _, s in files])
        speakers = sorted(set(speaker_ids.tolist()))
        rs = np.random.RandomState(42)
        chosen = []
        for label, speaker in enumerate(speakers):
            idx = np.where(speaker_ids == speaker)[0]
            rs.shuffle(idx)
            train = idx[: int(0.8 * len(idx))].tolist()
            n_valid = max(1, len(train) // 10) if len(train) > 1 else 0
            part_idx = {
                "train": train[: len(train) - n_valid],
                "valid": train[len(train) - n_valid :],
                "test": idx[int(0.8 * len(idx)) :].tolist(),
            }[split]
            chosen += [(files[i][0], label) for i in part_idx]
        return chosen


#: DABS google_speech.py GOOGLESPEECH_LABELS (35 words and the background noise: 36 classes).
GOOGLESPEECH_LABELS = (
    "eight",
    "right",
    "happy",
    "three",
    "yes",
    "up",
    "no",
    "stop",
    "on",
    "four",
    "nine",
    "zero",
    "down",
    "go",
    "six",
    "two",
    "left",
    "five",
    "off",
    "seven",
    "one",
    "cat",
    "bird",
    "marvin",
    "wow",
    "tree",
    "dog",
    "sheila",
    "bed",
    "house",
    "follow",
    "visual",
    "backward",
    "forward",
    "learn",
    "_background_noise_",
)


class GoogleSpeechCommands(SpeechDomain):
    """Speech Commands v0.02: ``<word>/<clip>.wav`` with ``validation_list.txt`` and
    ``testing_list.txt``. train: the clips in neither list (the background-noise files
    included, as DABS); valid / test: the lists. (DABS's train also holds the validation and,
    through unstripped newlines in its set difference, the test clips; we keep them apart.)"""

    NUM_CLASSES = len(GOOGLESPEECH_LABELS)
    MEAN, STD = -46.847, 19.151  # DABS GOOGLESPEECH_MEAN / GOOGLESPEECH_STDEV
    SCRIPT_SET = "google_speech"

    def _items(self, split: str) -> list[tuple[str, int]]:
        base = self.root / "speech" / "google_speech"
        if not (base / "testing_list.txt").is_file():
            return []
        lists = {
            s: {line.strip() for line in (base / f).read_text().splitlines() if line.strip()}
            for s, f in (("valid", "validation_list.txt"), ("test", "testing_list.txt"))
        }
        if split == "train":
            names = []
            for word in GOOGLESPEECH_LABELS:
                if (base / word).is_dir():
                    names += [
                        f"{word}/{n}" for n in sorted(os.listdir(base / word)) if n.endswith(".wav")
                    ]
            names = [n for n in names if n not in lists["valid"] and n not in lists["test"]]
        else:
            names = sorted(lists[split])
        index = {w: i for i, w in enumerate(GOOGLESPEECH_LABELS)}
        return [
            (str(base / n), index[n.split("/")[0].lower()])
            for n in names
            if n.split("/")[0].lower() in index
        ]


#: DABS audio_mnist.py speaker splits.
AUDIOMNIST_SPEAKERS = {
    "train": (
        28,
        56,
        7,
        19,
        35,
        1,
        6,
        16,
        23,
        34,
        46,
        53,
        36,
        57,
        9,
        24,
        37,
        2,
        8,
        17,
        29,
        39,
        48,
        54,
        43,
        58,
        14,
        25,
        38,
        3,
        10,
        20,
        30,
        40,
        49,
        55,
    ),
    "valid": (12, 47, 59, 15, 27, 41, 4, 11, 21, 31, 44, 50),
    "test": (26, 52, 60, 18, 32, 42, 5, 13, 22, 33, 45, 51),
}


class AudioMNIST(SpeechDomain):
    """AudioMNIST spoken digits, ``data/<speaker>/<digit>_<speaker>_<i>.wav`` (48 kHz), split by
    speaker as DABS (its train = our train + valid)."""

    NUM_CLASSES = 10
    MEAN, STD = -90.293, 11.799  # DABS AUDIOMNIST_MEAN / AUDIOMNIST_STDEV
    SCRIPT_SET = "audio_mnist"

    def _items(self, split: str) -> list[tuple[str, int]]:
        base = self.root / "speech" / "audio_mnist"
        data = next(
            (d for d in (base / "AudioMNIST-master" / "data", base / "data") if d.is_dir()), None
        )
        if data is None:
            return []
        items = []
        for speaker in AUDIOMNIST_SPEAKERS[split]:
            for path in sorted((data / f"{speaker:02d}").glob("*.wav")):
                items.append((str(path), int(path.stem.split("_")[0])))
        return items
