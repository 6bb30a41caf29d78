"""MID-Net's two instance-discrimination losses (reference: microsoft/O-CNN
``tensorflow/script/mid_loss.py``; hyperparameters from ``configs/mid_hrnet_d6.yaml``).

- Shape level: every training shape is its own class. The L2-normalized 128-d shape
  embedding is scored against a memory bank of one vector per shape (temperature
  ``sigma: 0.1``); the target is the shape's own row; the row then moves towards the new
  embedding with momentum 0.5 (``momentum: 0.5``).
- Point level: every shape is over-segmented into k = 100 k-means clusters
  (``seg_num: 100``). A leaf's 64-d embedding is scored against the 100 prototypes of its
  own shape only; the target is its cluster. After the step, each prototype moves towards
  the mean normalized embedding of its cluster's leaves (prototypes of clusters absent from
  the batch stay put).

The total is ``w_shape * shape + w_point * point`` with weights 1:1 (``run_mid.py``: the
``weights`` flag; the RQ paper uses MID-Net's defaults).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from rq_core.losses.memory_bank import MemoryBank
from torch import Tensor, nn

__all__ = ["MidNetLoss", "MidNetLossOutput", "PointClusterLoss", "ShapeInstanceLoss"]


class ShapeInstanceLoss(nn.Module):
    """Shape-level instance discrimination against a memory bank of every training shape.

    Shapes: ``embedding`` (B, dim), ``shape_ids`` (B,) in [0, num_shapes) -> (loss, accuracy).

    >>> loss = ShapeInstanceLoss(10, 4)
    >>> value, acc = loss(torch.randn(3, 4), torch.tensor([1, 2, 3]))
    >>> value.shape
    torch.Size([])
    """

    def __init__(
        self, num_shapes: int, dim: int, *, temperature: float = 0.1, momentum: float = 0.5
    ) -> None:
        super().__init__()
        # rq_core's bank: v <- normalize(m v + (1 - m) f); at m = 0.5 that is the reference's
        # f * momentum + v * (1 - momentum).
        self.bank = MemoryBank(num_shapes, dim, momentum=momentum, temperature=temperature)

    def forward(
        self, embedding: Tensor, shape_ids: Tensor, update: bool = True
    ) -> tuple[Tensor, Tensor]:
        logits = self.bank.logits(embedding)
        loss = F.cross_entropy(logits, shape_ids.long())
        accuracy = (logits.argmax(1) == shape_ids).float().mean()
        if update and self.training:
            self.bank.update(embedding, shape_ids)
        return loss, accuracy.detach()


class PointClusterLoss(nn.Module):
    """Point-level discrimination of each leaf's k-means cluster among its shape's prototypes.

    The prototypes are a :class:`MemoryBank` of ``num_shapes * num_clusters`` rows (row
    ``shape * k + cluster``). Under DDP every rank sends a fixed-size (B * k, dim) update,
    so batches must have the same size on every rank (``drop_last``).

    Shapes: ``leaf_embedding`` (L, dim), ``leaf_cluster`` (L,) in [-1, k) (-1: ignored),
    ``leaf_batch`` (L,) in [0, B), ``shape_ids`` (B,) -> (loss, accuracy).
    """

    def __init__(
        self,
        num_shapes: int,
        num_clusters: int,
        dim: int,
        *,
        temperature: float = 0.1,
        momentum: float = 0.5,
    ) -> None:
        super().__init__()
        self.num_clusters = num_clusters
        self.bank = MemoryBank(
            num_shapes * num_clusters, dim, momentum=momentum, temperature=temperature
        )

    def forward(
        self,
        leaf_embedding: Tensor,
        leaf_cluster: Tensor,
        leaf_batch: Tensor,
        shape_ids: Tensor,
        update: bool = True,
    ) -> tuple[Tensor, Tensor]:
        K, B = self.num_clusters, shape_ids.shape[0]
        if leaf_cluster.numel() and int(leaf_cluster.max()) >= K:
            raise ValueError(f"cluster id {int(leaf_cluster.max())} >= num_clusters {K}")
        valid = leaf_cluster >= 0
        feats = F.normalize(leaf_embedding[valid], dim=1)
        clusters, batch = leaf_cluster[valid].long(), leaf_batch[valid].long()
        prototypes = self.bank.bank.view(-1, K, self.bank.dim)[shape_ids.long()]  # (B, K, dim)
        # One (n_b, dim) x (dim, K) product per shape, as the reference: never an (L, K, dim)
        # gather (3 GB at the paper's batch size).
        logits = torch.empty(feats.shape[0], K, dtype=feats.dtype, device=feats.device)
        for b in range(B):
            rows = batch == b
            logits[rows] = feats[rows] @ prototypes[b].to(feats.dtype).T
        logits = logits / self.bank.temperature
        loss = F.cross_entropy(logits, clusters) if feats.shape[0] else leaf_embedding.sum() * 0
        accuracy = (
            (logits.argmax(1) == clusters).float().mean() if feats.shape[0] else loss.detach()
        )
        if update and self.training:
            with torch.no_grad():
                slot = batch * K + clusters  # (b, cluster) of every valid leaf
                sums = torch.zeros(B * K, feats.shape[1], dtype=feats.dtype, device=feats.device)
                sums.index_add_(0, slot, feats.detach())
                # A zero row normalizes to zero, so absent clusters keep their prototype.
                rows = (
                    shape_ids.long().unsqueeze(1) * K + torch.arange(K, device=shape_ids.device)
                ).reshape(-1)
                self.bank.update(sums, rows)
        return loss, accuracy.detach()


@dataclass
class MidNetLossOutput:
    total: Tensor
    shape_loss: Tensor
    point_loss: Tensor
    shape_accuracy: Tensor
    point_accuracy: Tensor


class MidNetLoss(nn.Module):
    """Both MID-Net losses with their weights (1:1).

    >>> loss = MidNetLoss(num_shapes=4, num_clusters=3, shape_dim=8, point_dim=5)
    >>> out = loss(torch.randn(2, 8), torch.tensor([0, 3]), torch.randn(6, 5),
    ...            torch.tensor([0, 1, 2, 0, 1, -1]), torch.tensor([0, 0, 0, 1, 1, 1]))
    >>> out.total.shape
    torch.Size([])
    """

    def __init__(
        self,
        num_shapes: int,
        num_clusters: int = 100,
        shape_dim: int = 128,
        point_dim: int = 64,
        *,
        temperature: float = 0.1,
        momentum: float = 0.5,
        weights: tuple[float, float] = (1.0, 1.0),
    ) -> None:
        super().__init__()
        self.shape = ShapeInstanceLoss(
            num_shapes, shape_dim, temperature=temperature, momentum=momentum
        )
        self.point = PointClusterLoss(
            num_shapes, num_clusters, point_dim, temperature=temperature, momentum=momentum
        )
        self.weights = tuple(float(w) for w in weights)

    def forward(
        self,
        shape_embedding: Tensor,
        shape_ids: Tensor,
        leaf_embedding: Tensor,
        leaf_cluster: Tensor,
        leaf_batch: Tensor,
        update: bool = True,
    ) -> MidNetLossOutput:
        s_loss, s_acc = self.shape(shape_embedding, shape_ids, update)
        p_loss, p_acc = self.point(leaf_embedding, leaf_cluster, leaf_batch, shape_ids, update)
        total = self.weights[0] * s_loss + self.weights[1] * p_loss
        return MidNetLossOutput(total, s_loss.detach(), p_loss.detach(), s_acc, p_acc)
