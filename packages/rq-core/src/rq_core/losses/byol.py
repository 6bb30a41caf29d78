"""BYOL's regression loss (Grill et al., 2020, Eq. 2): ``2 - 2 cos(p, z)``, symmetrized."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["BYOLLoss", "byol_loss"]


def byol_loss(p: Tensor, z: Tensor) -> Tensor:
    """Mean over the batch of ``||p/|p| - z/|z|||^2 = 2 - 2 cos(p, z)``; ``z`` is detached.

    Shapes: ``p`` (B, D) online prediction, ``z`` (B, D) target projection -> scalar.
    The result lies in [0, 4]; 0 when every pair points the same way.

    >>> import torch
    >>> x = torch.randn(4, 8)
    >>> float(byol_loss(x, 3 * x)) < 1e-6
    True
    """
    if p.shape != z.shape or p.ndim != 2:
        raise ValueError(
            f"p and z must both be (batch, dim); got {tuple(p.shape)} and {tuple(z.shape)}"
        )
    cosine = F.cosine_similarity(p, z.detach(), dim=-1)
    return (2.0 - 2.0 * cosine).mean()


class BYOLLoss(nn.Module):
    """Symmetric BYOL loss: ``byol_loss(p0, z1) + byol_loss(p1, z0)`` (the paper's
    L + L~, Eq. 2), where ``p_i`` is the online prediction of view i and ``z_i`` the target
    projection of view i.

    Shapes: four (B, D) tensors -> scalar in [0, 8].

    >>> import torch
    >>> p0, p1, z0, z1 = (torch.randn(4, 8) for _ in range(4))
    >>> BYOLLoss()(p0, p1, z0, z1).shape
    torch.Size([])
    """

    def forward(self, p0: Tensor, p1: Tensor, z0: Tensor, z1: Tensor) -> Tensor:
        return byol_loss(p0, z1) + byol_loss(p1, z0)
