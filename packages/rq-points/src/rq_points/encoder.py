"""MID-Net: the HRNet-style multi-resolution octree network of Wang et al. (2021).

A PyTorch port of the reference TensorFlow model (microsoft/O-CNN,
``tensorflow/script/network_hrnet.py``) on ``ocnn`` layers, every octree feature over all
nodes of its depth (``nempty=False``, as the reference):

- input: per-leaf |normal| and |displacement| at ``depth`` (4 channels: ``node_dis: True``,
  ``channel: 4``, ``signal_abs: True`` in ``configs/mid_hrnet_d6.yaml``);
- front: conv + ``resblock_num`` residual blocks at ``depth`` with C/4 channels (kept as the
  fine-resolution skip), max-pool, conv to C channels at ``depth - 1``;
- ``stages`` (3) stages of parallel branches, branch i at ``depth - 1 - i`` with C * 2^i
  channels and ``resblock_num`` (3, the reference default) bottleneck blocks each; between
  stages every branch is resampled to every other (max-pool + 1x1 conv down, 1x1 conv +
  nearest upsampling up), summed, ReLU, and one coarser branch is added;
- shape head: branches max-pooled to ``depth - stages``, concatenated, 1x1 conv to
  ``global_channels`` (512 * factor = 1024), global average pool -> the global feature,
  then a linear layer to the 128-d shape embedding (``nouts: 128,64``);
- point head: branches upsampled to ``depth - 1``, concatenated, upsampled to ``depth`` and
  joined with the front skip, then 2 FC layers (128 * factor = 256 hidden) -> 64-d.

C = 64 * factor with factor 2 (``factor: 2``) gives the paper's sizes: branches of 128, 256
and 512 channels, a 1024-d global feature.
"""

from __future__ import annotations

from dataclasses import dataclass

import ocnn
import torch
from ocnn.octree import Octree
from rq_core.heads import MLPHead
from torch import Tensor, nn

__all__ = ["MidNet", "MidNetConfig", "MidNetOutput", "two_fc_head"]


def two_fc_head(in_dim: int, hidden: int, out_dim: int) -> MLPHead:
    """The reference ``predict_module``: FC + BN + ReLU, then a plain FC (with bias)."""
    return MLPHead(
        [(in_dim, hidden, nn.BatchNorm1d(hidden), nn.ReLU()), (hidden, out_dim, None, None)]
    )


@dataclass
class MidNetConfig:
    """Network sizes; the defaults are the paper's (``mid_hrnet_d6.yaml``, factor 2)."""

    depth: int = 6  # octree depth (``depth: 6``)
    full_depth: int = 2  # O-CNN default full depth
    channels: int = 128  # C = 64 * factor, factor 2
    global_channels: int = 1024  # 512 * factor: the 1024-d global feature
    shape_dim: int = 128  # ``nouts: 128,64``
    point_dim: int = 64
    point_hidden: int = 256  # 128 * factor in predict_module
    resblock_num: int = 3  # reference config default (``MODEL.resblock_num = 3``)
    stages: int = 3  # ``stage_num = 3`` in network_hrnet.py
    in_channels: int = 4  # normal (3) + displacement (1)

    def __post_init__(self) -> None:
        if self.depth - self.stages < self.full_depth:
            raise ValueError(
                f"depth ({self.depth}) - stages ({self.stages}) must be >= full_depth "
                f"({self.full_depth}): the shape head pools to depth - stages"
            )
        if self.channels % 4 != 0 or self.channels < 16:
            raise ValueError(
                f"channels must be a multiple of 4 and >= 16 (the front uses C/4 channels and its "
                f"bottleneck blocks C/16), got {self.channels}"
            )


@dataclass
class MidNetOutput:
    """``global_feature`` (B, global_channels), ``shape_embedding`` (B, shape_dim),
    ``leaf_embedding`` (L, point_dim) for the L non-empty leaves at ``depth``."""

    global_feature: Tensor
    shape_embedding: Tensor
    leaf_embedding: Tensor


