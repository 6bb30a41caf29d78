"""PAMAP2 (physical activity monitoring) as DABS reads it (``src/datasets/sensor/pamap2.py``):
windows of 320 time steps x 52 channels (heart rate + 3 IMUs x 17 columns), 12 activities,
subjects 101-104 and 107-109 train, 105 validation, 106 test; NaNs interpolated over time."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from rq_dabs.data.base import SPLITS
from rq_dabs.specs import Input1dSpec

__all__ = ["PAMAP2", "read_subject"]

# DABS pamap2.py ACTIVITY_LABELS: 11 protocol activities (optional ones excluded); the label
# is the index in this list. DABS still declares NUM_CLASSES = 12, kept for its head size.
ACTIVITY_IDS = (1, 2, 3, 4, 5, 6, 7, 12, 13, 16, 24)
NUM_CLASSES = 12
SUBJECTS = {"train": (1, 2, 3, 4, 7, 8, 9), "valid": (5,), "test": (6,)}


def _interpolate(column: np.ndarray) -> np.ndarray:
    good = np.isfinite(column)
    if good.all() or not good.any():
        return np.nan_to_num(column)
    idx = np.arange(len(column))
    return np.interp(idx, idx[good], column[good])


def read_subject(path: Path) -> np.ndarray:
    """One ``subject10X.dat``: (T, 54) float32 with NaNs interpolated along time."""
    data = np.loadtxt(path, dtype=np.float64)
    if data.ndim != 2 or data.shape[1] != 54:
        raise ValueError(f"{path}: expected 54 columns, got shape {data.shape}")
    for c in range(2, data.shape[1]):
        data[:, c] = _interpolate(data[:, c])
    return data.astype(np.float32)


class PAMAP2(Dataset):
    """Windows ``(320, 52)`` time-major with the activity index (0..11) as label.

    Train draws a random window of a random activity of a random subject per item, as DABS
    does (``TRAIN_EXAMPLES_PER_EPOCH = 50000``); valid and test use fixed, non-overlapping
    windows so that scores are repeatable. An unreadable subject file is skipped with a warning.
    """

    LENGTH = 320  # MEASUREMENTS_PER_EXAMPLE
    SPECS = [Input1dSpec(320, 5, 52)]  # SEGMENT_SIZE 5, IN_CHANNELS 52
    TRAIN_EXAMPLES_PER_EPOCH = 50_000

    def __init__(self, root: str | Path, split: str = "train", *, seed: int = 0) -> None:
        super().__init__()
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        folder = Path(root) / "sensor" / "pamap2" / "PAMAP2_Dataset" / "Protocol"
        self.split, self.skipped = split, 0
        self.segments: list[tuple[np.ndarray, int]] = []  # (rows of one activity, label)
        for subject in SUBJECTS[split]:
            path = folder / f"subject10{subject}.dat"
            try:
                data = read_subject(path)
            except (OSError, ValueError) as err:
                self.skipped += 1
                warnings.warn(f"skipping PAMAP2 subject file {path}: {err}", stacklevel=2)
                continue
            for label, activity in enumerate(ACTIVITY_IDS):
                rows = data[data[:, 1] == activity, 2:]
                if len(rows) > self.LENGTH:
                    self.segments.append((rows, label))
        if not self.segments:
            raise FileNotFoundError(
                f"no usable PAMAP2 subject files under {folder}: run data_scripts/dabs/sensor.py"
            )
        self.fixed = [
            (i, start)
            for i, (rows, _) in enumerate(self.segments)
            for start in range(0, len(rows) - self.LENGTH + 1, self.LENGTH)
        ]
        self.seed = seed

    def __len__(self) -> int:
        return self.TRAIN_EXAMPLES_PER_EPOCH if self.split == "train" else len(self.fixed)

    def __getitem__(self, index: int) -> tuple:
        if self.split == "train":
            # Seeded by (seed, index): the same in every DataLoader worker and every run.
            rng = np.random.default_rng([self.seed, index])
            rows, label = self.segments[rng.integers(len(self.segments))]
            start = int(rng.integers(len(rows) - self.LENGTH))
        else:
            seg, start = self.fixed[index]
            rows, label = self.segments[seg]
        return (int(index), torch.from_numpy(rows[start : start + self.LENGTH].copy()), label)

    @staticmethod
    def spec() -> list[Input1dSpec]:
        return list(PAMAP2.SPECS)

    @staticmethod
    def num_classes() -> int:
        return NUM_CLASSES

    @staticmethod
    def multilabel() -> bool:
        return False
