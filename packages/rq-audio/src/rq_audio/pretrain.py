"""Pretrain BYOL-A on an HDF5 cache of clips with rq-core's trainer.

Writes, under ``run_dir``: ``config.yaml``, ``checkpoints/last.ckpt`` (full state, resumable),
``metrics.csv``, and after the last step ``checkpoints/encoder.pt``: the online encoder's
weights with everything needed to embed audio (norm stats, log-mel and encoder settings).

>>> pretrain(BYOLA(), "cache.h5", "runs/rq", TrainerConfig(max_epochs=100))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from rq_core.checkpoints import save_checkpoint
from rq_core.training import TrainerConfig, fit, resolve_resume, resumable_loader
from torch.utils.data import DataLoader

from rq_audio.data.hdf5_cache import AudioClipDataset
from rq_audio.learner import BYOLA
from rq_audio.normalization import compute_norm_stats

__all__ = ["ENCODER_FILE", "pretrain", "save_encoder"]

log = logging.getLogger(__name__)

ENCODER_FILE = "encoder.pt"


def save_encoder(module: BYOLA, path: str | Path) -> Path:
    """Save the online encoder + its input settings (what ``embed``/``evaluate`` load) through
    rq-core's one writer of weights files (atomic, plain weights only)."""
    hp = dict(module.hparams)
    payload = {
        "encoder": module.encoder_state_dict(),
        "norm_stats": [float(module.pre_norm.mean), float(module.pre_norm.std)],
        "n_mels": hp["n_mels"],
        "feature_dim": hp["feature_dim"],
        "encoder_channels": hp.get("encoder_channels", 64),
        "log_mel": dict(hp.get("log_mel", {})),
    }
    return save_checkpoint(path, payload)


def pretrain(
    module: BYOLA,
    cache_path: str | Path,
    run_dir: str | Path,
    trainer_cfg: TrainerConfig | dict,
    *,
    unit_sec: float = 0.95,
    sample_rate: int = 16000,
    batch_size: int = 256,
    num_workers: int = 4,
    norm_stats_clips: int = 10000,
    config: Any = None,
    progress: bool = True,
) -> Path | None:
    """Compute pre-norm statistics (unless resuming), train, save ``checkpoints/encoder.pt``.

    Args:
        unit_sec: training clip length (0.95 s, byol-a config.yaml).
        batch_size: per process (256 in BYOL-A on one GPU).
        norm_stats_clips: clips for the pre-norm mean/std (BYOL-A: 10,000 or all).

    Returns: the path of the encoder file where this process wrote it (rank 0, training not
    interrupted), else ``None``.
    """
    run_dir = Path(run_dir)
    unit_samples = int(round(unit_sec * sample_rate))
    train_set = AudioClipDataset(cache_path, unit_samples, random_crop=True)
    if len(train_set) < batch_size:
        raise ValueError(
            f"{cache_path} holds {len(train_set)} clips, fewer than one batch of {batch_size}"
        )
    tcfg = (
        trainer_cfg
        if isinstance(trainer_cfg, TrainerConfig)
        else TrainerConfig(**dict(trainer_cfg))
    )
    if resolve_resume(tcfg.resume, run_dir, check=False) is None:  # not resuming (fit checks)
        # Deterministic crops and the same clips on every rank: every rank gets the same stats.
        stats_set = AudioClipDataset(cache_path, unit_samples, random_crop=False)
        loader = DataLoader(stats_set, batch_size=min(256, batch_size), shuffle=False)
        mean, std = compute_norm_stats(
            loader, module.to_log_mel, max_clips=norm_stats_clips, progress=progress
        )
        module.set_norm_stats(mean, std)
        log.info("pre-norm statistics: mean %.4f std %.4f", mean, std)
    # sample_seeds: each clip's random crop is seeded by (seed, epoch, clip), so a resumed
    # run crops as the uninterrupted one did, whichever worker loads the clip.
    loader = resumable_loader(
        train_set,
        batch_size,
        seed=tcfg.seed,
        num_workers=num_workers,
        sample_seeds=True,
        pin_memory=torch.cuda.is_available(),
    )
    trainer = fit(module, run_dir, tcfg, train_dataloaders=loader, config=config)
    if trainer.is_global_zero and not trainer.interrupted:
        return save_encoder(module, run_dir / "checkpoints" / ENCODER_FILE)
    return None
