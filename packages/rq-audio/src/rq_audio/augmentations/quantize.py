"""Randomized quantization of log-mel spectrograms (Wu et al., ICCV 2023, audio: 5 bins).

Channel modes on (B, 1, F, T):
- ``"sample"``: the whole spectrogram of a sample is one channel -- one quantizer per clip,
  what the authors' reference module does on BYOL-A's (B, 1, F, T) input (channel_dim=1).
- ``"frequency"``: every mel bin is its own channel with its own range and bins
  (channel_dim=2).

>>> import torch
>>> q = RandomQuantizeAudio(num_bins=5)
>>> y = q(torch.randn(2, 1, 64, 96))
>>> y[0].unique().numel() <= 5
True
"""

from __future__ import annotations

from typing import Literal

import torch
from rq_core import RandomizedQuantization
from torch import Tensor, nn

__all__ = ["RandomQuantizeAudio"]

ChannelMode = Literal["sample", "frequency"]
_CHANNEL_DIM = {"sample": 1, "frequency": 2}


class RandomQuantizeAudio(nn.Module):
    """RQ on (B, C, F, T) log-mel with a channel mode; see the module docstring.

    Args:
        num_bins: bins per channel (the paper uses 5 for audio).
        channel_mode: "sample" or "frequency".
        p, collapse, spacing: as :func:`rq_core.randomized_quantize`.
    """

    def __init__(
        self,
        num_bins: int = 5,
        channel_mode: ChannelMode = "sample",
        p: float = 1.0,
        collapse: str = "random",
        spacing: str = "random",
    ) -> None:
        super().__init__()
        if channel_mode not in _CHANNEL_DIM:
            raise ValueError(f"channel_mode must be 'sample' or 'frequency', got {channel_mode!r}")
        self.channel_mode = channel_mode
        self.quantize = RandomizedQuantization(
            num_bins,
            channel_dim=_CHANNEL_DIM[channel_mode],
            collapse=collapse,
            spacing=spacing,
            p=p,
        )

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if x.ndim != 4:
            raise ValueError(f"expected (B, C, F, T), got shape {tuple(x.shape)}")
        return self.quantize(x, generator=generator)

    def extra_repr(self) -> str:
        return f"channel_mode={self.channel_mode!r}"
