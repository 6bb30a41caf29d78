"""The downstream protocol: features of a frozen encoder, then EVAR's linear probe.

Features, per task, as BYOL-A's evaluate.py: clips of the task's duration (deterministic
crop), log-mel, normalised with mean/std of the task's *training* clips (at most 10,000; all
folds for cross-validated tasks), then the encoder in eval mode.

Each task is a cache made from an EVAR metadata.csv: with ``split`` (train/valid/test) the
probe trains on train, early-stops on valid and scores test; with ``fold`` it runs
leave-one-fold-out (UrbanSound8K's 10 folds). Accuracy is the mean over the probe seeds.

>>> encoder, log_mel, _ = load_encoder("runs/rq/checkpoints/encoder.pt")  # doctest: +SKIP
>>> features = embed_cache(encoder, log_mel, "nsynth.h5", unit_sec=4.0)  # doctest: +SKIP
>>> r = evaluate_task(encoder, log_mel, "nsynth.h5", unit_sec=4.0)  # doctest: +SKIP
>>> r["accuracy_mean"], r["accuracy_std"]  # doctest: +SKIP
(0.71, 0.004)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from rq_core.checkpoints import load_checkpoint
from rq_core.features import extract_features
from rq_core.linear_probe import ProbeSettings, linear_probe, linear_probe_folds
from torch import nn
from torch.utils.data import DataLoader

from rq_audio.data.hdf5_cache import AudioClipDataset, read_cache_index
from rq_audio.encoder import AudioNTT2020
from rq_audio.log_mel import LogMelSpectrogram
from rq_audio.normalization import PrecomputedNorm, compute_norm_stats

__all__ = ["embed_cache", "evaluate_task", "load_encoder", "random_encoder"]


def load_encoder(path: str | Path) -> tuple[AudioNTT2020, LogMelSpectrogram, tuple[float, float]]:
    """An encoder saved by :func:`rq_audio.pretrain.save_encoder`, its log-mel, its pre-norm."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"encoder checkpoint not found: {path} (run `pretrain` first)")
    payload = load_checkpoint(path)
    encoder = AudioNTT2020(
        payload["n_mels"], payload["feature_dim"], channels=payload["encoder_channels"]
    )
    encoder.load_state_dict(payload["encoder"])
    log_mel = LogMelSpectrogram(n_mels=payload["n_mels"], **payload["log_mel"])
    return encoder.eval(), log_mel, tuple(payload["norm_stats"])


def random_encoder(
    n_mels: int = 64,
    feature_dim: int = 2048,
    channels: int = 64,
    seed: int = 0,
    log_mel: dict | None = None,
) -> tuple[AudioNTT2020, LogMelSpectrogram]:
    """A randomly initialised encoder (the baseline every pretraining must beat): the same
    weights as the encoder of a :class:`~rq_audio.learner.BYOLA` of that shape built right after
    ``torch.manual_seed(seed)``, i.e. the start of a pretraining seeded with ``seed``."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        encoder = AudioNTT2020(n_mels, feature_dim, channels=channels)
    return encoder.eval(), LogMelSpectrogram(n_mels=n_mels, **(log_mel or {}))


@torch.no_grad()
def embed_cache(
    encoder: nn.Module,
    log_mel: LogMelSpectrogram,
    cache_path: str | Path,
    *,
    unit_sec: float,
    sample_rate: int = 16000,
    batch_size: int = 64,
    norm_stats: tuple[float, float] | None = None,
    norm_stats_clips: int = 10000,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> np.ndarray:
    """Features (N, d) float32 of every clip in the cache, in cache order.

    ``norm_stats=None`` computes them from the cache's train split (or all clips when the
    cache has folds or no splits), as BYOL-A's evaluate.py ``calc_norm_stats``.
    """
    index = read_cache_index(cache_path)
    unit_samples = int(round(unit_sec * sample_rate))
    if norm_stats is None:
        train_rows = [i for i, s in enumerate(index.splits) if s == "train"] or None
        stats_set = AudioClipDataset(cache_path, unit_samples, indices=train_rows)
        norm_stats = compute_norm_stats(
            DataLoader(stats_set, batch_size=batch_size),
            log_mel,
            max_clips=norm_stats_clips,
            progress=progress,
        )
    norm = PrecomputedNorm(*norm_stats)
    encoder = encoder.to(device)
    log_mel = log_mel.to(device)

    def encode(wav: torch.Tensor) -> torch.Tensor:
        return encoder(norm(log_mel(wav.to(device)).unsqueeze(1)))

    loader = DataLoader(AudioClipDataset(cache_path, unit_samples), batch_size=batch_size)
    features = extract_features(
        encode, loader, modules=encoder, progress=progress, desc=f"embed {Path(cache_path).stem}"
    )
    return features.astype(np.float32, copy=False)


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
    return_predictions: bool = False,
) -> dict[str, Any]:
    """Embed the task's clips and probe them; returns rq-core's probe summary (with
    ``return_predictions``, each seed's per-item test outputs under ``"predictions"``, a
    :class:`rq_core.linear_probe.ProbePredictions`: ``.statistic()`` gives the accuracy's
    bootstrap statistic, test items in cache order)."""
    index = read_cache_index(cache_path)
    labels = np.asarray(index.labels)
    if (labels == "").any():
        raise ValueError(
            f"{cache_path}: some clips have no label (was it prepared with a metadata.csv?)"
        )
    features = embed_cache(
        encoder,
        log_mel,
        cache_path,
        unit_sec=unit_sec,
        batch_size=batch_size,
        device=device,
        progress=progress,
    )
    if (index.folds >= 0).all() and not any(index.splits):
        return linear_probe_folds(
            features,
            labels,
            index.folds,
            seeds=seeds,
            settings=settings,
            device=device,
            return_predictions=return_predictions,
        )
    splits = np.asarray(index.splits)
    parts = {}
    for name in ("train", "valid", "test"):
        mask = splits == name
        if not mask.any():
            raise ValueError(f"{cache_path}: no clips in split {name!r}")
        parts[name] = (features[mask], labels[mask])
    return linear_probe(
        parts["train"],
        parts["valid"],
        parts["test"],
        seeds=seeds,
        settings=settings,
        device=device,
        return_predictions=return_predictions,
    )
