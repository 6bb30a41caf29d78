"""Per-shape k-means cluster ids: the pseudo-labels of MID-Net's point-level loss.

MID-Net (Wang et al., 2021, Sec. 3.2) over-segments every shape into k = 100 clusters of its
points (the reference data file is ``shapenet.points.64.cluster.100``; ``seg_num: 100`` in
``configs/mid_hrnet_d6.yaml``) and discriminates points by their cluster against per-shape
cluster prototypes.
"""

from __future__ import annotations

import numpy as np

__all__ = ["kmeans_cluster_ids"]


def kmeans_cluster_ids(
    points: np.ndarray, num_clusters: int = 100, *, iterations: int = 10, seed: int = 0
) -> np.ndarray:
    """Lloyd's k-means on xyz; returns the cluster id (0..k-1) of every point, (N,) int16.

    Initial centres are ``num_clusters`` distinct points drawn with ``seed`` (farthest-point
    refinement is not worth its cost for over-segmentation). Shapes with fewer points than
    clusters get one cluster per point. Empty clusters keep their last centre.

    >>> pts = np.random.default_rng(0).random((500, 3)).astype(np.float32)
    >>> ids = kmeans_cluster_ids(pts, 8)
    >>> ids.shape, int(ids.max()) < 8
    ((500,), True)
    """
    if num_clusters < 1:
        raise ValueError(f"num_clusters must be >= 1, got {num_clusters}")
    points = np.asarray(points, np.float32)
    n = points.shape[0]
    if n == 0:
        return np.zeros(0, np.int16)
    k = min(num_clusters, n)
    rng = np.random.default_rng(seed)
    centres = points[rng.choice(n, size=k, replace=False)].copy()
    sq = (points**2).sum(1, keepdims=True)
    assign = np.zeros(n, np.int64)
    for _ in range(iterations):
        dist = sq - 2.0 * points @ centres.T + (centres**2).sum(1)[None, :]
        new_assign = dist.argmin(1)
        if np.array_equal(new_assign, assign) and _ > 0:
            break
        assign = new_assign
        counts = np.bincount(assign, minlength=k)
        sums = np.zeros((k, 3), np.float64)
        np.add.at(sums, assign, points)
        filled = counts > 0
        centres[filled] = (sums[filled] / counts[filled, None]).astype(np.float32)
    return assign.astype(np.int16)
