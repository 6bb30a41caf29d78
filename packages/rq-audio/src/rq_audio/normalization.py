"""BYOL-A's two normalisations of log-mel spectrograms.

- pre-norm (:class:`PrecomputedNorm`): one mean and std over the training set, computed from
  at most 10,000 clips (byol_a ``calc_norm_stats``, ``n_stats=10000``) or all of them.
- post-norm (:class:`NormalizeBatch`): over the batch of augmented views, per channel, along
  axes (0, 2, 3) of (B, 1, F, T) (byol_a ``NormalizeBatch``), std clamped at float eps.

>>> import torch
>>> x = torch.randn(8, 1, 64, 96) * 3 + 5
>>> y = NormalizeBatch()(x)
>>> abs(float(y.mean())) < 1e-5, round(float(y.std()), 2)
(True, 1.0)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

__all__ = ["NormalizeBatch", "PrecomputedNorm", "compute_norm_stats"]


class PrecomputedNorm(nn.Module):
    """``(x - mean) / std`` with fixed scalars (buffers: saved in checkpoints)."""

    def __init__(self, mean: float = 0.0, std: float = 1.0) -> None:
        super().__init__()
        if not std > 0:
            raise ValueError(f"std must be > 0, got {std}")
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))

    def set_stats(self, mean: float, std: float) -> None:
        if not std > 0:
            raise ValueError(f"std must be > 0, got {std}")
        self.mean.fill_(float(mean))
        self.std.fill_(float(std))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"mean={float(self.mean):.4f}, std={float(self.std):.4f}"


class NormalizeBatch(nn.Module):
    """Standardise a batch along ``axis`` (default (0, 2, 3): per channel of (B, C, F, T))."""

    def __init__(self, axis: tuple[int, ...] = (0, 2, 3)) -> None:
        super().__init__()
        self.axis = tuple(axis)

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(dim=self.axis, keepdim=True)
        eps = torch.finfo(x.dtype).eps
        std = x.std(dim=self.axis, keepdim=True).clamp(min=eps)
        return (x - mean) / std


def compute_norm_stats(
    batches: Iterable[Tensor],
    to_log_mel: Callable[[Tensor], Tensor],
    *,
    max_clips: int = 10000,
    progress: bool = True,
) -> tuple[float, float]:
    """Mean and std of log-mel over at most ``max_clips`` clips of ``batches`` (waveforms (B, N)).

    Accumulates sums in float64 so that large sets do not lose precision.
    """
    total = total_sq = 0.0
    count = 0
    clips = 0
    bar = tqdm(total=max_clips, desc="norm stats", disable=not progress)
    for wav in batches:
        if isinstance(wav, (list, tuple)):
            wav = wav[0]
        wav = wav[: max_clips - clips]
        lms = to_log_mel(wav).double()
        total += float(lms.sum())
        total_sq += float((lms * lms).sum())
        count += lms.numel()
        clips += wav.shape[0]
        bar.update(wav.shape[0])
        if clips >= max_clips:
            break
    bar.close()
    if count == 0:
        raise ValueError("no clips to compute normalisation statistics from")
    mean = total / count
    var = max(total_sq / count - mean * mean, 0.0)
    return mean, max(var**0.5, float(torch.finfo(torch.float32).eps))
