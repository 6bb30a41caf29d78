"""Pretrain a DABS encoder on one domain with one algorithm, on rq-core's trainer."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from rq_core.runs import atomic_write
from rq_core.training import TrainerConfig, fit, resumable_loader
from torch.utils.data import Dataset

from rq_dabs.algorithms import PretrainingAlgorithm
from rq_dabs.encoder import DomainAgnosticTransformer
from rq_dabs.learner import DABSPretraining, OptimizerConfig, save_encoder

__all__ = ["ENCODER_FILE", "encoder_path", "pretrain"]

log = logging.getLogger(__name__)

ENCODER_FILE = "encoder.pt"


def encoder_path(run_dir: str | Path) -> Path:
    """Where :func:`pretrain` leaves the final encoder: ``RUN_DIR/checkpoints/encoder.pt``."""
    return Path(run_dir) / "checkpoints" / ENCODER_FILE


def pretrain(
    dataset: Dataset,
    model: DomainAgnosticTransformer,
    algorithm: PretrainingAlgorithm,
    run_dir: str | Path,
    trainer: TrainerConfig,
    *,
    batch_size: int,
    optimizer: OptimizerConfig | None = None,
    num_workers: int = 0,
    config: Any = None,
) -> Path | None:
    """Pretrain ``model`` on ``dataset`` (DABS items) and save the encoder.

    Writes ``RUN_DIR/config.yaml`` (``config``), ``RUN_DIR/checkpoints/`` (``last.ckpt`` for
    resume, ``encoder.pt``) and ``RUN_DIR/metrics.csv``. ``random`` trains nothing: the
    initialized encoder is saved as is (the scratch baseline). A run with a ``last.ckpt``
    continues from it (``trainer.resume``); whether a finished run is reused is the
    caller's decision (the app asks :class:`rq_core.runs.Stage`).

    Returns: the encoder's path, or ``None`` when training stopped before its end (a
    preempted run: run it again to resume).
    """
    run_dir = Path(run_dir)
    target = encoder_path(run_dir)
    if not algorithm.has_objective:
        from rq_core.config import save_config

        if config is not None:
            save_config(config, run_dir)
        atomic_write(run_dir / "metrics.csv", "step,pretraining_steps\n0,0\n")
        return save_encoder(model, target)
    if len(dataset) < batch_size:
        raise ValueError(
            f"the pretraining set has {len(dataset)} samples, fewer than batch_size={batch_size}"
        )
    module = DABSPretraining(model, algorithm, optimizer)
    loader = resumable_loader(dataset, batch_size, seed=trainer.seed, num_workers=num_workers)
    result = fit(module, run_dir, trainer, train_dataloaders=loader, config=config)
    if result.interrupted:
        return None
    if result.is_global_zero:
        save_encoder(module.model, target)
    return target
