"""Packed points -> one merged ocnn octree, keeping the point-to-leaf index.

Three ocnn rules are enforced here (each has a test):

1. Points must lie strictly inside [-1, 1]^3 -- a point at exactly +1 lands in a node
   outside the 2^depth grid. :func:`build_octree_batch` raises instead of building a
   corrupt octree.
2. After ``Octree.merge_octrees`` the neighbour tables are stale; ``construct_all_neigh()``
   must be called before any convolution (done here).
3. ``ocnn.nn.OctreeInterp`` rescales its query points in place; :mod:`rq_points.encoder`
   passes it a clone.
"""

from __future__ import annotations

from dataclasses import dataclass

import ocnn
import torch
from ocnn.octree import Octree, Points
from torch import Tensor

__all__ = ["OctreeBatch", "build_octree_batch", "leaf_majority_label"]


@dataclass
class OctreeBatch:
    """A merged octree and, per input point, the index of its non-empty leaf at ``depth``.

    ``point_leaf`` (N,) int64 indexes the rows of features taken with ``nempty=True`` at
    ``octree.depth`` (all shapes' non-empty leaves, shape after shape).
    """

    octree: Octree
    point_leaf: Tensor

    @property
    def num_leaves(self) -> int:
        return int(self.octree.nnum_nempty[self.octree.depth])


def build_octree_batch(
    points: Tensor,
    normals: Tensor,
    batch_ids: Tensor,
    num_shapes: int,
    *,
    depth: int = 6,
    full_depth: int = 2,
) -> OctreeBatch:
    """Build one octree per shape (depth 6, full depth 2: ``mid_hrnet_d6.yaml`` and O-CNN's
    default ``full_depth``), merge them, and rebuild the neighbour tables.

    Shapes: ``points``/``normals`` (N, 3), ``batch_ids`` (N,) in [0, num_shapes).

    >>> p = torch.rand(100, 3) * 1.8 - 0.9
    >>> n = torch.nn.functional.normalize(torch.randn(100, 3), dim=1)
    >>> ob = build_octree_batch(p, n, torch.arange(100) // 50, 2, depth=4)
    >>> ob.octree.batch_size, ob.point_leaf.shape, int(ob.point_leaf.max()) < ob.num_leaves
    (2, torch.Size([100]), True)
    """
    if points.ndim != 2 or points.shape[1] != 3 or normals.shape != points.shape:
        raise ValueError(
            "points and normals must both be (N, 3); "
            f"got {tuple(points.shape)}, {tuple(normals.shape)}"
        )
    if points.numel() and float(points.abs().max()) >= 1.0:
        bad = int((points.abs() >= 1.0).any(1).sum())
        raise ValueError(
            f"{bad} points lie on or outside the [-1, 1] cube (max |coordinate| = "
            f"{float(points.abs().max()):.4f}); ocnn needs them strictly inside -- normalize and "
            "clip first (rq_points.augmentations.clip_inside_unit_cube)"
        )
    counts = torch.bincount(batch_ids.long(), minlength=num_shapes)
    if bool((counts == 0).any()):
        raise ValueError(f"shapes {torch.nonzero(counts == 0).flatten().tolist()} have no points")
    order = torch.argsort(batch_ids, stable=True)
    sorted_ids = batch_ids[order]
    starts = torch.cumsum(counts, 0) - counts
    octrees, leaf_sorted, leaf_offset = [], torch.empty_like(order), 0
    for b in range(num_shapes):
        rows = order[int(starts[b]) : int(starts[b] + counts[b])]
        octree = Octree(depth, full_depth, device=points.device)
        idx = octree.build_octree(Points(points[rows], normals[rows]))
        leaf_sorted[int(starts[b]) : int(starts[b] + counts[b])] = idx + leaf_offset
        leaf_offset += int(octree.nnum_nempty[depth])
        octrees.append(octree)
    del sorted_ids
    merged = ocnn.octree.merge_octrees(octrees)
    merged.construct_all_neigh()  # merge_octrees leaves the neighbour tables unset
    point_leaf = torch.empty_like(order)
    point_leaf[order] = leaf_sorted
    return OctreeBatch(merged, point_leaf.long())


def leaf_majority_label(point_leaf: Tensor, labels: Tensor, num_leaves: int) -> Tensor:
    """The most frequent label of the points in every leaf (ties: the smallest label; -1 for
    leaves whose points are all unlabelled, i.e. label < 0).

    >>> leaf_majority_label(torch.tensor([0, 0, 0, 1]), torch.tensor([3, 5, 5, 2]), 3).tolist()
    [5, 2, -1]
    """
    valid = labels >= 0
    leaf, lab = point_leaf[valid].long(), labels[valid].long()
    out = torch.full((num_leaves,), -1, dtype=torch.int64, device=labels.device)
    if lab.numel() == 0:
        return out
    span = int(lab.max()) + 1
    keys, counts = torch.unique(leaf * span + lab, return_counts=True)
    key_leaf, key_label = keys // span, keys % span
    best = torch.zeros(num_leaves, dtype=counts.dtype, device=counts.device)
    best = best.scatter_reduce(0, key_leaf, counts, reduce="amax")
    is_best = counts == best[key_leaf]
    big = torch.full((num_leaves,), span, dtype=torch.int64, device=labels.device)
    winner = big.scatter_reduce(0, key_leaf[is_best], key_label[is_best], reduce="amin")
    return torch.where(winner < span, winner, out)
