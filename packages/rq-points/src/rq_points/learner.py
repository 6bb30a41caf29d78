"""MID-Net pretraining as a LightningModule (augment -> octree -> network -> MID losses).

Optimization follows the RQ paper's MID-Net setting (section 5.2, after Wang et al. 2021):
SGD, lr 0.03 (``learning_rate: 0.03`` in ``mid_hrnet_d6.yaml``), momentum 0.9, weight decay
5e-4 (``weight_decay: 0.0005``), batch 32 (``batch_size: 32``), 400 epochs with the lr
divided by 10 at epochs 200 and 300.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

import lightning as L
import torch
from rq_core import distributed

from rq_points.augmentations import PointAugmentation
from rq_points.data.packed import PackedShapes
from rq_points.encoder import MidNet, MidNetConfig
from rq_points.losses import MidNetLoss
from rq_points.octree_batch import OctreeBatch, build_octree_batch, leaf_majority_label

__all__ = ["MidNetPretraining"]


class MidNetPretraining(L.LightningModule):
    """Pretrains :class:`MidNet` with MID-Net's shape and point losses.

    Augmentation randomness is drawn inside the step from a generator seeded by
    ``(seed, rank, global_step)``: every rank sees different draws, and a resumed run draws
    what the uninterrupted one would have.
    """

    def __init__(
        self,
        net: MidNetConfig | dict,
        num_shapes: int,
        *,
        num_clusters: int = 100,
        augmentation: PointAugmentation | dict | None = None,
        lr: float = 0.03,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        lr_milestones: Sequence[int] = (200, 300),
        lr_gamma: float = 0.1,
        temperature: float = 0.1,
        bank_momentum: float = 0.5,
        loss_weights: Sequence[float] = (1.0, 1.0),
        seed: int = 0,
    ) -> None:
        super().__init__()
        net = net if isinstance(net, MidNetConfig) else MidNetConfig(**net)
        aug = (
            augmentation
            if isinstance(augmentation, PointAugmentation)
            else PointAugmentation(**(augmentation or {}))
        )
        self.save_hyperparameters(
            {
                "net": asdict(net),
                "num_shapes": num_shapes,
                "num_clusters": num_clusters,
                "augmentation": asdict(aug),
                "lr": lr,
                "momentum": momentum,
                "weight_decay": weight_decay,
                "lr_milestones": list(lr_milestones),
                "lr_gamma": lr_gamma,
                "temperature": temperature,
                "bank_momentum": bank_momentum,
                "loss_weights": list(loss_weights),
                "seed": seed,
            }
        )
        self.net = MidNet(net)
        self.augmentation = aug
        self.loss = MidNetLoss(
            num_shapes,
            num_clusters,
            net.shape_dim,
            net.point_dim,
            temperature=temperature,
            momentum=bank_momentum,
            weights=tuple(loss_weights),
        )

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        return (
            batch.to(device)
            if isinstance(batch, PackedShapes)
            else super().transfer_batch_to_device(batch, device, dataloader_idx)
        )

    def _generator(self) -> torch.Generator:
        g = torch.Generator(device=self.device)
        g.manual_seed(
            int(self.hparams.seed) * 1_000_003 + distributed.rank() * 7_919 + int(self.global_step)
        )
        return g

    def octree_batch(self, batch: PackedShapes) -> tuple[PackedShapes, OctreeBatch]:
        """Augment a packed batch and build its octree (depth/full depth from the net config)."""
        aug = self.augmentation(batch, self._generator())
        cfg = self.net.config
        ob = build_octree_batch(
            aug.points,
            aug.normals,
            aug.batch_ids,
            aug.batch_size,
            depth=cfg.depth,
            full_depth=cfg.full_depth,
        )
        return aug, ob

    def training_step(self, batch: PackedShapes, batch_idx: int):
        aug, ob = self.octree_batch(batch)
        out = self.net(ob.octree)
        depth = self.net.config.depth
        leaf_cluster = leaf_majority_label(ob.point_leaf, aug.cluster_ids, ob.num_leaves)
        leaf_batch = ob.octree.batch_id(depth, nempty=True).long()
        losses = self.loss(
            out.shape_embedding, batch.shape_ids, out.leaf_embedding, leaf_cluster, leaf_batch
        )
        B = batch.batch_size
        metrics = {
            "train/loss": losses.total.detach(),
            "train/shape_loss": losses.shape_loss,
            "train/point_loss": losses.point_loss,
            "train/shape_accuracy": losses.shape_accuracy,
            "train/point_accuracy": losses.point_accuracy,
            "train/octree_leaves_per_shape": float(ob.num_leaves) / B,
        }
        # Per step under the plain names (metrics.csv's `train/loss`, which the main job
        # reads), epoch means as `<name>_epoch`.
        self.log(
            "train/loss",
            metrics["train/loss"],
            prog_bar=True,
            on_step=True,
            on_epoch=False,
            batch_size=B,
        )
        self.log_dict(
            {k: v for k, v in metrics.items() if k != "train/loss"},
            on_step=True,
            on_epoch=False,
            batch_size=B,
        )
        self.log_dict(
            {f"{k}_epoch": v for k, v in metrics.items()},
            on_step=False,
            on_epoch=True,
            batch_size=B,
        )
        return losses.total

    def configure_optimizers(self):
        hp = self.hparams
        opt = torch.optim.SGD(
            self.net.parameters(), lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay
        )
        sched = torch.optim.lr_scheduler.MultiStepLR(
            opt, milestones=list(hp.lr_milestones), gamma=hp.lr_gamma
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
