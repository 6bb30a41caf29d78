import ocnn
import pytest
import torch
from rq_points.augmentations import PointAugmentation
from rq_points.encoder import MidNet, MidNetConfig
from rq_points.octree_batch import build_octree_batch

SMALL = dict(
    depth=5,
    channels=16,
    global_channels=24,
    shape_dim=8,
    point_dim=6,
    point_hidden=12,
    resblock_num=1,
)


def _batch(packed):
    b = PointAugmentation(train=False)(packed)
    return b, build_octree_batch(b.points, b.normals, b.batch_ids, b.batch_size, depth=5)


def test_output_shapes(packed_batch):
    b, ob = _batch(packed_batch)
    net = MidNet(MidNetConfig(**SMALL))
    out = net(ob.octree)
    assert out.global_feature.shape == (b.batch_size, 24)
    assert out.shape_embedding.shape == (b.batch_size, 8)
    assert out.leaf_embedding.shape == (ob.num_leaves, 6)
    feats = net.point_features(ob.octree, b.points, b.batch_ids, ob.point_leaf)
    assert feats.shape == (len(b.points), net.point_feature_dim)


def test_paper_sizes():
    net = MidNet(MidNetConfig())
    assert net.widths == [128, 256, 512] and net.point_feature_dim == 128 + 256 + 512 + 32
    assert net.shape_fc2.in_features == 1024 and net.shape_fc2.out_features == 128


def test_octree_interp_rescales_in_place_and_we_pass_a_clone(packed_batch):
    b, ob = _batch(packed_batch)
    query = torch.cat([b.points, b.batch_ids.float().unsqueeze(1)], 1)
    before = query.clone()
    data = torch.randn(int(ob.octree.nnum[4]), 3)
    ocnn.nn.OctreeInterp("linear", nempty=False)(data, ob.octree, 4, query)
    assert not torch.equal(query, before)  # the pitfall: ocnn rewrote our points
    points = b.points.clone()
    MidNet(MidNetConfig(**SMALL)).eval().point_features(
        ob.octree, points, b.batch_ids, ob.point_leaf
    )
    assert torch.equal(points, b.points)


def test_batch_result_equals_single_shape_result(packed_batch):
    torch.manual_seed(0)
    net = MidNet(MidNetConfig(**SMALL)).eval()
    b, ob = _batch(packed_batch)
    batched = net(ob.octree).global_feature
    rows = b.batch_ids == 2
    single = build_octree_batch(
        b.points[rows], b.normals[rows], torch.zeros(int(rows.sum()), dtype=torch.long), 1, depth=5
    )
    torch.testing.assert_close(
        net(single.octree).global_feature[0], batched[2], atol=1e-4, rtol=1e-4
    )


def test_bad_configs_raise():
    with pytest.raises(ValueError, match="full_depth"):
        MidNetConfig(depth=4, stages=3)
    with pytest.raises(ValueError, match=">= 16"):
        MidNetConfig(channels=8)
