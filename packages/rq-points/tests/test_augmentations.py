import numpy as np
import pytest
import torch
from rq_points.augmentations import (
    PointAugmentation,
    clip_inside_unit_cube,
    normalize_unit_sphere,
    random_axis_scale,
    random_upright_rotation,
)
from rq_points.data.packed import collate_shapes


def test_normalize_puts_every_shape_in_the_unit_sphere(packed_batch):
    p = normalize_unit_sphere(
        packed_batch.points * 7 + 3, packed_batch.batch_ids, packed_batch.batch_size
    )
    for b in range(packed_batch.batch_size):
        assert abs(float(p[packed_batch.batch_ids == b].norm(dim=1).max()) - 1) < 1e-5


def test_rotation_keeps_up_axis_and_norms(packed_batch, generator):
    p, n = random_upright_rotation(
        packed_batch.points,
        packed_batch.normals,
        packed_batch.batch_ids,
        packed_batch.batch_size,
        generator=generator,
    )
    torch.testing.assert_close(p[:, 1], packed_batch.points[:, 1])
    torch.testing.assert_close(p.norm(dim=1), packed_batch.points.norm(dim=1))
    assert not torch.allclose(p, packed_batch.points)


def test_scale_keeps_normals_unit(packed_batch, generator):
    _, n = random_axis_scale(
        packed_batch.points,
        packed_batch.normals,
        packed_batch.batch_ids,
        packed_batch.batch_size,
        generator=generator,
    )
    torch.testing.assert_close(n.norm(dim=1), torch.ones(len(n)))


def test_rq_quantizes_each_shape_and_clip_is_strict(packed_batch, generator):
    out = PointAugmentation(rq_bins=5)(packed_batch, generator)
    assert float(out.points.abs().max()) < 1.0
    for b in range(packed_batch.batch_size):
        rows = out.points[out.batch_ids == b]
        for axis in range(3):
            assert rows[:, axis].unique().numel() <= 5 + 2  # +2: values clipped onto the bounds
    assert float(clip_inside_unit_cube(torch.tensor([[1.0, -1.0, 2.0]])).abs().max()) < 1.0


def test_labels_follow_points_under_a_row_permutation(make_items):
    items = make_items(num_points=128)
    batch = collate_shapes(items)
    perm = torch.randperm(len(batch.points), generator=torch.Generator().manual_seed(1))
    shuffled = type(batch)(
        batch.points[perm],
        batch.normals[perm],
        batch.labels[perm],
        batch.cluster_ids[perm],
        batch.batch_ids[perm],
        batch.class_ids,
        batch.shape_ids,
    )
    aug = PointAugmentation(rq_bins=30)
    a = aug(batch, torch.Generator().manual_seed(3))
    b = aug(shuffled, torch.Generator().manual_seed(3))
    # Per-shape draws: a row carries the same point, label and cluster id wherever it sits.
    torch.testing.assert_close(b.points, a.points[perm])
    assert torch.equal(b.labels, a.labels[perm]) and torch.equal(b.cluster_ids, a.cluster_ids[perm])
    assert torch.equal(a.labels, batch.labels)


def test_eval_mode_only_normalizes(packed_batch):
    out = PointAugmentation(train=False)(packed_batch)
    ref = normalize_unit_sphere(
        packed_batch.points, packed_batch.batch_ids, packed_batch.batch_size
    )
    torch.testing.assert_close(out.points, ref.clamp(-1 + 1e-4, 1 - 1e-4))
    assert np.isclose(float(out.points.abs().max()), 1 - 1e-4, atol=1e-3)


def test_rq_spacing_and_collapse_reach_the_quantizer(packed_batch):
    """Issue 15 (sweep): uniform spacing + middle collapse is deterministic and puts every
    coordinate on one of the bin middles of its shape's range; the paper's random/random
    default draws differently per generator."""
    still = dict(rotate=False, translation=0.0, scale_low=1.0, scale_high=1.0, rq_bins=4)
    grid = PointAugmentation(**still, rq_spacing="uniform", rq_collapse="middle")
    a = grid(packed_batch, torch.Generator().manual_seed(0)).points
    b = grid(packed_batch, torch.Generator().manual_seed(1)).points
    torch.testing.assert_close(a, b)
    plain = PointAugmentation(**{**still, "rq_bins": 0})(packed_batch).points
    for s in range(packed_batch.batch_size):
        rows = packed_batch.batch_ids == s
        lo, hi = plain[rows].min(0).values, plain[rows].max(0).values
        middles = lo + (hi - lo) * (torch.arange(4).unsqueeze(1) + 0.5) / 4  # (4, 3)
        gap = (a[rows].unsqueeze(1) - middles.unsqueeze(0)).abs().min(1).values
        assert float(gap.max()) < 1e-4
    paper = PointAugmentation(**still)
    assert (paper.rq_spacing, paper.rq_collapse) == ("random", "random")
    assert not torch.allclose(
        paper(packed_batch, torch.Generator().manual_seed(0)).points,
        paper(packed_batch, torch.Generator().manual_seed(1)).points,
    )
    with pytest.raises(ValueError, match="rq_spacing must be random|uniform"):
        PointAugmentation(rq_spacing="log")
