"""Packed batches of point clouds: all shapes' points concatenated, a batch id per point.

A batch of B shapes with N_1 .. N_B points is stored as ``points`` (N, 3) with
N = sum N_b and ``batch_ids`` (N,) in [0, B): the layout ocnn and ``rq_core``'s
``segment_ids`` both use. Per-point tensors (normals, part labels, cluster ids) share the
row order, so every transform that reorders or drops points keeps them aligned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

__all__ = ["PackedShapes", "ShapeDataset", "collate_shapes"]


@dataclass
class PackedShapes:
    """A packed batch. Shapes: ``points``/``normals`` (N, 3) float32; ``labels``,
    ``cluster_ids``, ``batch_ids`` (N,) int64; ``class_ids``, ``shape_ids`` (B,) int64.

    ``shape_ids`` index the dataset (the memory-bank rows); ``labels`` are -1 where unknown.
    """

    points: Tensor
    normals: Tensor
    labels: Tensor
    cluster_ids: Tensor
    batch_ids: Tensor
    class_ids: Tensor
    shape_ids: Tensor

    @property
    def batch_size(self) -> int:
        return int(self.class_ids.shape[0])

    def to(self, device: torch.device | str) -> PackedShapes:
        return replace(self, **{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def with_points(self, points: Tensor, normals: Tensor | None = None) -> PackedShapes:
        return replace(self, points=points, normals=self.normals if normals is None else normals)


def collate_shapes(items: Sequence[dict]) -> PackedShapes:
    """Pack dataset items (dicts of numpy arrays, see :class:`ShapeDataset`) into a batch.

    >>> item = {"points": np.zeros((4, 3), np.float32), "normals": np.zeros((4, 3), np.float32),
    ...         "labels": np.zeros(4, np.int64), "cluster_ids": np.zeros(4, np.int64),
    ...         "class_id": 1, "index": 7}
    >>> b = collate_shapes([item, item])
    >>> b.points.shape, b.batch_ids.tolist()
    (torch.Size([8, 3]), [0, 0, 0, 0, 1, 1, 1, 1])
    """
    if len(items) == 0:
        raise ValueError("cannot collate an empty batch")
    sizes = [len(it["points"]) for it in items]
    return PackedShapes(
        points=torch.from_numpy(np.concatenate([it["points"] for it in items]).astype(np.float32)),
        normals=torch.from_numpy(
            np.concatenate([it["normals"] for it in items]).astype(np.float32)
        ),
        labels=torch.from_numpy(np.concatenate([it["labels"] for it in items]).astype(np.int64)),
        cluster_ids=torch.from_numpy(
            np.concatenate([it["cluster_ids"] for it in items]).astype(np.int64)
        ),
        batch_ids=torch.repeat_interleave(torch.arange(len(items)), torch.tensor(sizes)),
        class_ids=torch.tensor([int(it["class_id"]) for it in items], dtype=torch.int64),
        shape_ids=torch.tensor([int(it["index"]) for it in items], dtype=torch.int64),
    )


class ShapeDataset(Dataset):
    """The shapes ``indices`` of a cache; item ``i`` reports ``index = i`` (its memory-bank row).

    ``max_points`` subsamples each shape (a fixed random subset per shape and epoch draw is
    left to transforms; here it is a deterministic prefix of a seeded permutation).
    """

    def __init__(
        self,
        cache,
        indices: Sequence[int] | np.ndarray | None = None,
        max_points: int | None = None,
    ) -> None:
        self.cache = cache
        self.indices = np.arange(len(cache)) if indices is None else np.asarray(indices, np.int64)
        self.max_points = max_points

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        item = dict(self.cache[int(self.indices[i])])
        if self.max_points is not None and len(item["points"]) > self.max_points:
            keep = np.random.default_rng(int(self.indices[i])).permutation(len(item["points"]))
            keep = np.sort(keep[: self.max_points])
            for key in ("points", "normals", "labels", "cluster_ids"):
                item[key] = item[key][keep]
        item["index"] = i
        return item
