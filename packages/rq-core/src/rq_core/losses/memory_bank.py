"""A memory bank of per-instance embeddings for instance discrimination.

Instance discrimination (Wu et al., 2018, "Unsupervised Feature Learning via Non-Parametric
Instance Discrimination", NPID) treats every training sample as its own class: the bank
holds one L2-normalized vector per sample; a sample's logits are its similarities to every
bank entry over a temperature, the target is its own index, and after each step its entry
moves towards the new embedding, ``v <- normalize(m v + (1 - m) f)``. MID-Net (Wang et al.,
2021) applies this to shape-level and point-level features of octree networks.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rq_core import distributed

__all__ = ["MemoryBank"]


class MemoryBank(nn.Module):
    """One L2-normalized ``dim``-vector per instance, updated by momentum.

    Args:
        size: number of instances (dataset size); indices run over ``[0, size)``.
        dim: embedding dimension.
        momentum: m in ``v <- normalize(m v + (1 - m) f)`` (NPID uses 0.5, Sec. 3.1).
        temperature: t in ``logits = f . v / t`` (NPID uses 0.07, Sec. 3.1).
        gather_distributed: under DDP, updates use the (features, indices) of all ranks so
            every rank's bank stays identical.

    The bank is a buffer: it is saved in checkpoints and moves with ``.to(device)``. Since
    every rank applies the same updates, DDP's per-step buffer broadcast is redundant for
    it; with a large bank, train with ``DDPStrategy(broadcast_buffers=False)`` or keep the
    bank outside the DDP-wrapped modules. All ranks must pass batches of the same size
    (``drop_last=True``).
    ``forward(features, indices)`` returns the instance-discrimination loss against the
    current bank and then (in training mode, ``update=True``) writes the update; the loss
    never back-propagates into the bank.

    Shapes: ``features`` (B, dim), ``indices`` (B,) int64 -> scalar loss.

    >>> bank = MemoryBank(size=10, dim=4, momentum=0.5)
    >>> loss = bank(torch.randn(3, 4), torch.tensor([0, 5, 9]))
    >>> loss.shape
    torch.Size([])
    """

    bank: Tensor

    def __init__(
        self,
        size: int,
        dim: int,
        momentum: float = 0.5,
        temperature: float = 0.07,
        gather_distributed: bool = True,
    ) -> None:
        super().__init__()
        if size < 1 or dim < 1:
            raise ValueError(f"size and dim must be >= 1, got size={size}, dim={dim}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.size = size
        self.dim = dim
        self.momentum = float(momentum)
        self.temperature = float(temperature)
        self.gather_distributed = gather_distributed
        # NPID initializes the bank uniformly in [-1/sqrt(dim/3), 1/sqrt(dim/3)]; we then
        # normalize so every entry is a unit vector from the first step on.
        bound = 1.0 / math.sqrt(dim / 3.0)
        initial = torch.empty(size, dim).uniform_(-bound, bound)
        self.register_buffer("bank", F.normalize(initial, dim=1))

    def _check(self, features: Tensor, indices: Tensor) -> None:
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise ValueError(f"features must be (batch, {self.dim}), got {tuple(features.shape)}")
        if indices.shape != (features.shape[0],):
            raise ValueError(
                f"indices must be ({features.shape[0]},) to match features, "
                f"got {tuple(indices.shape)}"
            )
        if indices.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"indices must be int64 or int32, got {indices.dtype}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.size):
            raise ValueError(
                f"indices must lie in [0, {self.size}); got {indices.min()}..{indices.max()}"
            )

    def logits(self, features: Tensor) -> Tensor:
        """Similarities of normalized ``features`` (B, dim) to every entry: (B, size) / t."""
        features = F.normalize(features, dim=1)
        return features @ self.bank.to(features.dtype).T / self.temperature

    @torch.no_grad()
    def update(self, features: Tensor, indices: Tensor) -> None:
        """``v[i] <- normalize(m v[i] + (1 - m) normalize(f))`` for every (f, i) pair.

        Replaces the buffer out of place, so logits computed before stay valid for backward.
        A repeated index keeps the last of its updates.
        """
        self._check(features, indices)
        features = F.normalize(features.detach().float(), dim=1)
        indices = indices.long()
        if self.gather_distributed:
            features = distributed.gather_without_grad(features)
            indices = distributed.gather_without_grad(indices)
        current = self.bank[indices]
        mixed = F.normalize(self.momentum * current + (1.0 - self.momentum) * features, dim=1)
        bank = self.bank.clone()
        bank[indices] = mixed.to(bank.dtype)
        self.bank = bank

    def forward(self, features: Tensor, indices: Tensor, update: bool = True) -> Tensor:
        self._check(features, indices)
        loss = F.cross_entropy(self.logits(features), indices.long())
        if update and self.training:
            self.update(features, indices)
        return loss
