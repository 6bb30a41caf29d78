"""Seeding that gives every DDP rank its own random stream (augmentations differ per rank)."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from rq_core import runs

__all__ = ["process_rank", "seed_everything_per_rank"]


def process_rank() -> int:
    """Global rank of this process, read before or after the process group exists.

    torch.distributed if initialized, else what the launcher set
    (:func:`rq_core.runs.process_rank`: ``RANK``, ``SLURM_PROCID``, ``LOCAL_RANK``).

    >>> isinstance(process_rank(), int)
    True
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return runs.process_rank()


def seed_everything_per_rank(seed: int) -> int:
    """Seed Python, NumPy and torch (all devices) with ``seed + rank``; return that seed.

    Model weights stay identical across ranks because DDP broadcasts rank 0's parameters
    when it wraps the model; everything drawn afterwards (augmentations in the training
    step, dropout, data-loader worker seeds) differs per rank, as DINO/MoCo v3 do.

    >>> seed_everything_per_rank(7)  # rank 0 in a single process
    7
    """
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    rank_seed = seed + process_rank()
    random.seed(rank_seed)
    np.random.seed(rank_seed % 2**32)
    torch.manual_seed(rank_seed)  # also seeds every CUDA device
    os.environ["PYTHONHASHSEED"] = str(rank_seed)
    return rank_seed
