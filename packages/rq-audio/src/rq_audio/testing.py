"""Tiny synthetic audio folders for tests and examples (no corpus tools needed).

>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> meta = write_tone_folder(root, classes=2, per_split=(2, 1, 1))
>>> len(meta.read_text().splitlines())
9
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

from rq_audio.data.metadata import MetadataRow, write_metadata

__all__ = ["tone", "write_tone_folder"]


def tone(
    freq: float,
    seconds: float,
    sample_rate: int = 16000,
    *,
    rng: np.random.Generator | None = None,
    noise: float = 0.01,
) -> np.ndarray:
    """A sine at ``freq`` Hz with a little noise, float32 (N,)."""
    rng = rng or np.random.default_rng(0)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    phase = rng.uniform(0, 2 * np.pi)
    return (
        0.5 * np.sin(2 * np.pi * freq * t + phase) + noise * rng.standard_normal(len(t))
    ).astype(np.float32)


def write_tone_folder(
    root: str | Path,
    *,
    classes: int = 3,
    per_split: tuple[int, int, int] = (6, 2, 2),
    seconds: float = 1.0,
    sample_rate: int = 16000,
    seed: int = 0,
) -> Path:
    """Write ``classes`` tone classes (class k around 300 * 2**k Hz) as wav files with an EVAR
    metadata.csv (file_name,label,split) under ``root``; returns the metadata path."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(classes):
        for split, count in zip(("train", "valid", "test"), per_split):
            for i in range(count):
                freq = 300.0 * 2**k * rng.uniform(0.95, 1.05)
                name = f"class{k}/{split}_{i}.wav"
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                soundfile.write(root / name, tone(freq, seconds, sample_rate, rng=rng), sample_rate)
                rows.append(MetadataRow(name, f"class{k}", split))
    path = root / "metadata.csv"
    write_metadata(path, rows)
    return path
