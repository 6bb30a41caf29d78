"""BYOL-A v2's RandomLinearFader: add a random straight line over time to the log-mel.

Per sample, the gain at the first and last frame are drawn from ``gain * U(-1, 1)``
(v2/byol_a2/augmentations.py, gain 1.0) and linearly interpolated in between: a fade in or
out in dB-like log units.

>>> import torch
>>> x = torch.zeros(2, 1, 64, 96)
>>> y = RandomLinearFader()(x)
>>> bool((y[:, :, 0] == y[:, :, 63]).all())   # same slope on every mel bin
True
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["RandomLinearFader"]


class RandomLinearFader(nn.Module):
    """Add ``head + (tail - head) * t / (T - 1)`` to every mel bin of (B, C, F, T)."""

    def __init__(self, gain: float = 1.0) -> None:
        super().__init__()
        if gain < 0:
            raise ValueError(f"gain must be >= 0, got {gain}")
        self.gain = float(gain)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if x.ndim != 4:
            raise ValueError(f"expected (B, C, F, T), got shape {tuple(x.shape)}")
        B, T = x.shape[0], x.shape[-1]
        ends = self.gain * (
            2 * torch.rand(B, 2, device=x.device, dtype=x.dtype, generator=generator) - 1
        )
        t = torch.linspace(0, 1, T, device=x.device, dtype=x.dtype)
        slope = ends[:, :1] + (ends[:, 1:] - ends[:, :1]) * t  # (B, T)
        return x + slope[:, None, None, :]

    def extra_repr(self) -> str:
        return f"gain={self.gain}"
