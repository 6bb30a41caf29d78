"""Small offline domains for the demo and tests, built once into the cache.

- ``digits_images``: scikit-learn's bundled handwritten digits (real, 1,797 8x8 images,
  10 classes), natural-images stand-in at 8 px with 2x2 patches (16 tokens).
- ``basic_motions_sensor``: BasicMotions from the UEA archive (real smartwatch 3-D
  accelerometer + 3-D gyroscope at 10 Hz, 4 activities, 80 recordings of 10 s), read from
  the assets folder (:mod:`rq_dabs.data.assets`: the files of the pinned ``aeon`` wheel, put
  there once by ``rq-dabs fetch-assets``; aeon is not installed or imported). Windows of
  50 steps (stride 10) in segments of 5 -- the PAMAP2 layout of DABS, smaller.
- ``spoken_digits_speech``: the digits "zero" .. "nine" spoken by libespeak-ng (the
  ``espeakng-loader`` wheel) in 40 voices -- accents, voice variants, rates and pitches --
  split by voice; 1 s at 22,050 Hz as a 32 x 32 log-mel image (DABS's recipe, smaller) in
  patches of 8 (16 tokens). Synthetic speech, a stand-in for AudioMNIST / Speech Commands.
- ``synthetic_markov_text``: synthetic, and named so: token sequences from 4 random Markov
  chains over 64 tokens; the class is the chain. Text-like ids for the token embedding.

The cache is ``$RQ_CACHE/dabs`` (default ``~/.cache/rq/dabs``); the same seed makes the
same files. Building never uses the network.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rq_core import runs
from rq_core.espeak import ENGLISH_ACCENTS, VOICE_VARIANTS

from rq_dabs.data.assets import asset_path
from rq_dabs.data.base import ArraysDataset
from rq_dabs.data.ts_format import parse_ts
from rq_dabs.specs import Input1dSpec, Input2dSpec, InputTokensSpec

__all__ = [
    "EMBEDDED_DOMAINS",
    "BasicMotionsSensor",
    "SpokenDigitsSpeech",
    "DigitsImages",
    "SyntheticMarkovText",
    "build_embedded_domain",
    "cache_root",
    "stratified_split",
]

BASIC_MOTIONS_ASSETS = ("basic_motions/BasicMotions_TRAIN.ts", "basic_motions/BasicMotions_TEST.ts")


def cache_root() -> Path:
    """``$RQ_CACHE/dabs``, default ``~/.cache/rq/dabs`` (:func:`rq_core.runs.cache_root`)."""
    return runs.cache_root("dabs")


def stratified_split(
    labels: np.ndarray, fractions: tuple[float, float], seed: int
) -> dict[str, np.ndarray]:
    """Indices of train/valid/test with ``fractions`` = (valid, test) of every class."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "valid": [], "test": []}
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_valid = round(len(idx) * fractions[0])
        n_test = round(len(idx) * fractions[1])
        parts["valid"].append(idx[:n_valid])
        parts["test"].append(idx[n_valid : n_valid + n_test])
        parts["train"].append(idx[n_valid + n_test :])
    return {k: np.sort(np.concatenate(v)) for k, v in parts.items()}


