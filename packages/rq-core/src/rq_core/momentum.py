"""Momentum (EMA) teachers: update rule, cosine schedule, and freezing of the copy."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["cosine_momentum", "deactivate_requires_grad", "update_momentum"]


@torch.no_grad()
def update_momentum(model: nn.Module, model_ema: nn.Module, m: float) -> None:
    """EMA step ``ema <- m * ema + (1 - m) * model`` on every parameter, in place.

    Buffers (BatchNorm running statistics) are copied from ``model`` as they are (BYOL's
    target network keeps its own BN statistics in eval; copying keeps both in sync so the
    target never uses stale statistics). ``m = 1`` leaves the parameters unchanged;
    ``m = 0`` copies them.

    >>> a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    >>> update_momentum(a, b, m=0.0)
    >>> bool(torch.equal(a.weight, b.weight))
    True
    """
    if not 0.0 <= m <= 1.0:
        raise ValueError(f"momentum m must be in [0, 1], got {m}")
    params = list(model.parameters())
    params_ema = list(model_ema.parameters())
    if len(params) != len(params_ema):
        raise ValueError(
            f"model has {len(params)} parameters but model_ema has {len(params_ema)}: "
            "model_ema must be a copy of model"
        )
    for p, p_ema in zip(params, params_ema):
        if p.shape != p_ema.shape:
            raise ValueError(f"parameter shapes differ: {tuple(p.shape)} vs {tuple(p_ema.shape)}")
        p_ema.mul_(m).add_(p.detach(), alpha=1.0 - m)
    for b, b_ema in zip(model.buffers(), model_ema.buffers()):
        b_ema.copy_(b)


def cosine_momentum(step: int, max_steps: int, base: float = 0.99, end: float = 1.0) -> float:
    """BYOL's schedule (Grill et al., 2020, Sec. 3.2):
    ``end - (end - base) * (cos(pi k / K) + 1) / 2``.

    Goes from ``base`` at ``step = 0`` to ``end`` at ``step = max_steps`` (BYOL: base 0.996,
    end 1). Steps past ``max_steps`` return ``end``.

    >>> cosine_momentum(0, 100), cosine_momentum(100, 100)
    (0.99, 1.0)
    """
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    progress = min(step, max_steps) / max_steps
    return end - (end - base) * (math.cos(math.pi * progress) + 1.0) / 2.0


def deactivate_requires_grad(model: nn.Module) -> nn.Module:
    """Freeze every parameter (the momentum copy is updated by EMA, never by gradients).

    >>> m = deactivate_requires_grad(nn.Linear(2, 2))
    >>> any(p.requires_grad for p in m.parameters())
    False
    """
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model
