"""Augmentations on packed batches (see :mod:`rq_points.data.packed`): one draw per shape.

Every function takes the packed tensors plus ``batch_ids`` and returns new tensors (inputs
are never modified); points keep their row order, so labels and cluster ids stay aligned.
:class:`PointAugmentation` chains them in MID-Net's order with RQ on xyz last:

normalize into the unit sphere -> rotation about the upright axis -> translation
U(-0.25, 0.25) -> per-axis scale U(0.75, 1.25) -> randomized quantization of x, y, z per
shape (30 bins) -> clip strictly inside [-1, 1]^3 (ocnn's octree needs it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from rq_core import randomized_quantize
from rq_core.quantize import segment_min_max
from torch import Tensor

from rq_points.data.packed import PackedShapes

__all__ = [
    "PointAugmentation",
    "clip_inside_unit_cube",
    "normalize_unit_sphere",
    "random_axis_scale",
    "random_translation",
    "random_upright_rotation",
]

# The largest |coordinate| we let through: ocnn maps [-1, 1] onto [0, 2^depth] and a point at
# exactly 1 falls into a node outside the grid, so we keep a margin well above float32 eps.
INSIDE = 1.0 - 1e-4


def normalize_unit_sphere(points: Tensor, batch_ids: Tensor, num_shapes: int) -> Tensor:
    """Centre every shape on its bounding-box centre and scale it into the unit sphere.

    >>> p = torch.tensor([[0., 0, 0], [2, 0, 0], [5, 5, 5], [5, 5, 7]])
    >>> normalize_unit_sphere(p, torch.tensor([0, 0, 1, 1]), 2).tolist()
    [[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 0.0, 1.0]]
    """
    # RQ's own first pass (rq_core's compiled CPU kernel, else a scatter_reduce per channel).
    # On CPU it beat one scatter over an expanded (N, 3) index (2-3x on 1 thread; 15-23x on
    # 2 threads at 32 x 10,000 points, where that scatter's parallel path collapses) and
    # torch-scatter's best, segment_csr, by 1.3-1.5x (docs/benchmarks.md, Points pipeline).
    lo, hi, _ = segment_min_max(points, batch_ids, num_shapes)
    centre = ((lo + hi) / 2)[batch_ids]
    centred = points - centre
    radius = torch.zeros(num_shapes, dtype=points.dtype, device=points.device)
    radius = radius.scatter_reduce(0, batch_ids.long(), centred.norm(dim=1), reduce="amax")
    return centred / radius.clamp_min(1e-12)[batch_ids].unsqueeze(1)


def random_upright_rotation(
    points: Tensor,
    normals: Tensor,
    batch_ids: Tensor,
    num_shapes: int,
    *,
    axis: int = 1,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Rotate every shape by its own angle U(0, 2 pi) about ``axis`` (1 = y, ShapeNet's up)."""
    angle = torch.rand(num_shapes, generator=generator, device=points.device) * (2 * math.pi)
    cos, sin = angle.cos()[batch_ids], angle.sin()[batch_ids]
    u, v = (axis + 1) % 3, (axis + 2) % 3

    def rotate(x: Tensor) -> Tensor:
        out = x.clone()
        out[:, u] = cos * x[:, u] - sin * x[:, v]
        out[:, v] = sin * x[:, u] + cos * x[:, v]
        return out

    return rotate(points), rotate(normals)


