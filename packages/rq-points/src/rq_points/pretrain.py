"""The fit entry of MID-Net pretraining: shapes of a cache -> :class:`MidNetPretraining` ->
``rq_core.training.fit`` (checkpoints, resume, metrics under ``run_dir``).

Optimization and loss defaults are the RQ paper's MID-Net setting (section 5.2, after
Wang et al. 2021, reference ``mid_hrnet_d6.yaml``); see :mod:`rq_points.learner`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rq_core.training import TrainerConfig, fit, last_checkpoint, resumable_loader

from rq_points.augmentations import PointAugmentation
from rq_points.data.packed import ShapeDataset, collate_shapes
from rq_points.data.shape_cache import ShapeCache
from rq_points.data.shape_sets import up_axis_warning
from rq_points.encoder import MidNetConfig
from rq_points.learner import MidNetPretraining

__all__ = ["LossConfig", "OptimConfig", "pretrain"]

log = logging.getLogger(__name__)


@dataclass
class OptimConfig:
    """SGD with a step schedule, per process."""

    lr: float = 0.03  # mid_hrnet_d6.yaml learning_rate
    momentum: float = 0.9
    weight_decay: float = 5e-4  # mid_hrnet_d6.yaml weight_decay
    lr_milestones: list[int] = field(default_factory=lambda: [200, 300])  # epochs, x0.1 each
    batch_size: int = 32  # mid_hrnet_d6.yaml batch_size (per process)
    num_workers: int = 0


@dataclass
class LossConfig:
    """MID-Net's shape and point instance-discrimination losses."""

    temperature: float = 0.1  # sigma
    bank_momentum: float = 0.5  # momentum
    weights: list[float] = field(default_factory=lambda: [1.0, 1.0])


def pretrain(
    cache: ShapeCache,
    indices: Sequence[int] | np.ndarray,
    run_dir: str | os.PathLike,
    *,
    model: MidNetConfig,
    augmentation: PointAugmentation,
    optim: OptimConfig,
    loss: LossConfig,
    trainer: TrainerConfig,
    config: Any = None,
) -> Path:
    """Pretrain MID-Net on the shapes ``indices`` of ``cache``; return ``last.ckpt``.

    The loader draws its order from a ResumableSampler (a run resumed mid-epoch continues
    the interrupted epoch); the initial weights are those of ``torch.manual_seed(seed)``,
    the same as a random-init baseline with that seed. ``config`` (the app's resolved config)
    is stored in every checkpoint and as ``run_dir/config.yaml``. Logs a warning when the
    shapes look z-up while the rotation turns about y (:func:`up_axis_warning`).
    """
    warning = up_axis_warning(cache, augmentation.up_axis) if augmentation.rotate else None
    if warning:
        log.warning(warning)
    dataset = ShapeDataset(cache, np.asarray(indices))
    if len(dataset) < optim.batch_size:
        raise ValueError(f"{len(dataset)} pretraining shapes < batch size {optim.batch_size}")
    loader = resumable_loader(
        dataset,
        optim.batch_size,
        seed=trainer.seed,
        num_workers=optim.num_workers,
        collate_fn=collate_shapes,
    )
    torch.manual_seed(trainer.seed)
    module = MidNetPretraining(
        model,
        len(dataset),
        num_clusters=cache.num_clusters,
        augmentation=augmentation,
        lr=optim.lr,
        momentum=optim.momentum,
        weight_decay=optim.weight_decay,
        lr_milestones=list(optim.lr_milestones),
        temperature=loss.temperature,
        bank_momentum=loss.bank_momentum,
        loss_weights=list(loss.weights),
        seed=trainer.seed,
    )
    fit(module, run_dir, trainer, train_dataloaders=loader, config=config)
    return last_checkpoint(run_dir)
