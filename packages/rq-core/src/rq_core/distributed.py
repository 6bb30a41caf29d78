"""torch.distributed helpers that are the identity in a single process.

:func:`gather_with_grad` is the autograd-aware all-gather that lets a contrastive loss use
the negatives of every rank while gradients still reach the rank that produced them.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["gather_with_grad", "gather_without_grad", "is_distributed", "rank", "world_size"]


def is_distributed() -> bool:
    """True when a default process group is initialized (DDP under torchrun/SLURM)."""
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Number of processes in the default group; 1 when not distributed.

    >>> world_size()
    1
    """
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """Rank of this process in the default group; 0 when not distributed.

    >>> rank()
    0
    """
    return dist.get_rank() if is_distributed() else 0


class _GatherWithGrad(torch.autograd.Function):
    """all_gather forward; backward sums every rank's gradient for our slice.

    Rank r's loss depends on every rank's input through the gathered tensor, so the gradient
    of our slice is the sum over ranks of d(loss_r)/d(slice): an all_reduce(SUM) of the
    gathered gradient, of which we keep our own slice. Combined with DDP's gradient
    averaging this equals the gradient of the mean of the per-rank losses.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        gathered = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(gathered, x.contiguous())
        ctx.batch_size = x.shape[0]
        return torch.cat(gathered, dim=0)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = dist.get_rank() * ctx.batch_size
        return grad[start : start + ctx.batch_size]


def gather_with_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` from every rank along dim 0, keeping gradients.

    Every rank must pass the same shape. Shapes: ``(B, ...)`` -> ``(world_size * B, ...)``;
    rows ``rank * B : (rank + 1) * B`` are this rank's ``x``. Identity when not distributed.

    >>> x = torch.randn(4, 3, requires_grad=True)
    >>> gather_with_grad(x) is x
    True
    """
    if not is_distributed() or world_size() == 1:
        return x
    return _GatherWithGrad.apply(x)


@torch.no_grad()
def gather_without_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` from every rank along dim 0 (no autograd); identity alone.

    >>> gather_without_grad(torch.arange(3)).tolist()
    [0, 1, 2]
    """
    if not is_distributed() or world_size() == 1:
        return x
    gathered = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(gathered, x.contiguous())
    return torch.cat(gathered, dim=0)
