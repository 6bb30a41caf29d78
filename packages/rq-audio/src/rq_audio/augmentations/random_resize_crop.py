"""BYOL-A's RandomResizeCrop, on whole batches: one ``grid_sample`` call for all samples.

Each sample's log-mel (F, T) is placed at the centre of a zero "virtual crop" canvas of
``virtual_crop_scale`` times its size (BYOL-A: (1.0, 1.5), i.e. 50 % extra time), a
rectangle of ``freq_scale`` x ``time_scale`` times the input size (BYOL-A: 0.6-1.5 each,
clipped to the canvas) is picked at a random position, and resized back to (F, T) with
bicubic interpolation (align_corners=True) -- byol_a/augmentations.py.

Difference to the per-sample reference: bicubic taps that fall outside the chosen rectangle
read the neighbouring canvas values (the reference repeats the rectangle's edge); only output
pixels within one source pixel of the rectangle's edge are affected (tested).

>>> import torch
>>> RandomResizeCrop()(torch.randn(4, 1, 64, 96)).shape
torch.Size([4, 1, 64, 96])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CropParams", "RandomResizeCrop"]


@dataclass(frozen=True)
class CropParams:
    """Per-sample rectangles on the canvas, int64 (B,): top, left, height, width."""

    top: Tensor
    left: Tensor
    height: Tensor
    width: Tensor


def _uniform(n: int, lo: float, hi: float, device, generator) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, device=device, generator=generator, dtype=torch.float64)


class RandomResizeCrop(nn.Module):
    """Random resized crop of (B, C, F, T) spectrograms; every sample draws its own rectangle.

    Args:
        virtual_crop_scale: canvas size as (F ratio, T ratio) of the input; >= 1.
        freq_scale, time_scale: (min, max) size of the rectangle relative to the input;
            max >= 1 (as BYOL-A asserts).
        interpolation: "bicubic" (BYOL-A) or "bilinear".
    """

    def __init__(
        self,
        virtual_crop_scale: tuple[float, float] = (1.0, 1.5),
        freq_scale: tuple[float, float] = (0.6, 1.5),
        time_scale: tuple[float, float] = (0.6, 1.5),
        interpolation: str = "bicubic",
    ) -> None:
        super().__init__()
        for name, (lo, hi) in (("freq_scale", freq_scale), ("time_scale", time_scale)):
            if not 0 < lo <= hi or hi < 1.0:
                raise ValueError(f"{name} must satisfy 0 < min <= max and max >= 1, got {(lo, hi)}")
        if min(virtual_crop_scale) < 1.0:
            raise ValueError(f"virtual_crop_scale must be >= 1, got {virtual_crop_scale}")
        if interpolation not in ("bicubic", "bilinear"):
            raise ValueError(
                f"interpolation must be 'bicubic' or 'bilinear', got {interpolation!r}"
            )
        self.virtual_crop_scale = tuple(virtual_crop_scale)
        self.freq_scale = tuple(freq_scale)
        self.time_scale = tuple(time_scale)
        self.interpolation = interpolation
        self._params: CropParams | None = None

    def canvas_size(self, F_: int, T: int) -> tuple[int, int]:
        return int(F_ * self.virtual_crop_scale[0]), int(T * self.virtual_crop_scale[1])

    def sample_params(self, x: Tensor, generator: torch.Generator | None = None) -> CropParams:
        B, F_, T = x.shape[0], x.shape[-2], x.shape[-1]
        ch, cw = self.canvas_size(F_, T)
        dev = x.device
        h = (_uniform(B, *self.freq_scale, dev, generator) * F_).long().clamp(1, ch)
        w = (_uniform(B, *self.time_scale, dev, generator) * T).long().clamp(1, cw)
        # Uniform integer in [0, canvas - size] (inclusive), as random.randint.
        top = (
            torch.rand(B, device=dev, generator=generator, dtype=torch.float64) * (ch - h + 1)
        ).long()
        left = (
            torch.rand(B, device=dev, generator=generator, dtype=torch.float64) * (cw - w + 1)
        ).long()
        return CropParams(top.clamp(max=ch - h), left.clamp(max=cw - w), h, w)

    def forward(
        self, x: Tensor, params: CropParams | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        if x.ndim != 4:
            raise ValueError(f"expected (B, C, F, T), got shape {tuple(x.shape)}")
        B, _, F_, T = x.shape
        if params is None:
            params = self.sample_params(x, generator)
        self._params = params
        ch, cw = self.canvas_size(F_, T)
        y0, x0 = (ch - F_) // 2, (cw - T) // 2
        canvas = F.pad(x, (x0, cw - T - x0, y0, ch - F_ - y0))
        dt = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
        r = (
            torch.linspace(0, 1, F_, device=x.device, dtype=dt)
            if F_ > 1
            else torch.zeros(1, device=x.device, dtype=dt)
        )
        c = (
            torch.linspace(0, 1, T, device=x.device, dtype=dt)
            if T > 1
            else torch.zeros(1, device=x.device, dtype=dt)
        )
        # Canvas coordinates of every output pixel (align_corners=True resize of the rectangle).
        ys = params.top.to(dt)[:, None] + r[None] * (params.height.to(dt)[:, None] - 1)  # (B, F)
        xs = params.left.to(dt)[:, None] + c[None] * (params.width.to(dt)[:, None] - 1)  # (B, T)
        gy = 2 * ys / max(ch - 1, 1) - 1
        gx = 2 * xs / max(cw - 1, 1) - 1
        grid = torch.stack(
            (gx[:, None, :].expand(B, F_, T), gy[:, :, None].expand(B, F_, T)), dim=-1
        )
        out = F.grid_sample(
            canvas.to(dt), grid, mode=self.interpolation, padding_mode="border", align_corners=True
        )
        return out.to(x.dtype)

    def extra_repr(self) -> str:
        return (
            f"virtual_crop_scale={self.virtual_crop_scale}, freq_scale={self.freq_scale}, "
            f"time_scale={self.time_scale}, interpolation={self.interpolation!r}"
        )
