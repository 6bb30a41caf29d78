"""NT-Xent / InfoNCE (SimCLR, Chen et al., 2020, Eq. 1) with negatives from every rank."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rq_core import distributed

__all__ = ["NTXentLoss"]


class NTXentLoss(nn.Module):
    """Normalized temperature-scaled cross entropy over two views.

    For 2N embeddings (N pairs, all ranks together), anchor i's positive is its pair and its
    negatives are the other 2N - 2 embeddings:
    ``l(i, j) = -log exp(s_ij / t) / sum_{k != i} exp(s_ik / t)`` with cosine similarity s;
    the loss is the mean of ``l`` over all 2B anchors of this rank. With
    ``gather_distributed=True`` the embeddings of every rank join the denominators through
    :func:`rq_core.distributed.gather_with_grad`, so under DDP the loss and gradients equal
    those of one process on the concatenated batch. All ranks must pass batches of the
    same size (use ``drop_last=True`` under DDP).

    Args:
        temperature: t > 0 (SimCLR's best for batch 4096 is 0.1, Table 5; our default).
        gather_distributed: use the negatives of all ranks (identity without DDP).

    Shapes: ``z0``, ``z1`` (B, D), row i of both the two views of sample i -> scalar.

    >>> z0, z1 = torch.randn(8, 16), torch.randn(8, 16)
    >>> NTXentLoss(temperature=0.5)(z0, z1).shape
    torch.Size([])
    """

    def __init__(self, temperature: float = 0.1, gather_distributed: bool = True) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.gather_distributed = gather_distributed

    def forward(self, z0: Tensor, z1: Tensor) -> Tensor:
        if z0.shape != z1.shape or z0.ndim != 2:
            raise ValueError(
                f"z0 and z1 must both be (batch, dim); got {tuple(z0.shape)} and {tuple(z1.shape)}"
            )
        batch_size = z0.shape[0]
        z0 = F.normalize(z0, dim=1)
        z1 = F.normalize(z1, dim=1)
        if self.gather_distributed:
            all_z0 = distributed.gather_with_grad(z0)
            all_z1 = distributed.gather_with_grad(z1)
            offset = distributed.rank() * batch_size
        else:
            all_z0, all_z1, offset = z0, z1, 0
        total = all_z0.shape[0]
        # Columns: [other view of everyone | same view of everyone]; the anchor itself sits
        # in the second block at column total + offset + i and is masked out.
        own = torch.arange(batch_size, device=z0.device) + offset
        logits_0 = torch.cat([z0 @ all_z1.T, z0 @ all_z0.T], dim=1) / self.temperature
        logits_1 = torch.cat([z1 @ all_z0.T, z1 @ all_z1.T], dim=1) / self.temperature
        logits = torch.cat([logits_0, logits_1], dim=0)
        rows = torch.arange(2 * batch_size, device=z0.device)
        self_columns = total + torch.cat([own, own])
        logits = logits.index_put(
            (rows, self_columns),
            torch.tensor(float("-inf"), dtype=logits.dtype, device=logits.device),
        )
        targets = torch.cat([own, own])
        return F.cross_entropy(logits, targets)