def random_translation(
    points: Tensor,
    batch_ids: Tensor,
    num_shapes: int,
    *,
    max_offset: float = 0.25,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Shift every shape by its own offset U(-max_offset, max_offset) per axis."""
    offset = (
        torch.rand(num_shapes, 3, generator=generator, device=points.device) * 2 - 1
    ) * max_offset
    return points + offset.to(points.dtype)[batch_ids]


def random_axis_scale(
    points: Tensor,
    normals: Tensor,
    batch_ids: Tensor,
    num_shapes: int,
    *,
    low: float = 0.75,
    high: float = 1.25,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Scale every shape by its own factor U(low, high) per axis; normals follow the
    inverse-transpose (divide by the factor, renormalize)."""
    factor = low + torch.rand(num_shapes, 3, generator=generator, device=points.device) * (
        high - low
    )
    factor = factor.to(points.dtype)[batch_ids]
    normals = normals / factor
    return points * factor, normals / normals.norm(dim=1, keepdim=True).clamp_min(1e-12)


def clip_inside_unit_cube(points: Tensor, inside: float = INSIDE) -> Tensor:
    """Clamp coordinates to [-inside, inside] (strictly inside [-1, 1], as ocnn requires)."""
    if not 0 < inside < 1:
        raise ValueError(f"inside must be in (0, 1), got {inside}")
    return points.clamp(-inside, inside)


@dataclass
class PointAugmentation:
    """MID-Net's augmentation chain on a packed batch, with RQ on xyz.

    Defaults: rotation about y (``axis: y`` in the reference ``mid_hrnet_d6.yaml``);
    translation 0.25 (``jitter: 0.25`` there; the issue's U(-0.25, 0.25)); scale U(0.75, 1.25)
    (``scale: 0.25``); RQ 30 bins on xyz (the RQ paper, section 5.2) with random spacing and
    random collapse (``rq_spacing``/``rq_collapse``: the paper's). ``rq_bins = 0`` turns
    RQ off (the MID-FC baseline); ``train = False`` keeps only normalize + clip (evaluation).

    >>> from rq_points.data.packed import collate_shapes
    >>> import numpy as np
    >>> item = {"points": np.random.rand(64, 3).astype(np.float32),
    ...         "normals": np.tile(np.float32([0, 0, 1]), (64, 1)), "labels": np.arange(64),
    ...         "cluster_ids": np.arange(64), "class_id": 0, "index": 0}
    >>> out = PointAugmentation()(collate_shapes([item, item]), torch.Generator().manual_seed(0))
    >>> bool(out.points.abs().max() < 1), out.labels[:3].tolist()
    (True, [0, 1, 2])
    """

    rotate: bool = True
    up_axis: int = 1
    translation: float = 0.25
    scale_low: float = 0.75
    scale_high: float = 1.25
    rq_bins: int = 30
    # The paper's quantizer: random bin edges and a random value inside each bin (Wu et al.,
    # ICCV 2023, Sec. 3); "uniform" / "middle" are its ablations (rq_core.quantize).
    rq_spacing: str = "random"
    rq_collapse: str = "random"
    train: bool = True

    def __post_init__(self) -> None:
        if self.rq_spacing not in ("random", "uniform"):
            raise ValueError(f"rq_spacing must be random|uniform, got {self.rq_spacing!r}")
        if self.rq_collapse not in ("random", "middle"):
            raise ValueError(f"rq_collapse must be random|middle, got {self.rq_collapse!r}")

    def __call__(
        self, batch: PackedShapes, generator: torch.Generator | None = None
    ) -> PackedShapes:
        B, ids = batch.batch_size, batch.batch_ids
        points = normalize_unit_sphere(batch.points, ids, B)
        normals = batch.normals
        if self.train:
            if self.rotate:
                points, normals = random_upright_rotation(
                    points, normals, ids, B, axis=self.up_axis, generator=generator
                )
            if self.translation > 0:
                points = random_translation(
                    points, ids, B, max_offset=self.translation, generator=generator
                )
            if self.scale_low != 1.0 or self.scale_high != 1.0:
                points, normals = random_axis_scale(
                    points,
                    normals,
                    ids,
                    B,
                    low=self.scale_low,
                    high=self.scale_high,
                    generator=generator,
                )
            if self.rq_bins > 0:
                points = randomized_quantize(
                    points,
                    self.rq_bins,
                    channel_dim=-1,
                    segment_ids=ids,
                    spacing=self.rq_spacing,
                    collapse=self.rq_collapse,
                    generator=generator,
                )
        return batch.with_points(clip_inside_unit_cube(points), normals)