class _Transition(nn.Module):
    """Resample branch features from ``i`` to ``j`` (index = depth offset below the top)."""

    def __init__(self, c_in: int, c_out: int, i: int, j: int) -> None:
        super().__init__()
        self.i, self.j = i, j
        self.pool = ocnn.nn.OctreeMaxPool(nempty=False)
        self.up = ocnn.nn.OctreeUpsample("nearest", nempty=False)
        self.conv = ocnn.modules.Conv1x1Bn(c_in, c_out) if i != j else nn.Identity()

    def forward(self, x: Tensor, octree: Octree, top: int) -> Tensor:
        depth = top - self.i
        if self.j > self.i:  # down: pool first, then 1x1 conv (fewer nodes to convolve)
            for d in range(depth, top - self.j, -1):
                x = self.pool(x, octree, d)
            return self.conv(x)
        if self.j < self.i:  # up: 1x1 conv first, then nearest upsampling
            x = self.conv(x)
            for d in range(depth, top - self.j):
                x = self.up(x, octree, d)
        return x


class MidNet(nn.Module):
    """MID-Net backbone with its shape head and point head.

    >>> from rq_points.octree_batch import build_octree_batch
    >>> cfg = MidNetConfig(depth=5, channels=16, global_channels=32, shape_dim=8,
    ...                    point_dim=8, point_hidden=16, resblock_num=1)
    >>> net = MidNet(cfg).eval()
    >>> p = torch.rand(200, 3) * 1.6 - 0.8
    >>> n = torch.nn.functional.normalize(torch.randn(200, 3), dim=1)
    >>> ob = build_octree_batch(p, n, torch.arange(200) // 100, 2, depth=5)
    >>> out = net(ob.octree)
    >>> out.global_feature.shape, out.shape_embedding.shape, out.leaf_embedding.shape[1]
    (torch.Size([2, 32]), torch.Size([2, 8]), 8)
    """

    def __init__(self, config: MidNetConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or MidNetConfig()
        C, q = cfg.channels, cfg.channels // 4
        self.front_conv = ocnn.modules.OctreeConvBnRelu(cfg.in_channels, q)
        self.front_blocks = ocnn.modules.OctreeResBlocks(q, q, cfg.resblock_num, bottleneck=4)
        self.front_pool = ocnn.nn.OctreeMaxPool(nempty=False)
        self.front_top = ocnn.modules.OctreeConvBnRelu(q, C)
        widths = [C * 2**i for i in range(cfg.stages)]
        self.widths = widths
        # Bottleneck 4 below 256 channels, 8 above (network_hrnet.py ``branch``).
        self.stage_blocks = nn.ModuleList(
            nn.ModuleList(
                ocnn.modules.OctreeResBlocks(w, w, cfg.resblock_num, bottleneck=4 if w < 256 else 8)
                for w in widths[: s + 1]
            )
            for s in range(cfg.stages)
        )
        self.transitions = nn.ModuleList(
            nn.ModuleList(
                nn.ModuleList(_Transition(widths[i], widths[j], i, j) for i in range(s + 1))
                for j in range(s + 2)
            )
            for s in range(cfg.stages - 1)
        )
        self.pool = ocnn.nn.OctreeMaxPool(nempty=False)
        self.up = ocnn.nn.OctreeUpsample("nearest", nempty=False)
        self.shape_fc1 = ocnn.modules.Conv1x1BnRelu(sum(widths), cfg.global_channels)
        self.global_pool = ocnn.nn.OctreeGlobalPool(nempty=False)
        self.shape_fc2 = nn.Linear(cfg.global_channels, cfg.shape_dim, bias=True)
        self.point_feature_dim = sum(widths) + q
        self.point_head = two_fc_head(self.point_feature_dim, cfg.point_hidden, cfg.point_dim)

    # ------------------------------------------------------------------ backbone

    def _check_octree(self, octree: Octree) -> None:
        if octree.depth != self.config.depth:
            raise ValueError(f"octree depth {octree.depth} != network depth {self.config.depth}")
        if octree.neighs[octree.depth] is None:
            raise ValueError(
                "octree has no neighbour tables: call construct_all_neigh() after merging"
            )

    def backbone(self, octree: Octree) -> tuple[Tensor, list[Tensor]]:
        """The front skip at ``depth`` (all nodes, C/4) and the final branches (branch i at
        ``depth - 1 - i``, C * 2^i channels)."""
        self._check_octree(octree)
        D = self.config.depth
        x = octree.get_input_feature("ND", nempty=False).abs()  # signal_abs: True
        x = self.front_conv(x, octree, D)
        skip = self.front_blocks(x, octree, D)
        top = D - 1
        branches = [self.front_top(self.front_pool(skip, octree, D), octree, top)]
        for s in range(self.config.stages):
            branches = [
                blk(b, octree, top - i)
                for i, (blk, b) in enumerate(zip(self.stage_blocks[s], branches))
            ]
            if s < self.config.stages - 1:
                branches = [
                    torch.relu(
                        sum(t(b, octree, top) for t, b in zip(self.transitions[s][j], branches))
                    )
                    for j in range(s + 2)
                ]
        return skip, branches

    def global_feature(self, octree: Octree, branches: list[Tensor]) -> Tensor:
        top, stages = self.config.depth - 1, self.config.stages
        pooled = []
        for i, b in enumerate(branches):
            for d in range(top - i, top - (stages - 1), -1):
                b = self.pool(b, octree, d)
            pooled.append(b)
        x = self.shape_fc1(torch.cat(pooled, dim=1))
        return self.global_pool(x, octree, top - (stages - 1))

    def _top_features(self, octree: Octree, branches: list[Tensor]) -> Tensor:
        """Branches upsampled (nearest) to ``depth - 1`` and concatenated (all nodes)."""
        top, feats = self.config.depth - 1, []
        for i, b in enumerate(branches):
            for d in range(top - i, top):
                b = self.up(b, octree, d)
            feats.append(b)
        return torch.cat(feats, dim=1)

    def leaf_features(self, octree: Octree, skip: Tensor, branches: list[Tensor]) -> Tensor:
        """Point-head input of the non-empty leaves at ``depth``: (L, point_feature_dim)."""
        D = self.config.depth
        x = torch.cat([self.up(self._top_features(octree, branches), octree, D - 1), skip], dim=1)
        return x[octree.nempty_mask(D)]

    def forward(self, octree: Octree) -> MidNetOutput:
        skip, branches = self.backbone(octree)
        fc1 = self.global_feature(octree, branches)
        leaves = self.leaf_features(octree, skip, branches)
        return MidNetOutput(fc1, self.shape_fc2(fc1), self.point_head(leaves))

    # ------------------------------------------------------------------ downstream features

    def point_features(
        self, octree: Octree, points: Tensor, batch_ids: Tensor, point_leaf: Tensor
    ) -> Tensor:
        """Per-point features for segmentation, (N, point_feature_dim): the branch features
        at ``depth - 1`` trilinearly interpolated at each point, joined with the front skip
        of its leaf (the reference ``seg_header_pts``: bilinear at depth 5 + nearest at 6).

        ``points`` (N, 3) in [-1, 1] is not modified: OctreeInterp rescales its query in
        place, so it gets a clone.
        """
        return self.features(octree, points, batch_ids, point_leaf)[1]

    def features(
        self, octree: Octree, points: Tensor, batch_ids: Tensor, point_leaf: Tensor
    ) -> tuple[Tensor, Tensor]:
        """The global feature (B, global_channels) and :meth:`point_features` from one
        backbone pass."""
        skip, branches = self.backbone(octree)
        D = self.config.depth
        query = torch.cat([points, batch_ids.to(points.dtype).unsqueeze(1)], dim=1).clone()
        interp = ocnn.nn.OctreeInterp("linear", nempty=False)
        coarse = interp(self._top_features(octree, branches), octree, D - 1, query)
        fine = skip[octree.nempty_mask(D)][point_leaf]
        return self.global_feature(octree, branches), torch.cat([coarse, fine], dim=1)
