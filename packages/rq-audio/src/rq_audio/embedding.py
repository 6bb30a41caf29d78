"""Embeddings of a frozen encoder for the clips of a cache (BYOL-A evaluate.py / EVAR).

Per task, as BYOL-A's evaluate.py: clips of the task's duration (deterministic crop), log-mel,
normalised with mean/std of the task's *training* clips (at most 10,000; all folds for
cross-validated tasks), then the encoder in eval mode.

>>> encoder, log_mel, _ = load_encoder("runs/rq/checkpoints/encoder.pt")  # doctest: +SKIP
>>> features = embed_cache(encoder, log_mel, "nsynth.h5", unit_sec=4.0)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from rq_core.checkpoints import load_checkpoint
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from rq_audio.audio_ntt2020 import AudioNTT2020
from rq_audio.hdf5_cache import AudioClipDataset, read_cache_index
from rq_audio.log_mel import LogMelSpectrogram
from rq_audio.normalization import PrecomputedNorm, compute_norm_stats

__all__ = ["embed_cache", "load_encoder", "random_encoder"]


def load_encoder(path: str | Path) -> tuple[AudioNTT2020, LogMelSpectrogram, tuple[float, float]]:
    """An encoder saved by :func:`rq_audio.pretraining.save_encoder`, its log-mel, its pre-norm."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"encoder checkpoint not found: {path} (run `pretrain` first)")
    payload = load_checkpoint(path)
    encoder = AudioNTT2020(payload["n_mels"], payload["feature_dim"], channels=payload["encoder_channels"])
    encoder.load_state_dict(payload["encoder"])
    log_mel = LogMelSpectrogram(n_mels=payload["n_mels"], **payload["log_mel"])
    return encoder.eval(), log_mel, tuple(payload["norm_stats"])


def random_encoder(
    n_mels: int = 64, feature_dim: int = 2048, channels: int = 64, seed: int = 0, log_mel: dict | None = None
) -> tuple[AudioNTT2020, LogMelSpectrogram]:
    """A randomly initialised encoder (the baseline every pretraining must beat): the same
    weights as the encoder of a :class:`~rq_audio.byol_a.BYOLA` of that shape built right after
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
            DataLoader(stats_set, batch_size=batch_size), log_mel, max_clips=norm_stats_clips, progress=progress
        )
    norm = PrecomputedNorm(*norm_stats)
    encoder = encoder.to(device).eval()
    log_mel = log_mel.to(device)
    dataset = AudioClipDataset(cache_path, unit_samples)
    out = []
    for wav in tqdm(DataLoader(dataset, batch_size=batch_size), desc=f"embed {Path(cache_path).stem}", disable=not progress):
        lms = norm(log_mel(wav.to(device)).unsqueeze(1))
        out.append(encoder(lms).float().cpu().numpy())
    return np.concatenate(out)