def _save(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    # A temporary name of this process's own: DDP ranks may build the same file at once
    # (same seed, same content); the rename is atomic, so readers never see a half file.
    with runs.atomic_output(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)
    return path


class DigitsImages(ArraysDataset):
    """scikit-learn digits as 1-channel 8x8 images in [0, 1], patches of 2 (16 tokens)."""

    SPECS = [Input2dSpec(8, 2, 1)]
    NUM_CLASSES = 10
    FILE_NAME = "digits_images.npz"

    @classmethod
    def build(cls, root: Path, seed: int = 0) -> Path:
        from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

        digits = load_digits()
        images = (digits.images / 16.0).astype(np.float32)[:, None]  # (N, 1, 8, 8)
        labels = digits.target.astype(np.int64)
        split = stratified_split(labels, (0.15, 0.25), seed)
        arrays = {}
        for name, idx in split.items():
            arrays[f"x0_{name}"] = images[idx]
            arrays[f"y_{name}"] = labels[idx]
        return _save(Path(root) / cls.FILE_NAME, arrays)


def _windows(series: np.ndarray, length: int, stride: int) -> np.ndarray:
    """``(N, T, C)`` -> ``(N * W, length, C)``, W windows per series, in series order."""
    starts = range(0, series.shape[1] - length + 1, stride)
    return np.stack([series[:, s : s + length] for s in starts], axis=1).reshape(
        -1, length, series.shape[2]
    )


class BasicMotionsSensor(ArraysDataset):
    """BasicMotions windows ``(50, 6)`` time-major, standardized per channel with train stats.

    Splits by recording (no window of a test recording is in train): the archive's 40 train
    recordings minus 2 per class for validation, and its 40 test recordings.
    """

    WINDOW, STRIDE = 50, 10
    SPECS = [Input1dSpec(50, 5, 6)]
    NUM_CLASSES = 4
    FILE_NAME = "basic_motions_sensor.npz"

    @classmethod
    def build(cls, root: Path, seed: int = 0, ts_texts: tuple[str, str] | None = None) -> Path:
        if ts_texts is None:  # the pinned files in the assets folder (no network)
            train, test = (asset_path(a).read_text(encoding="utf-8") for a in BASIC_MOTIONS_ASSETS)
            ts_texts = (train, test)
        X_train, y_train, names = parse_ts(ts_texts[0])
        X_test, y_test, names_test = parse_ts(ts_texts[1])
        if names != names_test:
            raise ValueError(f"train and test class names differ: {names} vs {names_test}")
        if X_train.shape[1] < cls.WINDOW or X_train.shape[2] != 6:
            raise ValueError(
                f"expected series of >= {cls.WINDOW} steps x 6 channels, got {X_train.shape[1:]}"
            )
        rng = np.random.default_rng(seed)
        valid_idx = np.concatenate(
            [rng.permutation(np.flatnonzero(y_train == c))[:2] for c in np.unique(y_train)]
        )
        is_valid = np.isin(np.arange(len(y_train)), valid_idx)
        recordings = {
            "train": (X_train[~is_valid], y_train[~is_valid]),
            "valid": (X_train[is_valid], y_train[is_valid]),
            "test": (X_test, y_test),
        }
        mean = recordings["train"][0].mean(axis=(0, 1))
        std = recordings["train"][0].std(axis=(0, 1)) + 1e-6
        arrays = {}
        per_series = (X_train.shape[1] - cls.WINDOW) // cls.STRIDE + 1
        for name, (X, y) in recordings.items():
            arrays[f"x0_{name}"] = ((_windows(X, cls.WINDOW, cls.STRIDE) - mean) / std).astype(
                np.float32
            )
            arrays[f"y_{name}"] = np.repeat(y, per_series)
        return _save(Path(root) / cls.FILE_NAME, arrays)


class SyntheticMarkovText(ArraysDataset):
    """Synthetic token ids: 4 classes, each a random first-order Markov chain over 64 tokens
    (rows ~ Dirichlet(0.3)), sequences of 32. Not real text; it exercises the token path."""

    VOCAB, LENGTH, CLASSES, PER_CLASS = 64, 32, 4, 300
    SPECS = [InputTokensSpec(32, 64)]
    NUM_CLASSES = 4
    FILE_NAME = "synthetic_markov_text.npz"

    @classmethod
    def build(cls, root: Path, seed: int = 0) -> Path:
        rng = np.random.default_rng(seed)
        chains = rng.dirichlet(np.full(cls.VOCAB, 0.3), size=(cls.CLASSES, cls.VOCAB))
        seqs, labels = [], []
        for c in range(cls.CLASSES):
            cumulative = chains[c].cumsum(axis=1)
            for _ in range(cls.PER_CLASS):
                seq = np.empty(cls.LENGTH, dtype=np.int64)
                seq[0] = rng.integers(cls.VOCAB)
                for t in range(1, cls.LENGTH):
                    seq[t] = min(
                        np.searchsorted(cumulative[seq[t - 1]], rng.random()), cls.VOCAB - 1
                    )
                seqs.append(seq)
                labels.append(c)
        X, y = np.stack(seqs), np.array(labels, dtype=np.int64)
        split = stratified_split(y, (0.15, 0.25), seed)
        arrays = {}
        for name, idx in split.items():
            arrays[f"x0_{name}"] = X[idx]
            arrays[f"y_{name}"] = y[idx]
        return _save(Path(root) / cls.FILE_NAME, arrays)


class SpokenDigitsSpeech(ArraysDataset):
    """Ten spoken digits by 40 espeak-ng voices; train / valid / test = 28 / 4 / 8 voices.

    Each clip is cut or zero-padded to 1 s, turned into DABS's log-mel (``power_to_db`` of
    the squared mel power, top 80 dB) with n_fft 1024, hop 690, 32 mels (32 frames: 1 s), and
    standardized with the train split's mean and std.
    """

    WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    ACCENTS = ENGLISH_ACCENTS
    VARIANTS = VOICE_VARIANTS[:12]  # the male and female variants, not the klatt ones
    VOICES, SPLIT_VOICES = 40, {"train": 28, "valid": 4, "test": 8}
    SPECS = [Input2dSpec(32, 8, 1)]
    NUM_CLASSES = 10
    FILE_NAME = "spoken_digits_speech.npz"

    @classmethod
    def voices(cls, seed: int = 0) -> list[tuple[str, int, int]]:
        """``(voice, words per minute, pitch)`` of each of the 40 speakers."""
        rng = np.random.default_rng(seed)
        out: list[tuple[str, int, int]] = []
        while len(out) < cls.VOICES:
            voice = (
                f"{cls.ACCENTS[rng.integers(len(cls.ACCENTS))]}+"
                f"{cls.VARIANTS[rng.integers(len(cls.VARIANTS))]}"
            )
            speaker = (voice, int(rng.integers(130, 221)), int(rng.integers(20, 81)))
            if all(v != voice for v, _, _ in out):
                out.append(speaker)
        return out

    @classmethod
    def build(cls, root: Path, seed: int = 0) -> Path:
        from rq_core.espeak import Espeak

        from rq_dabs.data.speech import dabs_log_mel

        synth = Espeak()
        rate = synth.sample_rate
        images, labels, voice_ids = [], [], []
        for v, (voice, wpm, pitch) in enumerate(cls.voices(seed)):
            for label, word in enumerate(cls.WORDS):
                wave = synth.say(word, voice, wpm, pitch)[:rate]
                padded = np.zeros(rate, dtype=np.float32)
                padded[: len(wave)] = wave
                image = dabs_log_mel(
                    padded, rate, 0.0, 1.0, n_fft=1024, hop_length=-(-rate // 32), n_mels=32
                )
                images.append(image.numpy())
                labels.append(label)
                voice_ids.append(v)
        X, y, voice_of = np.stack(images), np.array(labels, dtype=np.int64), np.array(voice_ids)
        order = np.random.default_rng(seed).permutation(cls.VOICES)
        n_train, n_valid = cls.SPLIT_VOICES["train"], cls.SPLIT_VOICES["valid"]
        groups = {
            "train": order[:n_train],
            "valid": order[n_train : n_train + n_valid],
            "test": order[n_train + n_valid :],
        }
        train = np.isin(voice_of, groups["train"])
        mean, std = float(X[train].mean()), float(X[train].std())
        arrays = {}
        for name, voices in groups.items():
            idx = np.flatnonzero(np.isin(voice_of, voices))
            arrays[f"x0_{name}"] = ((X[idx] - mean) / std).astype(np.float32)
            arrays[f"y_{name}"] = y[idx]
        return _save(Path(root) / cls.FILE_NAME, arrays)


EMBEDDED_DOMAINS: dict[str, type[ArraysDataset]] = {
    "digits_images": DigitsImages,
    "basic_motions_sensor": BasicMotionsSensor,
    "spoken_digits_speech": SpokenDigitsSpeech,
    "synthetic_markov_text": SyntheticMarkovText,
}


def build_embedded_domain(name: str, root: Path | None = None, *, rebuild: bool = False) -> Path:
    """Build (or reuse) embedded domain ``name`` under ``root``; returns its file.

    Never uses the network. A domain whose source is missing raises, never a silent skip:
    :class:`~rq_dabs.data.assets.MissingAssetError` for an asset (it names the file and
    ``rq-dabs fetch-assets``), ImportError for a missing package (espeakng-loader)."""
    if name not in EMBEDDED_DOMAINS:
        raise ValueError(
            f"unknown embedded domain {name!r}; choose from {sorted(EMBEDDED_DOMAINS)}"
        )
    cls = EMBEDDED_DOMAINS[name]
    root = Path(root) if root is not None else cache_root()
    path = root / cls.FILE_NAME
    if path.is_file() and not rebuild:
        return path
    return cls.build(root)
