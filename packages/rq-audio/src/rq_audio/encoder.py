"""AudioNTT2020: BYOL-A's encoder (byol_a/models.py), after the NTT DCASE2020 task 6 system.

Three blocks of Conv3x3(64) + BatchNorm + ReLU + MaxPool2x2 over the (F, T) log-mel, then
per time frame the (64 channels x F/8 bins) features go through Linear(d) + ReLU +
Dropout(0.3) + Linear(d) + ReLU, and the frame sequence is pooled by max + mean over time.
BYOL-A uses 64 mels and d = 2048 (config.yaml feature_d).

Parameter names (``features.*``, ``fc.*``) and the flattening order (mel-major, channel-minor)
follow the reference, so its released weights load with ``load_state_dict``.

>>> import torch
>>> AudioNTT2020()(torch.randn(2, 1, 64, 96)).shape
torch.Size([2, 2048])
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["AudioNTT2020"]


def _conv_block(c_in: int, c_out: int) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, 3, stride=1, padding=1),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
        nn.MaxPool2d(2, stride=2),
    ]


class AudioNTT2020(nn.Module):
    """Log-mel (B, 1, n_mels, T) -> embedding (B, d); T >= 8 frames, any length.

    Args:
        n_mels: mel bins of the input (must be divisible by 8).
        d: embedding size (2048 in BYOL-A's paper setting).
        dropout: in the frame-wise MLP (0.3 in the reference).
        channels: conv width (64 in the reference; smaller only for CPU demos).
    """

    def __init__(
        self, n_mels: int = 64, d: int = 2048, dropout: float = 0.3, channels: int = 64
    ) -> None:
        super().__init__()
        if n_mels % 8:
            raise ValueError(f"n_mels must be divisible by 8 (three 2x poolings), got {n_mels}")
        self.n_mels, self.d, self.channels = n_mels, d, channels
        self.features = nn.Sequential(
            *_conv_block(1, channels),
            *_conv_block(channels, channels),
            *_conv_block(channels, channels),
        )
        self.fc = nn.Sequential(
            nn.Linear(channels * (n_mels // 8), d),
            nn.ReLU(),
            nn.Dropout(p=dropout),
            nn.Linear(d, d),
            nn.ReLU(),
        )

    def frame_features(self, x: Tensor) -> Tensor:
        """(B, 1, F, T) -> per-frame features (B, T // 8, d)."""
        if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] != self.n_mels:
            raise ValueError(f"expected (B, 1, {self.n_mels}, T), got shape {tuple(x.shape)}")
        if x.shape[3] < 8:
            raise ValueError(f"need at least 8 time frames, got {x.shape[3]}")
        h = self.features(x)  # (B, channels, F/8, T/8)
        h = h.permute(0, 3, 2, 1).flatten(2)  # (B, T/8, F/8 * channels): mel-major as the reference
        return self.fc(h)

    def forward(self, x: Tensor) -> Tensor:
        h = self.frame_features(x)
        return h.max(dim=1).values + h.mean(dim=1)
