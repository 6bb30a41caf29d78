"""rq-points: MID-Net point-cloud pretraining with randomized quantization on O-CNN octrees.

Points -> packed batch -> augmentation (+ RQ on xyz) -> octree -> MID-Net -> MID losses:

>>> import numpy as np, torch
>>> from rq_points import (
...     MidNet, MidNetConfig, PointAugmentation, build_octree_batch, collate_shapes
... )
>>> from rq_points.data.procedural import generate_shapes
>>> items = [{"points": s.shape.points, "normals": s.shape.normals, "labels": s.shape.labels,
...           "cluster_ids": np.zeros(256, np.int64), "class_id": s.class_id, "index": i}
...          for i, s in enumerate(generate_shapes(1, 256))]
>>> batch = PointAugmentation(rq_bins=30)(collate_shapes(items), torch.Generator().manual_seed(0))
>>> ob = build_octree_batch(batch.points, batch.normals, batch.batch_ids, batch.batch_size, depth=5)
>>> net = MidNet(MidNetConfig(depth=5, channels=16, global_channels=32, resblock_num=1))
>>> net(ob.octree).global_feature.shape
torch.Size([6, 32])
"""

from rq_points.augmentations import PointAugmentation
from rq_points.data.packed import PackedShapes, ShapeDataset, collate_shapes
from rq_points.data.shape_cache import ShapeCache, write_shape_cache
from rq_points.encoder import MidNet, MidNetConfig
from rq_points.losses import MidNetLoss
from rq_points.octree_batch import OctreeBatch, build_octree_batch

__version__ = "0.1.0"

__all__ = [
    "MidNet",
    "MidNetConfig",
    "MidNetLoss",
    "OctreeBatch",
    "PackedShapes",
    "PointAugmentation",
    "ShapeCache",
    "ShapeDataset",
    "build_octree_batch",
    "collate_shapes",
    "write_shape_cache",
]
