"""``RandomizedQuantization``: the ``nn.Module`` around :func:`rq_core.randomized_quantize`."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rq_core.quantize import (
    Backend,
    Collapse,
    QuantizationParams,
    Spacing,
    _check_options,
    _compute_dtype,
    _normalize_channel_dim,
    _num_segment_samples,
    apply_randomized_quantization,
    sample_quantization_params,
)

__all__ = ["RandomizedQuantization"]


class RandomizedQuantization(nn.Module):
    """Randomized quantization as an augmentation module (kornia style).

    Every call samples fresh parameters, keeps them in ``self._params`` and applies them;
    ``module(x, params=module._params)`` replays the same quantizer (bins are relative to
    each channel's range, so on the same input the output is identical).

    Args: as :func:`rq_core.randomized_quantize`.

    Shapes: ``(B, C, ...)`` with ``channel_dim=1``; ``(B, L, D)`` or packed ``(N, C)`` with
    ``channel_dim=-1`` (pass ``segment_ids`` to ``forward`` for packed batches).

    >>> aug = RandomizedQuantization(num_bins=8)
    >>> x = torch.randn(4, 3, 32, 32)
    >>> y = aug(x)
    >>> torch.equal(aug(x, params=aug._params), y)
    True
    """

    def __init__(
        self,
        num_bins: int,
        channel_dim: int = 1,
        collapse: Collapse = "random",
        spacing: Spacing = "random",
        p: float = 1.0,
        straight_through: bool = False,
        backend: Backend = "auto",
    ) -> None:
        super().__init__()
        _check_options(num_bins, collapse, spacing, p)
        if channel_dim == 0:
            raise ValueError("channel_dim=0 is the sample axis; use 1 or -1")
        self.num_bins = num_bins
        self.channel_dim = channel_dim
        self.collapse = collapse
        self.spacing = spacing
        self.p = float(p)
        self.straight_through = straight_through
        self.backend = backend
        self._params: QuantizationParams | None = None

    def extra_repr(self) -> str:
        return (
            f"num_bins={self.num_bins}, channel_dim={self.channel_dim}, "
            f"collapse={self.collapse!r}, "
            f"spacing={self.spacing!r}, p={self.p}, straight_through={self.straight_through}"
        )

    def sample_params(
        self,
        x: Tensor,
        *,
        segment_ids: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> QuantizationParams:
        """Draw parameters for input ``x`` without applying them."""
        dim = _normalize_channel_dim(x, self.channel_dim)
        if segment_ids is not None:
            S = _num_segment_samples(x, segment_ids, dim)
        else:
            S = x.shape[0]
        dtype = _compute_dtype(x.dtype) if x.is_floating_point() else torch.float32
        return sample_quantization_params(
            S,
            x.shape[dim],
            self.num_bins,
            collapse=self.collapse,
            spacing=self.spacing,
            p=self.p,
            device=x.device,
            dtype=dtype,
            generator=generator,
        )

    def forward(
        self,
        x: Tensor,
        params: QuantizationParams | None = None,
        *,
        segment_ids: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        if params is None:
            params = self.sample_params(x, segment_ids=segment_ids, generator=generator)
        self._params = params
        return apply_randomized_quantization(
            x,
            params,
            channel_dim=self.channel_dim,
            segment_ids=segment_ids,
            straight_through=self.straight_through,
            backend=self.backend,
        )
