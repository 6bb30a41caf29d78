"""Linear evaluation of an encoder on downstream tasks: rq-core's EVAR-protocol probe.

Each task is a cache made from an EVAR metadata.csv: with ``split`` (train/valid/test) the
probe trains on train, early-stops on valid and scores test; with ``fold`` it runs
leave-one-fold-out (UrbanSound8K's 10 folds). Accuracy is the mean over the probe seeds.

>>> rows = {"rq": {"nsynth": 0.7, "spcv2": 0.9}, "random": {"nsynth": 0.5, "spcv2": 0.4}}
>>> print(results_markdown(rows))
| method | nsynth | spcv2 | average |
|---|---|---|---|
| rq | 70.0 | 90.0 | 80.0 |
| random | 50.0 | 40.0 | 45.0 |
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rq_core.linear_probe import ProbeSettings, linear_probe, linear_probe_folds
from torch import nn

from rq_audio.embedding import embed_cache
from rq_audio.hdf5_cache import read_cache_index
from rq_audio.log_mel import LogMelSpectrogram

__all__ = ["evaluate_task", "results_markdown"]


def evaluate_task(
    encoder: nn.Module,
    log_mel: LogMelSpectrogram,
    cache_path: str | Path,
    *,
    unit_sec: float,
    seeds: tuple[int, ...] = (42, 43, 44),
    settings: ProbeSettings | None = None,
    batch_size: int = 64,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Embed the task's clips and probe them; returns rq-core's probe summary."""
    index = read_cache_index(cache_path)
    labels = np.asarray(index.labels)
    if (labels == "").any():
        raise ValueError(f"{cache_path}: some clips have no label (was it prepared with a metadata.csv?)")
    features = embed_cache(
        encoder, log_mel, cache_path, unit_sec=unit_sec, batch_size=batch_size, device=device, progress=progress
    )
    if (index.folds >= 0).all() and not any(index.splits):
        return linear_probe_folds(features, labels, index.folds, seeds=seeds, settings=settings, device=device)
    splits = np.asarray(index.splits)
    parts = {}
    for name in ("train", "valid", "test"):
        mask = splits == name
        if not mask.any():
            raise ValueError(f"{cache_path}: no clips in split {name!r}")
        parts[name] = (features[mask], labels[mask])
    return linear_probe(parts["train"], parts["valid"], parts["test"], seeds=seeds, settings=settings, device=device)


def results_markdown(accuracy: dict[str, dict[str, float]]) -> str:
    """A table of accuracies (fractions) in percent, one row per method, plus the average."""
    tasks = list(next(iter(accuracy.values())))
    lines = ["| method | " + " | ".join(tasks) + " | average |", "|---" * (len(tasks) + 2) + "|"]
    for method, row in accuracy.items():
        values = [100.0 * row[t] for t in tasks]
        cells = [f"{v:.1f}" for v in values] + [f"{float(np.mean(values)):.1f}"]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
